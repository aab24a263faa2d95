"""Yaw, heading and quaternion conventions of the world frame (Habitat's: y up, the agent looks along -z).

Yaw is the rotation about +y in radians: yaw 0 looks along -z and positive yaw turns left (counter-clockwise
seen from above), so the heading vector is ``(-sin(yaw), 0, -cos(yaw))``. Quaternions are ``[x, y, z, w]``.
"""

from __future__ import annotations

import math

import numpy as np

#: Largest accepted deviation of a quaternion's norm from 1.
UNIT_TOLERANCE = 1e-3


def wrap_angle(angle: float) -> float:
    """The angle (radians) wrapped to [-pi, pi)."""
    return (float(angle) + math.pi) % (2 * math.pi) - math.pi


def heading_vector(yaw: float) -> np.ndarray:
    """(2,) unit (dx, dz) direction the agent looks along at ``yaw`` (radians)."""
    return np.array([-math.sin(yaw), -math.cos(yaw)])


def yaw_of_direction(dx: float, dz: float) -> float:
    """The yaw (radians) whose heading points along the x-z direction (dx, dz)."""
    return math.atan2(-dx, -dz)


def quaternion_from_yaw(yaw: float) -> np.ndarray:
    """(4,) float32 unit quaternion [x, y, z, w] of a rotation by ``yaw`` radians about +y."""
    if not math.isfinite(yaw):
        raise ValueError(f"yaw must be a finite number of radians, got {yaw!r}")
    return np.array([0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)], np.float32)


def yaw_from_quaternion(q) -> float:
    """The yaw (radians, in [-pi, pi)) of the heading that quaternion ``q`` [x, y, z, w] gives the agent.

    For a pure rotation about +y this is the rotation angle; for a tilted rotation it is the yaw of the
    rotated -z axis projected on the x-z plane.

    Raises:
        ValueError: ``q`` is not 4 finite numbers of unit norm (within 1e-3), or it looks straight up or down.
    """
    # Plain Python floats: this runs on every step, where numpy's per-call overhead would dominate.
    try:
        if isinstance(q, np.ndarray) and q.ndim != 1:
            raise ValueError
        x, y, z, w = (float(v) for v in q)
    except (TypeError, ValueError):
        raise ValueError(f"rotation must be 4 finite numbers [x, y, z, w], got {q!r}") from None
    if not all(math.isfinite(v) for v in (x, y, z, w)):
        raise ValueError(f"rotation must be 4 finite numbers [x, y, z, w], got {q!r}")
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise ValueError(f"rotation quaternion [x, y, z, w] must have unit norm, got {q!r} (norm {norm:.6f})")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    # Rotated -z axis: the third column of the rotation matrix, negated.
    fx = -(2 * (x * z + w * y))
    fz = -(1 - 2 * (x * x + y * y))
    if math.hypot(fx, fz) < 1e-9:
        raise ValueError(f"rotation {q!r} looks straight up or down: its yaw is undefined")
    return wrap_angle(math.atan2(-fx, -fz))


def yaws_from_quaternions(rotations) -> np.ndarray:
    """(N,) float64 yaws of (N, 4) quaternions [x, y, z, w] (see :func:`yaw_from_quaternion`)."""
    return np.array([yaw_from_quaternion(q) for q in np.asarray(rotations, np.float64).reshape(-1, 4)])


def agent_frame_deltas(positions, yaws, origin, origin_yaw: float) -> np.ndarray:
    """Poses in the frame of an origin pose: (N, 3) float32 ``(dx, dy, dyaw)``.

    ``dx`` is metres forward and ``dy`` metres to the left of the origin's heading (the waypoint action's
    frame, see ``Simulator.move_along``), ``dyaw`` the yaw change in radians wrapped to [-pi, pi), left
    positive.

    Args:
        positions: (N, 3) world positions, metres (y is ignored).
        yaws: (N,) world yaws, radians.
        origin: (3,) the origin's position.
        origin_yaw: the origin's yaw, radians.
    """
    offset = np.asarray(positions, np.float64).reshape(-1, 3) - np.asarray(origin, np.float64).reshape(3)
    c, s = math.cos(origin_yaw), math.sin(origin_yaw)
    forward = -s * offset[:, 0] - c * offset[:, 2]
    left = -c * offset[:, 0] + s * offset[:, 2]
    dyaw = (np.asarray(yaws, np.float64).reshape(-1) - origin_yaw + math.pi) % (2 * math.pi) - math.pi
    return np.stack([forward, left, dyaw], axis=1).astype(np.float32)


def start_frame_odometry(positions, yaws, start_position, start_yaw: float) -> np.ndarray:
    """Odometry: poses in the frame of the episode's start pose, (N, 3) float32 ``(x, y, dyaw)``.

    ``x`` is metres forward and ``y`` metres to the left of the start heading, ``dyaw`` the yaw change since
    the start in radians wrapped to [-pi, pi), left positive (:func:`agent_frame_deltas` from the start pose).
    Positions and yaws are first rounded to float32, the precision of stored trajectories, so odometry
    recomputed from a stored episode's poses equals the environment's observation bit for bit.

    Args:
        positions: (N, 3) world positions, metres.
        yaws: (N,) world yaws, radians.
        start_position: (3,) the episode's start position.
        start_yaw: the episode's start yaw, radians.
    """
    positions = np.asarray(positions, np.float32).reshape(-1, 3)
    yaws = np.asarray(yaws, np.float32).reshape(-1)
    start = np.asarray(start_position, np.float32).reshape(3)
    return agent_frame_deltas(positions, yaws, start, float(np.float32(start_yaw)))


def resample_path(path, spacing: float, n: int) -> np.ndarray:
    """``n`` points every ``spacing`` metres of arc length along an (M, 3) polyline, starting one spacing
    after
    its first point and stopping at its last point (later samples repeat it): (n, 3) float64."""
    path = np.asarray(path, np.float64).reshape(-1, 3)
    if len(path) == 0:
        raise ValueError("resample_path: the path is empty")
    seg = np.linalg.norm(np.diff(path[:, [0, 2]], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.minimum(spacing * np.arange(1, n + 1), arc[-1])
    if arc[-1] <= 0:
        return np.repeat(path[-1:], n, axis=0)
    return np.stack([np.interp(targets, arc, path[:, k]) for k in range(3)], axis=1)
