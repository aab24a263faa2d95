"""GNM (Shah et al. 2023) at its released ``gnm_large`` size (8,663,797 parameters), with its parameter names.

Two MobileNetV2 encoders: ``obs_mobilenet`` over the context frames stacked on channels (``3 (context + 1)``),
``goal_mobilenet`` over the same frames plus the goal image; each is average-pooled to 1280 values and
compressed to 1024; an MLP (2048 → 256 → 32) feeds a temporal-distance head and an action head of
``len_traj_pred`` waypoints ``(x, y, cos, sin)`` whose positions are cumulated and whose angles are
normalised, as published.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.baselines.backbones import mobilenet_v2_features


class GNMNet(nn.Module):
    """GNM: obs (B, 3 (context + 1), H, W), goal (B, 3, H, W), ImageNet-normalised, oldest frame first ->
    distance (B, 1), actions (B, len_traj_pred, 4).

    Args:
        context_size: past frames besides the current one (5).
        len_traj_pred: predicted waypoints (5).
        learn_angle: predict (cos, sin) of the heading too (True).
        obs_encoding_size, goal_encoding_size: compressed encodings (1024).
        width: MobileNetV2 width multiplier (1.0).
        feature_dim: channels of the MobileNetV2 head, the pooled feature size (1280).
        goal_hidden: hidden width of the goal compressor (1024).
    """

    def __init__(
        self,
        context_size: int = 5,
        len_traj_pred: int = 5,
        learn_angle: bool = True,
        obs_encoding_size: int = 1024,
        goal_encoding_size: int = 1024,
        width: float = 1.0,
        feature_dim: int = 1280,
        goal_hidden: int = 1024,
    ) -> None:
        super().__init__()
        self.context_size, self.len_traj_pred, self.learn_angle = context_size, len_traj_pred, learn_angle
        self.n_action_params = 4 if learn_angle else 2
        self.obs_mobilenet = mobilenet_v2_features(3 * (context_size + 1), width, feature_dim)
        self.compress_observation = nn.Sequential(nn.Linear(feature_dim, obs_encoding_size), nn.ReLU())
        self.goal_mobilenet = mobilenet_v2_features(3 * (context_size + 2), width, feature_dim)
        self.compress_goal = nn.Sequential(
            nn.Linear(feature_dim, goal_hidden),
            nn.ReLU(),
            nn.Linear(goal_hidden, goal_encoding_size),
            nn.ReLU(),
        )
        self.linear_layers = nn.Sequential(
            nn.Linear(obs_encoding_size + goal_encoding_size, 256), nn.ReLU(), nn.Linear(256, 32), nn.ReLU()
        )
        self.dist_predictor = nn.Sequential(nn.Linear(32, 1))
        self.action_predictor = nn.Sequential(nn.Linear(32, len_traj_pred * self.n_action_params))

    def forward(self, obs: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring."""
        obs_enc = self.compress_observation(self.obs_mobilenet(obs).mean((2, 3)))
        goal_enc = self.compress_goal(self.goal_mobilenet(torch.cat([obs, goal], dim=1)).mean((2, 3)))
        z = self.linear_layers(torch.cat([obs_enc, goal_enc], dim=1))
        actions = self.action_predictor(z).reshape(-1, self.len_traj_pred, self.n_action_params)
        return self.dist_predictor(z), finish_actions(actions, self.learn_angle)


def finish_actions(actions: Tensor, learn_angle: bool) -> Tensor:
    """Cumulate predicted position deltas into waypoints and normalise (cos, sin), as GNM and ViNT do."""
    positions = actions[..., :2].cumsum(dim=1)
    if not learn_angle:
        return positions
    return torch.cat([positions, F.normalize(actions[..., 2:], dim=-1)], dim=-1)
