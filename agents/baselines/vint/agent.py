"""The ViNT agent (Shah et al. 2023): GNM's acting and loss (:mod:`agents.baselines.gnm.agent`) with ViNT's
network, and the stop rule of NavDP's ViNT wrapper (``stop_distance`` 7)."""

from __future__ import annotations

from torch import nn

from agents.base import AGENTS
from agents.baselines.gnm.agent import GNMAgent
from agents.baselines.vint.config import ViNTConfig
from agents.baselines.vint.network import ViNTNet


@AGENTS.register("vint")
class ViNTAgent(GNMAgent):
    """ViNT; see the module docstring."""

    name = "vint"
    config_class = ViNTConfig

    def build_net(self, config: ViNTConfig) -> nn.Module:
        """:class:`ViNTNet` at the config's sizes."""
        c = config
        return ViNTNet(
            c.context_size, c.len_traj_pred, c.encoding_size, c.width, c.feature_dim, c.n_heads, c.n_layers,
            c.classifier,
        )  # fmt: skip
