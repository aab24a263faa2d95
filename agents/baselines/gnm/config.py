"""Config of the GNM agent: a small default that trains on a CPU and the released ``gnm_large`` sizes.

The default keeps GNM's structure and inputs (two MobileNetV2 encoders over 6 stacked 85×64 frames, the
second with the goal image; an MLP to a temporal-distance head and 5 cumulative ``(x, y, cos, sin)``
waypoints) with narrower layers: MobileNetV2 at width 0.25 with a 256-channel head, 128-d encodings. Its
parameters: 0.47 M. :meth:`GNMConfig.paper` gives the released model (8,663,797 parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.baselines.visualnav import VisualNavConfig

#: Overrides turning the default into the released GNM (``gnm_large.pth``'s config).
PAPER_SIZES: dict[str, Any] = {
    "width": 1.0,
    "feature_dim": 1280,
    "obs_encoding_size": 1024,
    "goal_encoding_size": 1024,
    "goal_hidden": 1024,
}


@dataclass
class GNMConfig(VisualNavConfig):
    """GNM's sizes, inputs, acting and loss; the shared fields are :class:`VisualNavConfig`'s.

    Attributes:
        name: registry key (``gnm``).
        width: MobileNetV2 width multiplier (released: 1.0).
        feature_dim: channels of the MobileNetV2 head (released: 1280).
        obs_encoding_size, goal_encoding_size: the compressed encodings (released: 1024).
        goal_hidden: hidden width of the goal compressor (released: 1024).
        alpha: loss weight, ``alpha · 1e-2 · distance MSE + (1 - alpha) · waypoint MSE`` (published 0.5).
    """

    name: str = "gnm"
    width: float = 0.25
    feature_dim: int = 256
    obs_encoding_size: int = 128
    goal_encoding_size: int = 128
    goal_hidden: int = 128
    alpha: float = 0.5

    @classmethod
    def paper(cls, **overrides: Any) -> GNMConfig:
        """The released sizes (:data:`PAPER_SIZES`), then ``overrides`` (e.g. ``weights=...``)."""
        return cls(**{**PAPER_SIZES, **overrides})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name != "gnm":
            self._fail("name", "'gnm'")
        self._check_positive("feature_dim", "obs_encoding_size", "goal_encoding_size", "goal_hidden")
        if not (math.isfinite(self.width) and self.width > 0):
            self._fail("width", "a positive number")
        if not 0.0 <= self.alpha <= 1.0:
            self._fail("alpha", "in [0, 1]")
