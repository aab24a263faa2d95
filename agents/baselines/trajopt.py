"""Keypoints -> dense paths -> waypoints, as the ``TrajOpt`` of iPlanner and ViPlanner makes paths.

The predicted keypoints (B, K, 3) get the origin prepended and are interpolated by a cubic Hermite spline over
knots ``0..K`` whose tangents are finite differences (central inside, one-sided at both ends), sampled every
``step`` knots (0.1 → 10·K + 1 points). :func:`path_to_waypoints` then picks ``n`` points of such a path at
equal arc-length spacing and gives each the heading of the path there: the ``(dx, dy, dyaw)`` waypoints that
NavGym's waypoint environments follow.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hermite_path(keypoints: Tensor, step: float = 0.1) -> Tensor:
    """(B, K, D) keypoints -> (B, round(K / step) + 1, D) path from the origin through every keypoint."""
    b, k, d = keypoints.shape
    p = torch.cat([keypoints.new_zeros(b, 1, d), keypoints], dim=1)  # (B, K+1, D), knots 0..K
    tangents = torch.empty_like(p)
    tangents[:, 0] = p[:, 1] - p[:, 0]
    tangents[:, -1] = p[:, -1] - p[:, -2]
    tangents[:, 1:-1] = (p[:, 2:] - p[:, :-2]) / 2
    t = torch.linspace(0.0, float(k), round(k / step) + 1, dtype=p.dtype, device=p.device)
    seg = t.floor().clamp(max=k - 1).long()
    s = (t - seg.to(t.dtype))[None, :, None]  # local parameter in [0, 1]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * p[:, seg] + h10 * tangents[:, seg] + h01 * p[:, seg + 1] + h11 * tangents[:, seg + 1]


def path_to_waypoints(path: Tensor, n: int, max_length: float | None = None) -> Tensor:
    """(B, P, >=2) path (x forward, y left, metres, from the origin) -> (B, n, 3) ``(dx, dy, dyaw)``.

    Waypoint ``i`` lies at arc length ``(i + 1) / n`` of the path's length (of its first ``max_length``
    metres when given); its yaw is the direction of the path segment it falls on (0 for a path that does not
    move).
    """
    xy = path[..., :2]
    seg = (xy[:, 1:] - xy[:, :-1]).norm(dim=-1)  # (B, P-1)
    arc = torch.cat([seg.new_zeros(seg.shape[0], 1), seg.cumsum(1)], dim=1)  # (B, P)
    length = arc[:, -1:] if max_length is None else arc[:, -1:].clamp(max=max_length)
    targets = length * torch.arange(1, n + 1, dtype=xy.dtype, device=xy.device) / n  # (B, n)
    idx = torch.searchsorted(arc, targets.contiguous()).clamp(1, xy.shape[1] - 1)  # segment end index
    a0, a1 = arc.gather(1, idx - 1), arc.gather(1, idx)
    w = ((targets - a0) / (a1 - a0).clamp(min=1e-9)).unsqueeze(-1)
    p0 = xy.gather(1, (idx - 1).unsqueeze(-1).expand(-1, -1, 2))
    p1 = xy.gather(1, idx.unsqueeze(-1).expand(-1, -1, 2))
    points = p0 + w * (p1 - p0)
    d = p1 - p0
    yaw = torch.atan2(d[..., 1], d[..., 0]) * (d.norm(dim=-1) > 1e-9)
    return torch.cat([points, yaw.unsqueeze(-1)], dim=-1)
