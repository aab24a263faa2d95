"""Collision-checked motion on a navigability grid, sliding along obstacles (Habitat's ``allow_sliding``).

A move first advances along the requested x-z displacement as far as the segment stays free (an exact cell
traversal, :mod:`envs.nav.raycast`), stopping just short of the face of the first blocked cell. The rest of
the displacement, less its component along the obstacle normal, is then tried the same way, once. The normal
is the gradient of the grid's signed clearance field at the contact point; where that slide is blocked at once
(near the corner of a blocked cell the gradient is diagonal), the normal of the crossed cell face is used
instead. Every tested segment lies on navigable cells, so a move never crosses a wall and never ends off the
navigable area.
"""

from __future__ import annotations

import numpy as np

from envs.nav.raycast import free_fraction

#: A move that falls short of the request by more than this (m) counts as a collision.
COLLISION_TOLERANCE = 1e-3


def _slide(grid, start_xz: np.ndarray, rest_xz: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Move from ``start_xz`` by ``rest_xz`` less its component along the unit ``normal``, as far as free."""
    direction = rest_xz - float(rest_xz @ normal) * normal
    t, _, _ = free_fraction(grid, start_xz, direction)
    return start_xz + t * direction


def _unit(v: np.ndarray) -> np.ndarray | None:
    norm = float(np.hypot(*v))
    return v / norm if np.isfinite(norm) and norm > 1e-9 else None


def try_move(grid, position, displacement) -> tuple[np.ndarray, bool]:
    """Move the agent's centre by ``displacement`` on the x-z plane, sliding along obstacles once.

    Args:
        grid: a :class:`envs.nav.grid.NavGrid`.
        position: (3,) world position [x, y, z] in metres. A position off the navigable cells is first snapped
            to the nearest navigable point (as Habitat snaps the agent onto its navmesh).
        displacement: (3,) world displacement [dx, dy, dz] (dy is ignored) or (2,) [dx, dz], metres.

    Returns:
        ``(new_position, collided)``: the (3,) float32 end position, on a navigable cell with y on its floor,
        and whether the end lies more than 1e-3 m short of the requested displacement from ``position``.
    """
    position = np.asarray(position, np.float64).reshape(3)
    disp = np.asarray(displacement, np.float64).reshape(-1)
    if disp.size not in (2, 3) or not np.all(np.isfinite(disp)) or not np.all(np.isfinite(position)):
        raise ValueError(
            f"try_move needs a finite (3,) position and (2,)/(3,) displacement, got {position}, {disp}"
        )
    disp_xz = disp[[0, 2]] if disp.size == 3 else disp
    start = position[[0, 2]]
    if not grid.navigable_at(float(start[0]), float(start[1])):
        start = grid.snap(position)[[0, 2]].astype(np.float64)
    t, contact, face = free_fraction(grid, start, disp_xz)
    end, rest = start + t * disp_xz, (1.0 - t) * disp_xz
    if contact is not None and float(np.hypot(*rest)) > 1e-9:
        # Obstacle normal: the clearance gradient at the contact; near a corner of a blocked cell it is
        # diagonal and its slide may be blocked at once, then the normal of the crossed cell face is used.
        gradient = _unit(grid.clearance_gradient(contact[0], contact[1]))
        slid = _slide(grid, end, rest, gradient) if gradient is not None else end
        if float(np.hypot(*(slid - end))) < 1e-6 and face.any():
            slid = _slide(grid, end, rest, face)
        end = slid
    moved = float(np.hypot(*(end - position[[0, 2]])))
    collided = moved < float(np.hypot(*disp_xz)) - COLLISION_TOLERANCE
    end = _settle(grid, end)
    return np.array([end[0], grid.height_at(end[0], end[1]), end[1]], np.float32), bool(collided)


def _settle(grid, end_xz: np.ndarray) -> np.ndarray:
    """Nudge a navigable float64 point towards its cell centre until its float32 rounding is navigable too."""
    i, j = grid.cell_of(float(end_xz[0]), float(end_xz[1]))
    centre = grid.cell_to_world(i, j)[0, [0, 2]].astype(np.float64)
    for _ in range(8):
        rounded = end_xz.astype(np.float32).astype(np.float64)
        if grid.navigable_at(float(rounded[0]), float(rounded[1])):
            return rounded
        end_xz = end_xz + 0.01 * (centre - end_xz)
    return centre
