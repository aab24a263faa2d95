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

Smaller variants run the same code: ``width`` scales the encoder's channels (64 published), ``image_size``
sets the input size and, through :func:`feature_size`, the decoder's first fully connected size (256·8·16 =
32768 at 360×640), and ``decoder_dims`` scales the decoder (conv 512, 256; fc 1024, 512; fear 128).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: The input size the fully connected decoder is built for (H, W).
IMAGE_SIZE = (360, 640)
#: The decoder's (conv1, conv2, fc1, fc2, fear) widths.
DECODER_DIMS = (512, 256, 1024, 512, 128)


def feature_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the encoder's output for an (H, W) input: five halvings rounded up (12×20 for 360×640)."""
    h, w = image_size
    for _ in range(5):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def decoder_grid(image_size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) after the decoder's two convolutions (k5 p1, k3 p0): 4 less each way (8×16 for 360×640).

    Raises:
        ValueError: the input is too small for them (the encoder's output must be at least 5×5).
    """
    h, w = feature_size(image_size)
    if min(h, w) < 5:
        raise ValueError(
            f"planner image_size {tuple(image_size)} gives a {h}×{w} feature map; the decoder needs at least "
            "5×5 (an input of at least 129×129 pixels)"
        )
    return h - 4, w - 4


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
        width: channels of the stem and first stage (64); the stages have 1, 2, 4, 8 times as many.
    """

    def __init__(self, in_channels: int = 3, shortcut_norm: bool = True, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes, self.shortcut_norm = width, shortcut_norm
        self.out_channels = 8 * width
        self.layer1 = self._stage(width, 1)
        self.layer2 = self._stage(2 * width, 2)
        self.layer3 = self._stage(4 * width, 2)
        self.layer4 = self._stage(8 * width, 2)

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
        """(B, C, H, W) -> (B, 8 · width, H / 32, W / 32) (rounded up)."""
        x = self.maxpool(self.relu(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class PlannerDecoder(nn.Module):
    """Goal-conditioned keypoint and fear regression from a (B, in_channels, 12, 20) feature map.

    Args:
        in_channels: feature channels (512 iPlanner, 1024 ViPlanner).
        goal_channels: channels of the tiled goal embedding (iPlanner ``encoder_channel=16``).
        n_keypoints: keypoints predicted (5).
        image_size: the network's input (H, W); sets ``fc1``'s input (:func:`decoder_grid`).
        dims: (conv1, conv2, fc1, fc2, fear) widths (:data:`DECODER_DIMS`).
    """

    def __init__(
        self,
        in_channels: int = 512,
        goal_channels: int = 16,
        n_keypoints: int = 5,
        image_size: tuple[int, int] = IMAGE_SIZE,
        dims: tuple[int, ...] = DECODER_DIMS,
    ) -> None:
        super().__init__()
        c1, c2, f1, f2, fear = dims
        gh, gw = decoder_grid(image_size)
        self.n_keypoints = n_keypoints
        self.fg = nn.Linear(3, goal_channels)
        self.conv1 = nn.Conv2d(in_channels + goal_channels, c1, 5, 1, 1)
        self.conv2 = nn.Conv2d(c1, c2, 3, 1, 0)
        self.fc1 = nn.Linear(c2 * gh * gw, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, n_keypoints * 3)
        self.frc1 = nn.Linear(f1, fear)
        self.frc2 = nn.Linear(fear, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, features: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """features (B, C, 12, 20), goal (B, 3) metres in the robot frame -> keypoints (B, K, 3), fear
        (B, 1)."""
        g = self.fg(goal)[:, :, None, None].expand(-1, -1, *features.shape[-2:])  # (B, G) -> (B, G, h, w)
        x = self.relu(self.conv1(torch.cat([features, g], dim=1)))
        x = self.relu(self.conv2(x)).flatten(1)  # (B, 256, 8, 16) -> (B, 32768) at the published size
        f = self.relu(self.fc1(x))
        keypoints = self.fc3(self.relu(self.fc2(f))).reshape(-1, self.n_keypoints, 3)
        fear = torch.sigmoid(self.frc2(self.relu(self.frc1(f))))
        return keypoints, fear


def check_size(name: str, image: Tensor, image_size: tuple[int, int], method: str) -> None:
    """Raise ``ValueError`` unless ``image``'s last two dimensions are ``image_size``."""
    if tuple(image.shape[-2:]) != tuple(image_size):
        raise ValueError(
            f"{method} needs {name} images of {tuple(image_size)}, got {tuple(image.shape[-2:])}"
        )


class PlannerNet(nn.Module):
    """iPlanner: depth (B, 3, 360, 640) metres + goal (B, 3) -> keypoints (B, 5, 3), fear (B, 1).

    Args:
        encoder_channel: goal channels (16).
        n_keypoints: keypoints (5).
        image_size, width, decoder_dims: see the module docstring (published: 360×640, 64,
            :data:`DECODER_DIMS`).
    """

    def __init__(
        self,
        encoder_channel: int = 16,
        n_keypoints: int = 5,
        image_size: tuple[int, int] = IMAGE_SIZE,
        width: int = 64,
        decoder_dims: tuple[int, ...] = DECODER_DIMS,
    ) -> None:
        super().__init__()
        self.image_size = tuple(image_size)
        self.encoder = PerceptNet(3, shortcut_norm=True, width=width)
        self.decoder = PlannerDecoder(
            self.encoder.out_channels, encoder_channel, n_keypoints, self.image_size, decoder_dims
        )

    def forward(self, depth: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring; ``depth`` must be ``image_size`` (the decoder's fully connected size)."""
        check_size("depth", depth, self.image_size, "iPlanner")
        return self.decoder(self.encoder(depth), goal)
