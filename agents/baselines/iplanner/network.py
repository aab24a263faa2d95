"""iPlanner's planner network (Yang et al. 2023) at its published size, with its parameter names.

``PlannerNet`` = ``PerceptNet`` (a ResNet-18 layout without normalisation in the blocks: a 7×7 stem, four
stages of two BasicBlocks, BatchNorm only in the strided shortcuts) over a 3-channel depth image of 360×640,
and a ``PlannerDecoder`` that tiles an embedded goal over the 12×20 feature map, convolves it down to 256×8×16
and regresses ``n_keypoints`` (x, y, z) keypoints plus a collision probability ("fear") through fully
connected layers. Parameter names are the released model's (``encoder.layer2.0.downsample.1.running_mean``,
``decoder.fc1.weight``, ...), so a converted checkpoint (``python -m agents.baselines.convert iplanner``)
loads with ``strict=True``. Published size: 53,326,864 parameters (anchors Part B §3; ``checkpoints.md``).

ViPlanner (:mod:`agents.baselines.viplanner.network`) reuses both parts with two encoders and 16 goal
channels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: The input size the fully connected decoder is built for (H, W).
IMAGE_SIZE = (360, 640)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions (no bias, no normalisation) with ReLU and a residual connection."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, planes, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.conv1(x))
        return self.relu(self.conv2(out) + identity)


class PerceptNet(nn.Module):
    """ResNet-18 layout encoder: (B, 3, 360, 640) -> (B, 512, 12, 20).

    Args:
        in_channels: image channels (3: depth replicated, or a colour image).
        shortcut_norm: BatchNorm after the 1×1 shortcut convolutions (iPlanner: yes; ViPlanner: no).
    """

    def __init__(self, in_channels: int = 3, shortcut_norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes, self.shortcut_norm = 64, shortcut_norm
        self.layer1 = self._stage(64, 1)
        self.layer2 = self._stage(128, 2)
        self.layer3 = self._stage(256, 2)
        self.layer4 = self._stage(512, 2)

    def _stage(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            conv = nn.Conv2d(self.inplanes, planes, 1, stride, bias=False)
            downsample = (
                nn.Sequential(conv, nn.BatchNorm2d(planes)) if self.shortcut_norm else nn.Sequential(conv)
            )
        blocks = [BasicBlock(self.inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 512, H / 32, W / 32) (rounded up)."""
        x = self.maxpool(self.relu(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class PlannerDecoder(nn.Module):
    """Goal-conditioned keypoint and fear regression from a (B, in_channels, 12, 20) feature map.

    Args:
        in_channels: feature channels (512 iPlanner, 1024 ViPlanner).
        goal_channels: channels of the tiled goal embedding (iPlanner ``encoder_channel=16``).
        n_keypoints: keypoints predicted (5).
    """

    def __init__(self, in_channels: int = 512, goal_channels: int = 16, n_keypoints: int = 5) -> None:
        super().__init__()
        self.n_keypoints = n_keypoints
        self.fg = nn.Linear(3, goal_channels)
        self.conv1 = nn.Conv2d(in_channels + goal_channels, 512, 5, 1, 1)
        self.conv2 = nn.Conv2d(512, 256, 3, 1, 0)
        self.fc1 = nn.Linear(256 * 8 * 16, 1024)
        self.fc2 = nn.Linear(1024, 512)
        self.fc3 = nn.Linear(512, n_keypoints * 3)
        self.frc1 = nn.Linear(1024, 128)
        self.frc2 = nn.Linear(128, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """features (B, C, 12, 20), goal (B, 3) metres in the robot frame -> keypoints (B, K, 3), fear
        (B, 1)."""
        g = self.fg(goal)[:, :, None, None].expand(-1, -1, *features.shape[-2:])  # (B, G) -> (B, G, h, w)
        x = self.relu(self.conv1(torch.cat([features, g], dim=1)))
        x = self.relu(self.conv2(x)).flatten(1)  # (B, 256, 8, 16) -> (B, 32768)
        f = self.relu(self.fc1(x))
        keypoints = self.fc3(self.relu(self.fc2(f))).reshape(-1, self.n_keypoints, 3)
        fear = torch.sigmoid(self.frc2(self.relu(self.frc1(f))))
        return keypoints, fear


class PlannerNet(nn.Module):
    """iPlanner: depth (B, 3, 360, 640) metres + goal (B, 3) -> keypoints (B, 5, 3), fear (B, 1)."""

    def __init__(self, encoder_channel: int = 16, n_keypoints: int = 5) -> None:
        super().__init__()
        self.encoder = PerceptNet(3, shortcut_norm=True)
        self.decoder = PlannerDecoder(512, encoder_channel, n_keypoints)

    def forward(self, depth: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring; ``depth`` must be 360×640 (the decoder's fully connected size)."""
        if tuple(depth.shape[-2:]) != IMAGE_SIZE:
            raise ValueError(f"iPlanner needs depth images of {IMAGE_SIZE}, got {tuple(depth.shape[-2:])}")
        return self.decoder(self.encoder(depth), goal)
