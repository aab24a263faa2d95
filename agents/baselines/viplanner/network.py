"""ViPlanner's planner network (Roth et al. 2024) at its published size, with its parameter names.

Two iPlanner encoders (:class:`agents.baselines.iplanner.network.PerceptNet`, here with plain 1×1 shortcuts),
one for the 3-channel depth image and one for the semantic colour image, both 360×640; their 512-channel maps
are concatenated (1024 channels) and decoded with 16 goal channels into 5 keypoints and a fear value. Names
``encoder_depth.*``, ``encoder_sem.*``, ``decoder.*`` as in the released ``model.pt``; published size
71,045,584 parameters (``checkpoints.md``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from agents.baselines.iplanner.network import IMAGE_SIZE, PerceptNet, PlannerDecoder


class ViPlannerNet(nn.Module):
    """depth (B, 3, 360, 640) metres, semantics (B, 3, 360, 640) in [0, 1], goal (B, 3) -> keypoints, fear."""

    def __init__(self, goal_channels: int = 16, n_keypoints: int = 5) -> None:
        super().__init__()
        self.encoder_depth = PerceptNet(3, shortcut_norm=False)
        self.encoder_sem = PerceptNet(3, shortcut_norm=False)
        self.decoder = PlannerDecoder(1024, goal_channels, n_keypoints)

    def forward(self, depth: Tensor, semantics: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring."""
        for name, image in (("depth", depth), ("semantics", semantics)):
            if tuple(image.shape[-2:]) != IMAGE_SIZE:
                raise ValueError(
                    f"ViPlanner needs {name} images of {IMAGE_SIZE}, got {tuple(image.shape[-2:])}"
                )
        features = torch.cat([self.encoder_depth(depth), self.encoder_sem(semantics)], dim=1)
        return self.decoder(features, goal)
