"""Collision-checked motion on a navigability grid, sliding along obstacles (Habitat's ``allow_sliding``).

A move first advances along the requested x-z displacement as far as the segment stays free (an exact cell
traversal, :mod:`envs.nav.raycast`), stopping just short of the face of the first blocked cell. The rest of
the displacement, less its component along the obstacle normal, is then tried the same way, once. The normal
is the gradient of the grid's signed clearance field at the contact point; where that slide is blocked at once
(near the corner of a blocked cell the gradient is diagonal), the normal of the crossed cell face is used
instead. Every tested segment lies on navigable cells, so a move never crosses a wall and never ends off the
navigable area.

A move runs once per agent step, so it works on plain Python floats: numpy's per-call overhead on 2-vectors
would cost more than the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from envs.nav.raycast import free_fraction_xz

#: A move that falls short of the request by more than this (m) counts as a collision.
COLLISION_TOLERANCE = 1e-3


def _slide(grid, x: float, z: float, rx: float, rz: float, nx: float, nz: float) -> tuple[float, float]:
    """Move from (x, z) by (rx, rz) less its component along the unit normal (nx, nz), as far as free."""
    along = rx * nx + rz * nz
    dx, dz = rx - along * nx, rz - along * nz
    t = free_fraction_xz(grid, x, z, dx, dz)[0]
    return x + t * dx, z + t * dz


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
    p = np.asarray(position, np.float64).reshape(-1).tolist()
    d = np.asarray(displacement, np.float64).reshape(-1).tolist()
    if len(p) != 3 or len(d) not in (2, 3) or not all(math.isfinite(v) for v in p + d):
        raise ValueError(f"try_move needs a finite (3,) position and (2,)/(3,) displacement, got {p}, {d}")
    dx, dz = (d[0], d[2]) if len(d) == 3 else d
    x, z = p[0], p[2]
    if not grid.navigable_at(x, z):
        snapped = grid.snap(p)
        x, z = float(snapped[0]), float(snapped[2])
    t, contact, face = free_fraction_xz(grid, x, z, dx, dz)
    ex, ez = x + t * dx, z + t * dz
    rx, rz = (1.0 - t) * dx, (1.0 - t) * dz
    if contact is not None and math.hypot(rx, rz) > 1e-9:
        # Obstacle normal: the clearance gradient at the contact; near a corner of a blocked cell it is
        # diagonal and its slide may be blocked at once, then the normal of the crossed cell face is used.
        gx, gz = grid.clearance_gradient(*contact)
        norm = math.hypot(gx, gz)
        if math.isfinite(norm) and norm > 1e-9:
            sx, sz = _slide(grid, ex, ez, rx, rz, gx / norm, gz / norm)
        else:
            sx, sz = ex, ez
        if math.hypot(sx - ex, sz - ez) < 1e-6 and face != (0.0, 0.0):
            sx, sz = _slide(grid, ex, ez, rx, rz, *face)
        ex, ez = sx, sz
    collided = math.hypot(ex - p[0], ez - p[2]) < math.hypot(dx, dz) - COLLISION_TOLERANCE
    ex, ez = _settle(grid, ex, ez)
    return np.array([ex, grid.height_at(ex, ez), ez], np.float32), collided


def _settle(grid, x: float, z: float) -> tuple[float, float]:
    """Nudge a navigable point towards its cell centre until its float32 rounding is navigable too."""
    centre = None  # of the point's own cell, looked up only when the rounding fails (rarely)
    for _ in range(8):
        rx, rz = float(np.float32(x)), float(np.float32(z))
        if grid.navigable_at(rx, rz):
            return rx, rz
        if centre is None:
            centre = grid.cell_to_world(*grid.cell_of(x, z))[0, [0, 2]].astype(np.float64).tolist()
        x, z = x + 0.01 * (centre[0] - x), z + 0.01 * (centre[1] - z)
    return centre[0], centre[1]
