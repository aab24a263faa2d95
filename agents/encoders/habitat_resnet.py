"""GroupNorm ResNets with the module layout of habitat-baselines' DD-PPO backbones (``resnet.py``).

Parameter names match habitat's (``conv1.0``, ``layer1.0.convs.0``, ``layer1.0.downsample.0`` ...) so released
DD-PPO weights load unchanged. Differences from torchvision's ResNet: GroupNorm instead of BatchNorm, a
configurable base width (``base_planes``, 32 in DD-PPO instead of 64), the convolutions of a block in one
``convs`` Sequential, and the stride of a Bottleneck on its 3×3 convolution.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with GroupNorm and a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, ngroups: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv3x3(inplanes, planes, stride),
            nn.GroupNorm(ngroups, planes),
            nn.ReLU(True),
            conv3x3(planes, planes),
            nn.GroupNorm(ngroups, planes),
        )
        self.downsample = downsample
        self.relu = nn.ReLU(True)

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.convs(x) + residual)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided) → 1×1 convolutions with GroupNorm and a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, ngroups: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv1x1(inplanes, planes),
            nn.GroupNorm(ngroups, planes),
            nn.ReLU(True),
            conv3x3(planes, planes, stride),
            nn.GroupNorm(ngroups, planes),
            nn.ReLU(True),
            conv1x1(planes, planes * self.expansion),
            nn.GroupNorm(ngroups, planes * self.expansion),
        )
        self.downsample = downsample
        self.relu = nn.ReLU(True)

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.convs(x) + residual)


class GroupNormResNet(nn.Module):
    """habitat's ``ResNet``: 7×7/2 conv + GroupNorm + ReLU, 3×3/2 max-pool, four stages (strides 1, 2, 2, 2).

    Input (N, in_channels, H, W); output (N, ``final_channels``, H/32, W/32) for H, W divisible by 32.

    Args:
        in_channels: input channels (1 for depth, 3 for RGB).
        base_planes: width of the first stage (32 in DD-PPO).
        ngroups: GroupNorm groups (``base_planes // 2`` in DD-PPO).
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage.
    """

    #: Spatial down-sampling factor of the backbone.
    final_spatial_compress = 1.0 / 32

    def __init__(
        self, in_channels: int, base_planes: int, ngroups: int, block: type, layers: list[int]
    ) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, base_planes, kernel_size=7, stride=2, padding=3, bias=False),
            nn.GroupNorm(ngroups, base_planes),
            nn.ReLU(True),
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = base_planes
        self.layer1 = self._make_layer(block, ngroups, base_planes, layers[0])
        self.layer2 = self._make_layer(block, ngroups, base_planes * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, ngroups, base_planes * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, ngroups, base_planes * 8, layers[3], stride=2)
        self.final_channels = self.inplanes

    def _make_layer(
        self, block: type, ngroups: int, planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.GroupNorm(ngroups, planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, ngroups, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, ngroups) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


#: Backbone name → (block, blocks per stage), as habitat's ``resnet18`` / ``resnet50`` builders.
BACKBONES: dict[str, tuple[type, list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


def make_groupnorm_resnet(name: str, in_channels: int, base_planes: int, ngroups: int) -> GroupNormResNet:
    """Build habitat's ``resnet18`` (BasicBlock) or ``resnet50`` (Bottleneck) GroupNorm backbone."""
    if name not in BACKBONES:
        raise ValueError(f"unknown GroupNorm ResNet backbone {name!r}; expected one of {sorted(BACKBONES)}")
    block, layers = BACKBONES[name]
    return GroupNormResNet(in_channels, base_planes, ngroups, block, layers)
