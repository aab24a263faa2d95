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

from agents.baselines.iplanner.network import (
    DECODER_DIMS,
    IMAGE_SIZE,
    PerceptNet,
    PlannerDecoder,
    check_size,
)


class ViPlannerNet(nn.Module):
    """depth (B, 3, 360, 640) metres, semantics (B, 3, 360, 640) in [0, 1], goal (B, 3) -> keypoints, fear.

    Args:
        goal_channels: goal channels (16).
        n_keypoints: keypoints (5).
        image_size, width, decoder_dims: as :class:`agents.baselines.iplanner.network.PlannerNet`.
    """

    def __init__(
        self,
        goal_channels: int = 16,
        n_keypoints: int = 5,
        image_size: tuple[int, int] = IMAGE_SIZE,
        width: int = 64,
        decoder_dims: tuple[int, ...] = DECODER_DIMS,
    ) -> None:
        super().__init__()
        self.image_size = tuple(image_size)
        self.encoder_depth = PerceptNet(3, shortcut_norm=False, width=width)
        self.encoder_sem = PerceptNet(3, shortcut_norm=False, width=width)
        channels = 2 * self.encoder_depth.out_channels
        self.decoder = PlannerDecoder(channels, goal_channels, n_keypoints, self.image_size, decoder_dims)

    def forward(self, depth: Tensor, semantics: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring."""
        for name, image in (("depth", depth), ("semantics", semantics)):
            check_size(name, image, self.image_size, "ViPlanner")
        features = torch.cat([self.encoder_depth(depth), self.encoder_sem(semantics)], dim=1)
        return self.decoder(features, goal)
