"""NavDP's inputs, shared by training and acting: letter-boxed images, clipped depth, the point goal in
NavDP's ``(x, y, θ)`` form, the mixed-goal pattern and the scaled per-step targets.

Shapes: ``N`` images, ``S`` the input side, ``B`` batch, ``H`` horizon.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from agents.base import as_tensor
from agents.navdp.config import GOAL_KINDS
from agents.preprocess import IMAGENET_MEAN, IMAGENET_STD

#: Samples per cycle of the mixed-goal pattern: each of the 3 goal slots picks one of 3 kinds (3³).
PATTERN = 27


def letterbox(x: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """(N, C, H, W) float -> (N, C, size, size): zero-padded to a centred square, then resized."""
    h, w = x.shape[-2:]
    side = max(h, w)
    if h != w:
        top, left = (side - h) // 2, (side - w) // 2
        x = F.pad(x, (left, side - w - left, top, side - h - top))
    if side == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest")
    return F.interpolate(x, size=(size, size), mode=mode, align_corners=False, antialias=True)


def rgb_input(rgb: Any, size: int, normalize: bool, device: torch.device | str | None = None) -> Tensor:
    """(..., H, W, 3) uint8 -> (N, 3, size, size) float32 in [0, 1], ImageNet-normalised if asked."""
    x = as_tensor(rgb, device=device)
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"rgb must have shape (..., H, W, 3), got {tuple(x.shape)}")
    # (..., H, W, 3) -> (N, 3, H, W)
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).contiguous().float() / 255.0
    x = letterbox(x, size).clamp_(0.0, 1.0)
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


def depth_input(
    depth: Any, size: int, min_depth: float, max_depth: float, device: torch.device | str | None = None
) -> Tensor:
    """(..., H, W, 1) metres -> (N, 3, size, size) metres, 0 outside [min_depth, max_depth] (and NaN),
    replicated to 3 channels, not normalised (NavDP)."""
    x = as_tensor(depth, device=device)
    if x.ndim < 3 or x.shape[-1] != 1:
        raise ValueError(f"depth must have shape (..., H, W, 1), got {tuple(x.shape)}")
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).contiguous().float()  # (N, 1, H, W)
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    x = torch.where((x >= min_depth) & (x <= max_depth), x, torch.zeros_like(x))
    return letterbox(x, size, mode="nearest").expand(-1, 3, -1, -1)


def mask_input(mask: Any, size: int, device: torch.device | str | None = None) -> Tensor:
    """(B, H, W) pixel-goal mask (non-zero = goal) -> (B, 1, size, size) float32 in {0, 1}."""
    x = as_tensor(mask, device=device)
    if x.ndim != 3:
        raise ValueError(f"pixelgoal must have shape (B, H, W), got {tuple(x.shape)}")
    return letterbox((x != 0).float()[:, None], size, mode="nearest")


def point_goal_xyt(pointgoal: Any, max_distance: float, device: torch.device | str | None = None) -> Tensor:
    """(B, 2) (distance m, angle rad left-positive) -> (B, 3) NavDP's ``(x fwd, y left, θ)``, x clipped to
    [0, max_distance] and y to [-max_distance, max_distance] metres (NavDP's server), θ the angle."""
    g = as_tensor(pointgoal, torch.float32, device)
    if g.ndim != 2 or g.shape[1] != 2:
        raise ValueError(f"pointgoal must have shape (B, 2) (distance, angle), got {tuple(g.shape)}")
    x = (g[:, 0] * torch.cos(g[:, 1])).clamp(0.0, max_distance)
    y = (g[:, 0] * torch.sin(g[:, 1])).clamp(-max_distance, max_distance)
    return torch.stack([x, y, g[:, 1]], dim=1)


def mixed_goal_kinds(available: Tensor) -> Tensor:
    """Goal kind index (into :data:`GOAL_KINDS`) of each goal slot, or -1 for an empty slot.

    Sample ``i`` fills slot ``k`` with kind ``(i mod 27) // 3**k mod 3`` (InternNav's deterministic pattern);
    a kind the sample lacks is replaced by its available kinds in turn (the digit modulo their count); a
    sample with no goal keeps its slots empty.

    Args:
        available: (B, 3) bool, which of point, image, pixel goal each sample has.

    Returns:
        (B, 3) int64.
    """
    b = available.shape[0]
    pattern = torch.arange(b, device=available.device) % PATTERN
    digits = torch.stack([(pattern // 3**k) % 3 for k in range(3)], dim=1)  # (B, 3 slots)
    count = available.sum(dim=1, keepdim=True)
    # rank r of an available kind -> its index: the r-th True of the row
    order = torch.argsort((~available).to(torch.int8), dim=1, stable=True)  # available kinds first
    wanted_ok = torch.gather(available, 1, digits)
    rank = digits % count.clamp(min=1)
    substitute = torch.gather(order, 1, rank)
    kinds = torch.where(wanted_ok, digits, substitute)
    return torch.where(count > 0, kinds, torch.full_like(kinds, -1))


def path_to_steps(path: Tensor, scale: float) -> Tensor:
    """(B, H, 3) cumulative agent-frame path -> (B, H, 3) per-step deltas × ``scale`` (diffusion target)."""
    previous = torch.cat([torch.zeros_like(path[:, :1]), path[:, :-1]], dim=1)
    return (path - previous) * scale


def steps_to_path(steps: Tensor, scale: float) -> Tensor:
    """Inverse of :func:`path_to_steps`: ``cumsum(steps / scale)`` over the horizon."""
    return torch.cumsum(steps / scale, dim=-2)


__all__ = [
    "GOAL_KINDS",
    "depth_input",
    "letterbox",
    "mask_input",
    "mixed_goal_kinds",
    "path_to_steps",
    "point_goal_xyt",
    "rgb_input",
    "steps_to_path",
]
