"""CMA agent: the VLN-CE Cross-Modal Attention network behind the shared recurrent-agent machinery."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from agents.base import AGENTS
from agents.cma.config import CMAConfig
from agents.cma.network import CMANet
from agents.recurrent import RecurrentVLNAgent


@AGENTS.register("cma")
class CMAAgent(RecurrentVLNAgent):
    """VLN-CE's Cross-Modal Attention agent (optionally with progress monitor), trained by imitation.

    Recurrent state per env: 2 layers (GRU-1, GRU-2) × ``hidden_size``.
    """

    name = "cma"
    config_class = CMAConfig
    num_recurrent_layers: ClassVar[int] = 2

    def build_net(self, vocab_size: int, embeddings: Tensor | None, load_pretrained: bool) -> nn.Module:
        """A :class:`~agents.cma.network.CMANet` for this agent's config."""
        return CMANet(self.config, vocab_size, embeddings, load_pretrained)
