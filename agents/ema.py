"""An exponential moving average of a module's weights (diffusion policies act with it), updated from
:meth:`agents.base.Agent.after_step`."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMAWeights(nn.Module):
    """A frozen copy of ``module`` whose parameters track ``decay * ema + (1 - decay) * module``.

    The copy is a submodule, so its weights are saved and loaded with the agent; it never receives gradients
    (leave it out of :meth:`agents.base.Agent.param_groups`). Buffers (normalisation statistics) are copied.

    Args:
        module: the trained module.
        decay: in [0, 1); 0 copies the weights at every update.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMAWeights: decay must lie in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.module = copy.deepcopy(module).requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """One step of the average toward ``module``'s current weights."""
        for shadow, param in zip(self.module.parameters(), module.parameters(), strict=True):
            shadow.lerp_(param.detach(), 1.0 - self.decay)
        for shadow, buffer in zip(self.module.buffers(), module.buffers(), strict=True):
            shadow.copy_(buffer)

    def forward(self, *args, **kwargs):
        """The averaged module's forward."""
        return self.module(*args, **kwargs)
