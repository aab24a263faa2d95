"""Config of the ViNT agent: a small default that trains on a CPU and the released sizes.

The default keeps ViNT's structure and inputs (an EfficientNet-B0 token per 85×64 context frame and one for
the current frame stacked with the goal, a transformer over the ``context + 2`` tokens, an MLP to a
temporal-distance head and 5 cumulative ``(x, y, cos, sin)`` waypoints) with narrower layers: EfficientNet-B0
at width 0.25 with a 256-channel head and no classifier, 64-d tokens, 2 layers of 4 heads. Its parameters:
0.91 M. :meth:`ViNTConfig.paper` gives the released model (29,662,397 parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.baselines.visualnav import VisualNavConfig

#: Overrides turning the default into the released ViNT.
PAPER_SIZES: dict[str, Any] = {
    "width": 1.0,
    "feature_dim": 1280,
    "encoding_size": 512,
    "n_heads": 4,
    "n_layers": 4,
    "classifier": True,
}


@dataclass
class ViNTConfig(VisualNavConfig):
    """ViNT's sizes, inputs, acting and loss; the shared fields are :class:`VisualNavConfig`'s.

    Attributes:
        name: registry key (``vint``).
        width, feature_dim: EfficientNet-B0 width multiplier and head channels (released: 1.0, 1280).
        encoding_size: token width (released: 512).
        n_heads, n_layers: the transformer's heads and layers (released: 4, 4).
        classifier: keep EfficientNet's unused classifier heads (released state dicts hold them).
        alpha: loss weight, ``alpha · 1e-2 · distance MSE + (1 - alpha) · waypoint MSE`` (published 0.5).
        stop_distance: stay put at a predicted temporal distance <= 7 (NavDP's ViNT wrapper).
    """

    name: str = "vint"
    width: float = 0.25
    feature_dim: int = 256
    encoding_size: int = 64
    n_heads: int = 4
    n_layers: int = 2
    classifier: bool = False
    alpha: float = 0.5
    stop_distance: float | None = 7.0

    @classmethod
    def paper(cls, **overrides: Any) -> ViNTConfig:
        """The released sizes (:data:`PAPER_SIZES`), then ``overrides`` (e.g. ``weights=...``)."""
        return cls(**{**PAPER_SIZES, **overrides})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name != "vint":
            self._fail("name", "'vint'")
        self._check_positive("feature_dim", "encoding_size", "n_heads", "n_layers")
        if self.encoding_size % self.n_heads:
            self._fail("encoding_size", f"a multiple of n_heads ({self.n_heads})")
        if not (math.isfinite(self.width) and self.width > 0):
            self._fail("width", "a positive number")
        if not 0.0 <= self.alpha <= 1.0:
            self._fail("alpha", "in [0, 1]")
