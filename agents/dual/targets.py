"""System-1 targets of the dual systems: the future path resampled by a cubic spline to 33 points every
0.1 m, as 32 steps ``(dx, dy, dyaw)`` with xy × 4 (InternVLA-N1's dual training, anchors Part A §2.6).

Shapes: ``N`` poses, ``P = N_STEPS + 1`` resampled points, ``B`` batch.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.interpolate import CubicSpline
from torch import Tensor

from agents.dual.config import N_STEPS, PATH_SPACING, XY_SCALE


def resample_path(path: np.ndarray, spacing: float = PATH_SPACING, n_points: int = N_STEPS + 1) -> np.ndarray:
    """(N, 3) agent-frame poses ``(x, y, yaw)`` (first = the agent) -> (P, 3) points every ``spacing`` m.

    The distinct positions (turning in place keeps the last yaw there, but the first pose's) are joined by
    a cubic spline over their chord length (linear with two of them); points past the path's end repeat its
    end; yaw is interpolated (unwrapped) over the same arc length.

    Raises:
        ValueError: ``path`` is not (N, 3) with N >= 1.
    """
    p = np.asarray(path, np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 1:
        raise ValueError(f"resample_path: path must have shape (N, 3) with N >= 1, got {p.shape}")
    rows = [p[0].copy()]
    for row in p[1:]:
        if np.hypot(*(row[:2] - rows[-1][:2])) > 1e-6:
            rows.append(row.copy())
        elif len(rows) > 1:  # turning in place on the way: the latest heading there (the start stays put)
            rows[-1][2] = row[2]
    pts = np.stack(rows)
    pts[:, 2] = np.unwrap(pts[:, 2])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts[:, :2], axis=0).T))])
    s = np.minimum(spacing * np.arange(n_points), arc[-1])
    if len(pts) == 1:
        return np.repeat(pts, n_points, axis=0)
    if len(pts) == 2:
        xy = np.stack([np.interp(s, arc, pts[:, k]) for k in range(2)], axis=1)
    else:
        xy = CubicSpline(arc, pts[:, :2], axis=0, bc_type="natural")(s)
    yaw = np.interp(s, arc, pts[:, 2])
    return np.concatenate([xy, yaw[:, None]], axis=1)


def path_targets(path: np.ndarray) -> np.ndarray:
    """(N, 3) agent-frame poses from the current one -> (N_STEPS, 3) float32 training target: the steps
    between consecutive resampled points, xy × :data:`XY_SCALE`."""
    points = resample_path(path)
    steps = np.diff(points, axis=0)
    steps[:, :2] *= XY_SCALE
    return steps.astype(np.float32)


def steps_to_waypoints(steps: Tensor) -> Tensor:
    """(..., N_STEPS, 3) scaled steps -> (..., N_STEPS, 3) cumulative agent-frame waypoints (inverse of
    :func:`path_targets` for a path starting at the agent with yaw 0)."""
    scale = steps.new_tensor([XY_SCALE, XY_SCALE, 1.0])
    return torch.cumsum(steps / scale, dim=-2)
