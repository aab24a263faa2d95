"""Config of the Cross-Modal Attention agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from agents.policy_config import VLNPolicyConfig


@dataclass
class CMAConfig(VLNPolicyConfig):
    """CMA (VLN-CE ``CMAPolicy``): GRU-1 over vision, text attention, visual attention, GRU-2.

    Attributes (besides :class:`~agents.policy_config.VLNPolicyConfig`'s):
        bidirectional: bi-LSTM instruction encoder (VLN-CE: yes, per-token features 2 × 128).
        prev_action_embedding_size: previous-action embedding (``Embedding(5, 32)``; index 0 = episode start).
        spatial_embedding_size: learned per-cell embedding appended to the RGB and depth maps (64 in VLN-CE).

    ``hidden_size`` must be even: attention queries and keys have ``hidden_size // 2`` channels.
    ``CMAConfig.paper()`` gives VLN-CE's sizes: 36.86 M parameters, 6.15 M trainable (2504-word vocabulary).
    """

    PAPER_EXTRA: ClassVar[dict[str, Any]] = {"prev_action_embedding_size": 32, "spatial_embedding_size": 64}

    name: str = "cma"
    bidirectional: bool = True
    prev_action_embedding_size: int = 32
    spatial_embedding_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size % 2:
            self._fail("hidden_size", "even (attention uses hidden_size // 2 channels)")
        if isinstance(self.spatial_embedding_size, bool) or self.spatial_embedding_size < 1:
            self._fail("spatial_embedding_size", "a positive integer")
