"""The ViPlanner agent: depth + semantics + point goal -> keypoints + fear -> waypoints (see
:mod:`agents.baselines.planner`; semantics from the rendered ``category`` image coloured by
:mod:`agents.baselines.viplanner.semantics`, not from Mask2Former)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.base import AGENTS, as_tensor
from agents.baselines.loading import load_into
from agents.baselines.planner import current, depth_image
from agents.baselines.planner_agent import KeypointPlannerAgent
from agents.baselines.viplanner.config import ViPlannerConfig
from agents.baselines.viplanner.network import ViPlannerNet
from agents.baselines.viplanner.semantics import (
    check_released_config,
    read_model_yaml,
    released_state,
    semantic_colors,
)
from agents.contract import SYSTEM1_CAMERA_HEIGHT, CameraRequest
from agents.encoders.common import load_state_dict_checked


@AGENTS.register("viplanner")
class ViPlannerAgent(KeypointPlannerAgent):
    """ViPlanner. Observations: ``depth`` (B, H, W, 1) metres, ``category`` (B, H, W) int32 category codes
    and ``pointgoal`` (B, 2); the main camera renders depth and categories."""

    name = "viplanner"
    config_class = ViPlannerConfig
    cameras = (CameraRequest(modalities=("depth", "category"), mount_height=SYSTEM1_CAMERA_HEIGHT),)

    def build_net(self, config: ViPlannerConfig) -> nn.Module:
        """:class:`ViPlannerNet` at the config's sizes."""
        return ViPlannerNet(
            config.goal_channels,
            config.n_keypoints,
            tuple(config.image_size),
            config.width,
            tuple(config.decoder_dims),
        )

    def load_weights(self, path: str) -> None:
        """ViPlanner's released folder (``model.pt`` + ``model.yaml``, checked against the config), or a
        converted folder / plain state dict (``encoder_depth.*``, ``encoder_sem.*``, ``decoder.*``)."""
        folder = Path(path)
        if (folder / "model.pt").is_file():
            c = self.config
            if (folder / "model.yaml").is_file():
                expected = {
                    "in_channel": c.goal_channels,
                    "knodes": c.n_keypoints,
                    "img_input_size": list(c.image_size),
                    "sem": True,
                    "rgb": False,
                    "decoder_small": False,
                }
                check_released_config(read_model_yaml(folder / "model.yaml"), expected, str(folder))
            state = released_state(folder / "model.pt")
            load_state_dict_checked(self.net, state, source=f"{folder / 'model.pt'} (viplanner checkpoint)")
            return
        load_into(self.net, path, "viplanner")

    def semantic_image(self, category: Any) -> Tensor:
        """(B, H, W) category codes -> (B, 3, *image_size) class colours in [0, 1], resized (nearest)."""
        codes = as_tensor(category, device=self.device)
        if codes.ndim != 3:
            raise ValueError(f"viplanner: category must have shape (B, H, W), got {tuple(codes.shape)}")
        rgb = semantic_colors(codes).permute(0, 3, 1, 2).float() / 255.0  # (B, H, W, 3) -> (B, 3, H, W)
        return F.interpolate(rgb, size=tuple(self.config.image_size), mode="nearest")

    def forward(self, data: Mapping[str, Any], window: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """See :meth:`KeypointPlannerAgent.forward`."""
        if "category" not in data:
            raise KeyError(
                f"viplanner: needs 'category' (the main camera's category image); got keys {sorted(data)}"
            )
        depth = current(data, "depth") if window else data["depth"]
        category = current(data, "category") if window else data["category"]
        goal = self.goal(data)
        sem = self.semantic_image(torch.as_tensor(category))
        keypoints, fear = self.net(depth_image(depth, self.config, self.device), sem, goal)
        return keypoints, fear, goal
