"""The GNM agent (Shah et al. 2023): image-goal navigation from stacked context frames.

Acting, training inputs, frame spacing, un-normalisation and the no-goal behaviour are
:mod:`agents.baselines.visualnav`'s. **Loss** (vint_train's, published): ``alpha · 1e-2 · MSE(distance) +
(1 - alpha) · MSE(waypoints)`` with ``alpha = 0.5``; the waypoint labels are the window's future poses as
cumulative ``(x / scale, y / scale, cos dyaw, sin dyaw)`` and the MSE runs over positions and angles; the
distance label is the steps to the episode's end (where it reaches the goal image's pose) in frames of
``stride`` steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.base import AGENTS, as_tensor
from agents.baselines.gnm.config import GNMConfig
from agents.baselines.gnm.network import GNMNet
from agents.baselines.visualnav import VisualNavAgent, cumulative_to_waypoints, gnm_labels, masked_mean


@AGENTS.register("gnm")
class GNMAgent(VisualNavAgent):
    """GNM; see the module docstring and :class:`agents.baselines.visualnav.VisualNavAgent`."""

    name = "gnm"
    config_class = GNMConfig

    def build_net(self, config: GNMConfig) -> nn.Module:
        """:class:`GNMNet` at the config's sizes."""
        c = config
        return GNMNet(
            c.context_size, c.len_traj_pred, True, c.obs_encoding_size, c.goal_encoding_size, c.width,
            c.feature_dim, c.goal_hidden,
        )  # fmt: skip

    def forward_net(self, context: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 1) distance and (B, T, 4) cumulative ``(x, y, cos, sin)``."""
        return self.net(context, goal)

    def predict(self, obs: Mapping[str, Any], deterministic: bool) -> tuple[Tensor, Tensor]:
        """See :meth:`VisualNavAgent.predict`; without ``imagegoal`` a random goal image per episode."""
        rgb = np.asarray(as_tensor(obs["rgb"]).cpu())
        context = self.context(rgb)
        goal = obs.get("imagegoal")
        if goal is None:
            goal = self.noise_goals(rgb.shape[1:])
        distance, pred = self.forward_net(context, self.goal_input(goal))
        return cumulative_to_waypoints(pred, self.config.waypoint_scale), distance[:, 0]

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """See the module docstring; ``batch`` is not modified."""
        c = self.config
        context, goal, future, distance = self.window_inputs(batch)
        dist_pred, pred = self.forward_net(context, goal)
        labels = gnm_labels(future, c.waypoint_scale)
        ones = torch.ones(len(future), device=future.device)
        action = masked_mean(F.mse_loss(pred, labels, reduction="none"), ones)
        dist = F.mse_loss(dist_pred[:, 0], distance)
        loss = c.alpha * 1e-2 * dist + (1.0 - c.alpha) * action
        return loss, {"loss/action": float(action.detach()), "loss/distance": float(dist.detach())}
