"""System-1 training trajectories: sample a start and a goal, plan, smooth, and drive the waypoint controller.

A trajectory is made in four steps:

1. **Start/goal** (:func:`sample_pair`): two uniformly random points of the grid's largest region whose
   geodesic distance lies in ``[min_geodesic, max_geodesic]``.
2. **Plan**: the simulator's shortest path (string-pulled corners on the navigability grid).
3. **Smooth** (:func:`smooth_path`): the path resampled every 0.1 m, its points pushed away from obstacles
   along the clearance gradient up to ``target_clearance`` (never past the path's own free space), relaxed
   and fitted with a cubic spline in arc length. Every point of the result must be navigable and in the
   largest region; otherwise the raw resampled path is used (``smoothed=False``).
4. **Drive** (:func:`drive`): the agent starts at the start facing the path's first heading turned by up to
   ±90° (so windows also hold turns in place), or facing a given heading, and follows the path with
   :meth:`envs.sim.Simulator.move_along` (velocity-limited controller, one pose per control tick: 0.1 s at
   0.5 m/s by default). The poses recorded are those the simulator reached, so they never leave the
   navigable area (the controller's motion slides along obstacles as every motion does).

**Starts next to an obstacle** (:func:`sample_near_obstacle_pair`): the start is a navigable point within
``NEAR_OBSTACLE`` of the navigable boundary (the body's edge within about 0.1 m of an obstacle or wall),
facing the nearest obstacle (the direction against the clearance gradient, turned by up to ±45°). Driving
from there the expert first turns away from what is in front of it: the recovery states a policy reaches
after drifting toward an obstacle, which uniformly drawn starts almost never give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from envs.nav.geometry import agent_frame_deltas, quaternion_from_yaw, resample_path
from envs.nav.grid import bilinear
from envs.sim import Simulator

#: Metres between the points of a smoothed path.
PATH_SPACING = 0.1
#: Clearance (m, from the navigable boundary) that smoothing pushes path points toward.
TARGET_CLEARANCE = 0.2
#: Largest distance (m) between the end of a drive and the goal for the drive to count.
GOAL_TOLERANCE = 0.2
#: Clearance (m, from the navigable boundary) under which a start counts as next to an obstacle.
NEAR_OBSTACLE = 0.1
#: Largest angle (rad) between a near-obstacle start's heading and the direction of the nearest obstacle.
FACING_SPREAD = math.radians(45.0)


@dataclass
class Drive:
    """A driven trajectory.

    Attributes:
        positions: (T, 3) float32 world positions, one per control tick (the start first).
        rotations: (T, 4) float32 quaternions [x, y, z, w].
        path: (N, 3) float64 the path that was followed (world, metres).
        smoothed: whether ``path`` is the smoothed one (else the raw resampled shortest path).
        reached: the drive ended within ``GOAL_TOLERANCE`` of the goal.
    """

    positions: np.ndarray
    rotations: np.ndarray
    path: np.ndarray
    smoothed: bool
    reached: bool


def sample_pair(
    sim: Simulator, rng: np.random.Generator, min_geodesic: float, max_geodesic: float, attempts: int = 50
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(start (3,), goal (3,), geodesic m) of a reachable pair in range, or None after ``attempts`` draws."""
    for _ in range(attempts):
        start, goal = sim.sample_navigable_point(rng), sim.sample_navigable_point(rng)
        d = sim.geodesic_distance(start, goal)
        if math.isfinite(d) and min_geodesic <= d <= max_geodesic:
            return start, goal, float(d)
    return None


def sample_near_obstacle_pair(
    sim: Simulator, rng: np.random.Generator, min_geodesic: float, max_geodesic: float, attempts: int = 50
) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """(start (3,), goal (3,), geodesic m, start yaw rad) with the start next to an obstacle and facing it
    (see the module docstring), or None after ``attempts`` draws (or when no cell is that close)."""
    grid = sim.grid
    near = (grid.region == grid.largest_region) & (grid.clearance < NEAR_OBSTACLE)
    cells = np.flatnonzero(near.ravel())
    if not len(cells):
        return None
    for _ in range(attempts):
        i, j = np.divmod(cells[rng.integers(len(cells))], grid.shape[1])
        start = grid.cell_to_world(i, j)[0]
        goal = sim.sample_navigable_point(rng)
        d = sim.geodesic_distance(start, goal)
        if math.isfinite(d) and min_geodesic <= d <= max_geodesic:
            gx, gz = grid.clearance_gradient(float(start[0]), float(start[2]))
            # Facing -gradient (d_x, d_z) = (-gx, -gz): yaw = atan2(-d_x, -d_z) = atan2(gx, gz).
            yaw = math.atan2(gx, gz) + float(rng.uniform(-FACING_SPREAD, FACING_SPREAD))
            return start, goal, float(d), yaw
    return None


def _densify(path: np.ndarray, spacing: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(path[:, [0, 2]], axis=0), axis=1)
    n = max(int(math.ceil(seg.sum() / spacing)), 1)
    return np.concatenate([path[:1], resample_path(path, seg.sum() / n, n)])


def _in_region(grid, points: np.ndarray) -> bool:
    fi, fj = grid.fractional_cell(points[:, 0], points[:, 2])
    i, j = np.floor(fi + 0.5).astype(np.int64), np.floor(fj + 0.5).astype(np.int64)
    ok = grid.in_bounds(i, j)
    return bool(ok.all() and (grid.region[i, j] == grid.largest_region).all())


def smooth_path(
    grid, path, spacing: float = PATH_SPACING, target_clearance: float = TARGET_CLEARANCE
) -> tuple[np.ndarray, bool]:
    """A smoothed path keeping clearance (see the module docstring).

    Args:
        grid: the scene's :class:`envs.nav.grid.NavGrid`.
        path: (N, 3) world points of a planned path (start first, goal last).
        spacing: metres between output points.
        target_clearance: metres of clearance the points are pushed toward.

    Returns:
        ``(points (M, 3) float64, smoothed)``; ``smoothed`` is False when the raw resampled path is returned.
    """
    raw = _densify(np.asarray(path, np.float64).reshape(-1, 3), spacing)
    if len(raw) < 4:
        return raw, False
    pts = raw.copy()
    for _ in range(8):
        for k in range(1, len(pts) - 1):
            fi, fj = grid.fraction_of(pts[k, 0], pts[k, 2])
            gap = target_clearance - bilinear(grid.clearance, fi, fj)
            if gap > 0:
                gx, gz = grid.clearance_gradient(pts[k, 0], pts[k, 2])
                norm = math.hypot(gx, gz)
                if norm > 1e-6:
                    pts[k, [0, 2]] += min(gap, 0.02) * np.array([gx, gz]) / norm
        pts[1:-1, [0, 2]] = 0.5 * pts[1:-1, [0, 2]] + 0.25 * (pts[:-2, [0, 2]] + pts[2:, [0, 2]])
    seg = np.linalg.norm(np.diff(pts[:, [0, 2]], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    keep = np.concatenate([[True], seg > 1e-6])
    spline = CubicSpline(arc[keep], pts[keep])
    n = max(int(math.ceil(arc[-1] / spacing)), 1)
    out = spline(np.linspace(0.0, arc[-1], n + 1))
    out[:, 1] = np.interp(np.linspace(0.0, arc[-1], n + 1), arc, raw[:, 1])
    if _in_region(grid, out) and grid.navigable_xz(out[:, 0], out[:, 2]).all():
        return out, True
    return raw, False


def _headings(path: np.ndarray) -> np.ndarray:
    """(N,) yaw of each point's outgoing segment (the last repeats the previous)."""
    d = np.diff(path[:, [0, 2]], axis=0)
    yaw = np.arctan2(-d[:, 0], -d[:, 1])
    return np.concatenate([yaw, yaw[-1:]])


def drive(sim: Simulator, path: np.ndarray, start_yaw: float, smoothed: bool) -> Drive:
    """Place the agent at ``path[0]`` facing ``start_yaw`` and follow ``path`` with the waypoint controller,
    recording one pose per control tick."""
    sim.set_agent_state(path[0], quaternion_from_yaw(start_yaw))
    positions, rotations = [], []

    def record() -> None:
        s = sim.get_agent_state()
        positions.append(s.position.astype(np.float32))
        rotations.append(s.rotation.astype(np.float32))

    record()
    yaws = _headings(path)
    waypoints = agent_frame_deltas(path[1:], yaws[1:], path[0], start_yaw)
    sim.move_along(waypoints, observe=False, on_tick=record)
    end = positions[-1]
    reached = math.hypot(end[0] - path[-1, 0], end[2] - path[-1, 2]) <= GOAL_TOLERANCE
    return Drive(np.stack(positions), np.stack(rotations), path, smoothed, bool(reached))


def plan_and_drive(
    sim: Simulator, start, goal, rng: np.random.Generator, start_yaw: float | None = None
) -> Drive | None:
    """Plan start → goal, smooth, and drive from ``start_yaw`` (None: the path's first heading turned by an
    angle drawn from ``rng``); None when unreachable."""
    raw = sim.shortest_path(start, goal)
    if len(raw) < 2:
        return None
    path, smoothed = smooth_path(sim.grid, raw)
    if start_yaw is None:
        start_yaw = float(_headings(path)[0] + rng.uniform(-math.pi / 2, math.pi / 2))
    return drive(sim, path, float(start_yaw), smoothed)
