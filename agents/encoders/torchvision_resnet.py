"""ResNet-18/50 with torchvision's exact module layout, so torchvision state dicts (``resnet50-*.pth``) load.

torchvision is not a dependency; this is the same architecture (ResNet v1.5: the stride of a Bottleneck sits
on its 3×3 convolution) with the same parameter and buffer names: ``conv1, bn1, layer1..layer4, fc``.
"""

from __future__ import annotations

from torch import Tensor, nn

from agents.encoders.habitat_resnet import conv1x1, conv3x3


class TorchvisionBasicBlock(nn.Module):
    """torchvision ``BasicBlock``: conv1/bn1, conv2/bn2, optional ``downsample``."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TorchvisionBottleneck(nn.Module):
    """torchvision ``Bottleneck``: conv1/bn1 (1×1), conv2/bn2 (3×3, strided), conv3/bn3 (1×1, ×4 channels)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class TorchvisionResNet(nn.Module):
    """torchvision's ``ResNet`` (BatchNorm, width 64).

    Args:
        block: ``TorchvisionBasicBlock`` or ``TorchvisionBottleneck``.
        layers: blocks per stage.
        num_classes: size of the ``fc`` classifier; None builds the network without ``fc`` (feature
            extractor).
    """

    def __init__(self, block: type, layers: list[int], num_classes: int | None = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        #: Channels of the ``layer4`` feature map (512 for ResNet-18, 2048 for ResNet-50).
        self.final_channels = 512 * block.expansion
        self.fc = nn.Linear(self.final_channels, num_classes) if num_classes else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) → ``layer4`` map (N, final_channels, ⌈H/32⌉, ⌈W/32⌉)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) → logits (N, num_classes), or pooled features (N, final_channels) without ``fc``."""
        x = self.avgpool(self.forward_features(x)).flatten(1)
        return x if self.fc is None else self.fc(x)


def torchvision_resnet(name: str, num_classes: int | None = 1000) -> TorchvisionResNet:
    """``resnet18`` or ``resnet50`` with torchvision's layout (random initialisation)."""
    specs = {
        "resnet18": (TorchvisionBasicBlock, [2, 2, 2, 2]),
        "resnet50": (TorchvisionBottleneck, [3, 4, 6, 3]),
    }
    if name not in specs:
        raise ValueError(f"unknown torchvision ResNet {name!r}; expected one of {sorted(specs)}")
    block, layers = specs[name]
    return TorchvisionResNet(block, layers, num_classes)
