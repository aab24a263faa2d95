"""Config of the NoMaD agent: a small default that trains on a CPU and the released sizes.

The default keeps NoMaD's structure and inputs (GroupNorm EfficientNet-B0 tokens for 4 frames of 96×96 and
for the current frame stacked with the goal, a goal-masked transformer averaged into one context vector, a
1-D conditional U-Net denoising 8 normalised ``(Δx, Δy)`` deltas, a temporal-distance head) with narrower
layers: EfficientNet-B0 at width 0.25 with a 256-channel head and no classifier, 64-d tokens, 2 layers of
4 heads, U-Net levels (16, 32, 64) with a 64-d step embedding. Its parameters: 1.07 M.
:meth:`NoMaDConfig.paper` gives the released model (19,049,675 parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.baselines.visualnav import VisualNavConfig

#: Overrides turning the default into the released NoMaD.
PAPER_SIZES: dict[str, Any] = {
    "width": 1.0,
    "feature_dim": 1280,
    "encoding_size": 256,
    "n_heads": 4,
    "n_layers": 4,
    "classifier": True,
    "unet_width": 64,
    "step_embed_dim": 256,
}
#: Values of :attr:`NoMaDConfig.goal`.
GOAL_CHOICES = ("auto", "none")


@dataclass
class NoMaDConfig(VisualNavConfig):
    """NoMaD's sizes, diffusion, acting and loss; the shared fields are :class:`VisualNavConfig`'s.

    Attributes:
        name: registry key (``nomad``).
        context_size, len_traj_pred, image_width, image_height: NoMaD's 3, 8, 96, 96.
        width, feature_dim: EfficientNet-B0 width multiplier and head channels (released: 1.0, 1280).
        encoding_size: token and context width (released: 256).
        n_heads, n_layers: the transformer's heads and layers (released: 4, 4).
        classifier: keep EfficientNet's unused classifier heads (released state dicts hold them).
        unet_width: channels of the U-Net's first level; the levels are (w, 2w, 4w) (released: 64).
        step_embed_dim: the U-Net's diffusion-step embedding (released: 256).
        num_diffusion_iters: DDPM train and sampling steps (10).
        goal_mask_prob: probability of masking the goal of a training sample (published 0.5).
        alpha: loss weight, ``alpha · distance MSE + (1 - alpha) · ε-MSE`` (published 1e-4).
        goal: ``auto`` (the image goal when the observation has ``imagegoal``, else masked) or ``none``
            (always masked: exploration).
        stop_distance: stay put at a predicted temporal distance <= 7 (NavDP's NoMaD wrapper); only with a
            goal.
    """

    name: str = "nomad"
    context_size: int = 3
    len_traj_pred: int = 8
    image_width: int = 96
    image_height: int = 96
    width: float = 0.25
    feature_dim: int = 256
    encoding_size: int = 64
    n_heads: int = 4
    n_layers: int = 2
    classifier: bool = False
    unet_width: int = 16
    step_embed_dim: int = 64
    num_diffusion_iters: int = 10
    goal_mask_prob: float = 0.5
    alpha: float = 1e-4
    goal: str = "auto"
    stop_distance: float | None = 7.0

    @classmethod
    def paper(cls, **overrides: Any) -> NoMaDConfig:
        """The released sizes (:data:`PAPER_SIZES`), then ``overrides`` (e.g. ``weights=...``)."""
        return cls(**{**PAPER_SIZES, **overrides})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name != "nomad":
            self._fail("name", "'nomad'")
        self._check_positive(
            "feature_dim", "encoding_size", "n_heads", "n_layers", "unet_width", "step_embed_dim",
            "num_diffusion_iters",
        )  # fmt: skip
        if self.encoding_size % self.n_heads:
            self._fail("encoding_size", f"a multiple of n_heads ({self.n_heads})")
        if self.unet_width % 8:
            self._fail("unet_width", "a multiple of 8 (GroupNorm of 8 groups)")
        if self.len_traj_pred % 4:
            self._fail("len_traj_pred", "a multiple of 4 (the U-Net halves the sequence twice)")
        if self.step_embed_dim % 2:
            self._fail("step_embed_dim", "even")
        if not (math.isfinite(self.width) and self.width > 0):
            self._fail("width", "a positive number")
        for field in ("goal_mask_prob", "alpha"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                self._fail(field, "in [0, 1]")
        if self.goal not in GOAL_CHOICES:
            self._fail("goal", f"one of {list(GOAL_CHOICES)}")
