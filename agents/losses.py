"""Imitation losses of the VLN-CE agents: inflection-weighted cross-entropy and the progress-monitor MSE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def inflection_weights(actions: Tensor, mask: Tensor, coef: float = 3.2) -> Tensor:
    """Per-step weights of inflection-weighted imitation (Krantz et al. 2020, VLN-CE ``use_iw``).

    An inflection is a step whose label differs from the previous step's label; step 0 is an inflection.
    Inflections weigh ``coef``, other valid steps 1, padded steps 0.

    Args:
        actions: (B, T) int64 expert labels.
        mask: (B, T) bool, valid steps.
        coef: inflection weight (3.2 for R2R).

    Returns:
        (B, T) float32 weights.
    """
    change = torch.ones_like(actions, dtype=torch.bool)
    change[:, 1:] = actions[:, 1:] != actions[:, :-1]
    weights = torch.where(change, torch.full_like(actions, coef, dtype=torch.float32), 1.0)
    return weights * mask.float()


def weighted_action_loss(logits: Tensor, actions: Tensor, mask: Tensor, coef: float) -> tuple[Tensor, Tensor]:
    """Inflection-weighted cross-entropy: per trajectory Σ_t w_t·CE_t / Σ_t w_t, then the mean over
    trajectories.

    Args:
        logits: (B, T, A) action logits.
        actions: (B, T) int64 labels (any value where ``mask`` is False).
        mask: (B, T) bool valid steps; trajectories without a valid step are left out of the mean.
        coef: inflection weight.

    Returns:
        (loss scalar, accuracy scalar = fraction of valid steps whose argmax equals the label).
    """
    labels = torch.where(mask, actions, torch.zeros_like(actions))
    # (B, T, A) -> (B*T, A) for cross_entropy, back to (B, T)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    ce = ce.view_as(labels)
    weights = inflection_weights(labels, mask, coef)
    total = weights.sum(dim=1)
    has_steps = total > 0
    per_trajectory = (weights * ce).sum(dim=1)[has_steps] / total[has_steps]
    correct = (logits.argmax(dim=-1) == labels) & mask
    accuracy = correct.sum().float() / mask.sum().clamp(min=1)
    return per_trajectory.mean(), accuracy


def progress_loss(predicted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error of the progress monitor over all valid steps (VLN-CE's ``AuxLosses`` reduction)."""
    squared = (predicted - target.to(predicted.dtype)) ** 2
    return (squared * mask).sum() / mask.sum().clamp(min=1)
