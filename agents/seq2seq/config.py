"""Config of the Seq2Seq agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from agents.policy_config import VLNPolicyConfig


@dataclass
class Seq2SeqConfig(VLNPolicyConfig):
    """Seq2Seq (VLN-CE ``Seq2SeqPolicy``): [instruction state, depth, RGB (, prev action)] → GRU → actions.

    Attributes (besides :class:`~agents.policy_config.VLNPolicyConfig`'s):
        bidirectional: bi-LSTM instruction encoder (VLN-CE: uni-directional, final state only).
        use_prev_action: append a learned previous-action embedding to the GRU input (VLN-CE default: off).
        prev_action_embedding_size: size of that embedding (``Embedding(5, 32)``; index 0 = episode start).

    ``Seq2SeqConfig.paper()`` gives VLN-CE's sizes: GloVe-50 → LSTM 128, depth 128, RGB 256, GRU 512.
    """

    PAPER_EXTRA: ClassVar[dict[str, Any]] = {"use_prev_action": False, "prev_action_embedding_size": 32}

    name: str = "seq2seq"
    bidirectional: bool = False
    use_prev_action: bool = False
    prev_action_embedding_size: int = 32
