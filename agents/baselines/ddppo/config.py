"""Config of the DD-PPO point-goal agent, with a small default and the released sizes.

The default is small enough to train by reinforcement learning on a CPU: a GroupNorm ResNet-18 of 8 base
planes on 64×64 depth, an LSTM of 128 × 2 layers. :meth:`DDPPOConfig.paper` gives the policy of the released
``pointnav_weights.pth`` as NavDP's benchmark runs it (``../shared/reference/checkpoints.md``): ResNet-18 of
32 base planes, LSTM 512 × 2 layers, depth resized to 224×224.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Overrides turning the defaults into the released policy.
PAPER_SIZES: dict[str, Any] = {"baseplanes": 32, "hidden_size": 512, "image_size": 224}


@dataclass
class DDPPOConfig:
    """DD-PPO's network sizes and input handling.

    Attributes:
        name: registry key (``ddppo``).
        backbone: ``resnet18`` (released) or ``resnet50``.
        baseplanes: ResNet width (released: 32); GroupNorm uses ``baseplanes // 2`` groups.
        hidden_size: LSTM width (released: 512; two layers).
        image_size: side in pixels the depth image is resized to: a multiple of 64, or NavDP's 224 (the
            released network is built for 256, whose 4×4 feature map 224 also gives).
        min_depth, max_depth: depth is clipped to [min, max] metres and normalised to [0, 1] over that range
            (vlfm, which trained the released weights: 0.5, 5).
        max_goal_distance: the goal's (forward, left) offset is clipped to ±this many metres before it is
            turned into ``(rho, theta)`` (NavDP's server: 5).
        weights: a converted release (``python -m agents.baselines.convert ddppo SRC DST``) or a plain state
            dict loaded at construction; None keeps the random initialisation.
    """

    name: str = "ddppo"
    backbone: str = "resnet18"
    baseplanes: int = 8
    hidden_size: int = 128
    image_size: int = 64
    min_depth: float = 0.5
    max_depth: float = 5.0
    max_goal_distance: float = 5.0
    weights: str | None = None

    def __post_init__(self) -> None:
        def fail(field: str, expected: str) -> None:
            raise ValueError(f"ddppo config: {field} must be {expected}, got {getattr(self, field)!r}")

        if self.backbone not in ("resnet18", "resnet50"):
            fail("backbone", "'resnet18' or 'resnet50'")
        if self.baseplanes < 2 or self.baseplanes % 2:
            fail("baseplanes", "an even integer >= 2")
        if self.hidden_size < 1:
            fail("hidden_size", "a positive integer")
        if self.image_size < 64 or (self.image_size % 64 and self.image_size != 224):
            fail("image_size", "a multiple of 64, or 224")
        if not 0.0 <= self.min_depth < self.max_depth:
            fail("max_depth", f"> min_depth={self.min_depth} >= 0")
        if self.max_goal_distance <= 0:
            fail("max_goal_distance", "> 0")

    @property
    def network_input_size(self) -> int:
        """The size the network's compression layer is built for (224 -> 256, the released layout)."""
        return 256 if self.image_size == 224 else self.image_size

    @classmethod
    def paper(cls, **overrides: Any) -> DDPPOConfig:
        """The released policy's sizes (:data:`PAPER_SIZES`), then ``overrides``."""
        return cls(**{**PAPER_SIZES, **overrides})
