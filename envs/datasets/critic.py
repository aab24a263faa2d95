"""NavDP critic labels from a scene's geometry: how safe a short future path is (anchors Part A §2.4).

For step ``t`` of a trajectory the **expert path** is the 24 future poses ``t + 2k`` (k = 1..24) as
``(dx forward m, dy left m, dyaw rad)`` in the agent frame at ``t`` (exactly the window targets of
``SampleSpec(kind="window", horizon=24, future_stride=2)``, clamped to the last pose past the end). The
**augmented path** is that path turned by an angle drawn from U(-60°, 60°) about the start and re-splined: a
cubic spline through the start and the turned points, leaving the start along the agent's heading and
resampled at the expert path's arc lengths (headings follow the spline's tangent), so it bends away from the
expert's route as NavDP's augmented trajectories do. The angle is drawn from a generator seeded by
``(seed, t)``, so labels are deterministic per step.

The **value** of a path with obstacle distances ``d_0`` (at the start) and ``d_1..d_24`` (at its waypoints) is
NavDP's::

    value = -5 * mean_k(d_k < 0.1 m, k = 1..24) + 0.5 * sum_k(d_{k+1} - d_k, k = 0..23)

The first term punishes waypoints that touch an obstacle, the second rewards moving away from obstacles (the
sum telescopes to ``d_24 - d_0``; it is written as NavDP writes it).

**Obstacle distance from the navigability grid, not from obstacle points.** NavDP reads a per-scene obstacle
point cloud and computes a (waypoints × points) distance matrix for every sample. Here the distance is read
from a distance field computed once per scene from :class:`envs.nav.grid.NavGrid`: the Euclidean distance
transform of the cells outside the grid's largest region, plus the body radius (the grid is already eroded
by it), so ``d`` is the distance from the agent's centre to the nearest obstacle surface, in metres, and 0
inside obstacles. It costs one bilinear lookup per waypoint whatever the scene's size, uses exactly the
geometry that the simulator's collisions use (floors, steps and overhangs included, which a point cloud of
obstacle surfaces does not tell apart), and counts the navigable islands inside tall closed solids (see
:mod:`envs.nav.heightfield`) as obstacles, since they are not part of the region the agent moves in.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline

from envs.nav.geometry import agent_frame_deltas
from envs.nav.grid import NavGrid

HORIZON = 24
#: Past frames of a System-1 training sample besides the current one, and the steps between them.
HISTORY, HISTORY_STRIDE = 7, 4
FUTURE_STRIDE = 2
#: Largest turn of the augmented path, radians (NavDP: U(-60°, 60°)).
MAX_AUGMENT_TURN = math.radians(60.0)
#: Distance (m) under which a waypoint counts as touching an obstacle, and the value's weights.
TOUCH_DISTANCE = 0.1
TOUCH_WEIGHT, AWAY_WEIGHT = -5.0, 0.5
#: [value_expert, value_augmented, augmented path (HORIZON, 3) row-major].
CRITIC_LABEL_SIZE = 2 + HORIZON * 3


def obstacle_distance_field(grid: NavGrid, radius: float) -> np.ndarray:
    """(H, W) float32 distance (m) from each cell centre to the nearest obstacle surface, 0 off the largest
    region (see the module docstring); ``radius`` is the body radius the grid was eroded by."""
    free = grid.region == grid.largest_region
    inside = ndimage.distance_transform_edt(np.pad(free, 1))[1:-1, 1:-1]
    field = np.where(free, (inside - 0.5) * grid.cell_size + radius, 0.0)
    return field.astype(np.float32)


def distances_at(grid: NavGrid, field: np.ndarray, xz: np.ndarray) -> np.ndarray:
    """(N,) float64 obstacle distances at world points ``xz`` (N, 2), bilinearly interpolated (0 off-grid)."""
    fi, fj = grid.fractional_cell(xz[:, 0], xz[:, 1])
    return ndimage.map_coordinates(field.astype(np.float64), [fi, fj], order=1, mode="constant", cval=0.0)


def to_world(path: np.ndarray, position, yaw: float) -> np.ndarray:
    """(N, 2) world (x, z) of agent-frame ``(dx, dy, ...)`` points seen from (``position``, ``yaw``)."""
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = path[:, 0].astype(np.float64), path[:, 1].astype(np.float64)
    x = position[0] - s * dx - c * dy
    z = position[2] - c * dx + s * dy
    return np.stack([x, z], axis=1)


def path_value(distances: np.ndarray) -> float:
    """NavDP's value of a path from its obstacle distances ``d_0..d_N`` (start first)."""
    d = np.asarray(distances, np.float64)
    touching = float((d[1:] < TOUCH_DISTANCE).mean())
    return TOUCH_WEIGHT * touching + AWAY_WEIGHT * float((d[1:] - d[:-1]).sum())


def future_path(positions, yaws, t: int, horizon: int = HORIZON, stride: int = FUTURE_STRIDE) -> np.ndarray:
    """(horizon, 3) float32 poses ``t + stride·k`` in the frame of pose ``t``, clamped to the last pose (the
    window targets of :func:`trainers.data.frames.future_targets`)."""
    n = len(positions)
    steps = np.minimum(t + stride * np.arange(1, horizon + 1), n - 1)
    return agent_frame_deltas(positions[steps], yaws[steps], positions[t], float(yaws[t]))


def augment_path(path: np.ndarray, angle: float) -> np.ndarray:
    """``path`` (N, 3) turned by ``angle`` (rad, left positive) about the start and re-splined (see the module
    docstring); (N, 3) float32."""
    c, s = math.cos(angle), math.sin(angle)
    xy = path[:, :2].astype(np.float64) @ np.array([[c, s], [-s, c]])
    points = np.concatenate([[[0.0, 0.0]], xy])
    step = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    keep = np.concatenate([[True], step > 1e-4])
    if keep.sum() < 3:  # (almost) standing still: a rigid turn is all there is
        return np.concatenate([xy, (path[:, 2:3] + angle + math.pi) % (2 * math.pi) - math.pi], 1).astype(
            np.float32
        )
    spline = CubicSpline(arc[keep], points[keep], bc_type=((1, [1.0, 0.0]), "not-a-knot"))
    out = spline(arc[1:])
    tangent = spline(arc[1:], 1)
    yaw = np.arctan2(tangent[:, 1], tangent[:, 0])
    still = ~keep[1:]  # repeated poses (the clamped end) keep the turned heading of the expert's pose
    yaw[still] = (path[still, 2] + angle + math.pi) % (2 * math.pi) - math.pi
    return np.concatenate([out, yaw[:, None]], axis=1).astype(np.float32)


def critic_labels(
    grid: NavGrid, field: np.ndarray, positions, yaws, seed: int, horizon: int = HORIZON
) -> np.ndarray:
    """Per-step critic labels of a trajectory: (T, 2 + 3·horizon) float32
    ``[value_expert, value_augmented, augmented path (horizon, 3) row-major]``.

    Args:
        grid: the scene's navigability grid.
        field: :func:`obstacle_distance_field` of ``grid``.
        positions: (T, 3) world positions (m); yaws: (T,) world yaws (rad).
        seed: seeds the augmentation angle of step ``t`` as ``default_rng([seed, t])``.
        horizon: waypoints per path.
    """
    positions = np.asarray(positions, np.float32)
    yaws = np.asarray(yaws, np.float32)
    out = np.zeros((len(positions), 2 + 3 * horizon), np.float32)
    for t in range(len(positions)):
        expert = future_path(positions, yaws, t, horizon)
        angle = float(np.random.default_rng([int(seed), t]).uniform(-MAX_AUGMENT_TURN, MAX_AUGMENT_TURN))
        augmented = augment_path(expert, angle)
        start = float(distances_at(grid, field, positions[t, [0, 2]][None].astype(np.float64))[0])
        for k, path in enumerate((expert, augmented)):
            d = distances_at(grid, field, to_world(path, positions[t], float(yaws[t])))
            out[t, k] = path_value(np.concatenate([[start], d]))
        out[t, 2:] = augmented.reshape(-1)
    return out


def critic_fields(labels) -> tuple[np.ndarray, np.ndarray]:
    """Split critic labels (..., 2 + 3·N) into ``values`` (..., 2) ``[expert, augmented]`` and the augmented
    path (..., N, 3); works on numpy arrays and torch tensors alike (views, no copies)."""
    shape = tuple(labels.shape)
    if not shape or shape[-1] < 5 or (shape[-1] - 2) % 3:
        raise ValueError(f"critic labels must be (..., 2 + 3*N) with N >= 1, got shape {shape}")
    return labels[..., :2], labels[..., 2:].reshape(*shape[:-1], -1, 3)
