"""Image preprocessing of the learned agents: channel-first float tensors at the agent's input size."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from agents.base import as_tensor

#: ImageNet channel statistics of torchvision's pretrained ResNets.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) float images to size×size (bilinear, anti-aliased); a no-op at that size."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def preprocess_rgb(
    rgb: Any, size: int, normalize: bool = False, device: torch.device | str | None = None
) -> torch.Tensor:
    """(..., H, W, 3) uint8 → (N, 3, size, size) float32 in [0, 1] (N = product of the leading dims).

    With ``normalize`` the ImageNet mean/std are applied after scaling (VLN-CE does not apply them).
    """
    x = as_tensor(rgb, device=device)
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"rgb must have shape (..., H, W, 3), got {tuple(x.shape)}")
    # (..., H, W, 3) -> (N, 3, H, W), contiguous: GroupNorm/1×1-conv backward on channels-last CPU tensors
    # corrupts memory in torch 2.13 (double free), and a permuted view is channels-last.
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).contiguous().float() / 255.0
    x = resize(x, size).clamp_(0.0, 1.0)
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


def preprocess_depth(
    depth: Any, size: int, max_depth: float = 10.0, device: torch.device | str | None = None
) -> torch.Tensor:
    """(..., H, W, 1) float z-depth in metres → (N, 1, size, size) float32 ``clip(depth / max_depth, 0, 1)``.

    NaN becomes 0 and +inf becomes 1.
    """
    x = as_tensor(depth, device=device)
    if x.ndim < 3 or x.shape[-1] != 1:
        raise ValueError(f"depth must have shape (..., H, W, 1), got {tuple(x.shape)}")
    # (..., H, W, 1) -> (N, 1, H, W)
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).contiguous().float()
    x = torch.nan_to_num(x, nan=0.0, posinf=max_depth, neginf=0.0) / max_depth
    return resize(x.clamp(0.0, 1.0), size).clamp_(0.0, 1.0)
