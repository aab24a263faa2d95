"""The iPlanner agent: depth + point goal -> keypoints + fear -> waypoints (see
:mod:`agents.baselines.planner` for inputs, acting and the loss trained here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from agents.base import AGENTS
from agents.baselines.iplanner.config import IPlannerConfig
from agents.baselines.iplanner.network import PlannerNet
from agents.baselines.loading import load_into
from agents.baselines.planner import current, depth_image
from agents.baselines.planner_agent import KeypointPlannerAgent
from agents.contract import SYSTEM1_CAMERA_HEIGHT, CameraRequest


@AGENTS.register("iplanner")
class IPlannerAgent(KeypointPlannerAgent):
    """iPlanner. Observations: ``depth`` (B, H, W, 1) metres and ``pointgoal`` (B, 2); the main camera
    renders depth only."""

    name = "iplanner"
    config_class = IPlannerConfig
    cameras = (CameraRequest(modalities=("depth",), mount_height=SYSTEM1_CAMERA_HEIGHT),)

    def build_net(self, config: IPlannerConfig) -> nn.Module:
        """:class:`PlannerNet` at the config's sizes."""
        return PlannerNet(
            config.goal_channels,
            config.n_keypoints,
            tuple(config.image_size),
            config.width,
            tuple(config.decoder_dims),
        )

    def load_weights(self, path: str) -> None:
        """A converted iPlanner folder or a plain state dict (``encoder.*``, ``decoder.*``)."""
        load_into(self.net, path, "iplanner")

    def forward(self, data: Mapping[str, Any], window: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """See :meth:`KeypointPlannerAgent.forward`."""
        depth = current(data, "depth") if window else data["depth"]
        goal = self.goal(data)
        keypoints, fear = self.net(depth_image(depth, self.config, self.device), goal)
        return keypoints, fear, goal
