"""The image backbones of GNM, ViNT and NoMaD, with the parameter names of the libraries they were built with.

- :func:`mobilenet_v2_features`: MobileNetV2 (width 1.0) feature layers as torchvision names them
  (``features.0.0`` stem convolution, ``features.N.conv.M`` inverted residuals, ``features.18`` the
  1280-channel head), for any number of stacked input channels; GNM stacks its context frames (and the goal)
  on channels.
- :class:`EfficientNetB0`: EfficientNet-B0 as the ``efficientnet_pytorch`` package names it (``_conv_stem``,
  ``_bn0``, ``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_se_reduce`` / ``_se_expand`` /
  ``_project_conv``, ``_conv_head``, ``_bn1``, ``_fc``), "same" padding, BatchNorm momentum 0.01 and eps 1e-3,
  swish activations; ViNT and NoMaD encode frames with it (``extract_features`` + global average pooling).
  Its ``_fc`` classifier is part of the released state dicts although their forward never uses it.
- :func:`batchnorm_to_groupnorm`: NoMaD's replacement of every BatchNorm by a GroupNorm of 16 channels per
  group.

Both backbones take a ``width`` multiplier of their stage channels (rounded to multiples of 8, as MobileNet's
and EfficientNet's width scaling do) and the channels of their last layer (``out_channels``, 1280): the
published sizes are ``width=1.0, out_channels=1280``; the System-1 baselines' small CPU variants shrink both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: (expand 1×1) → depthwise 3×3 → linear 1×1 projection, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, cout, H / stride, W / stride)."""
        return x + self.conv(x) if self.use_residual else self.conv(x)


#: MobileNetV2's (expansion t, channels c, repeats n, stride s) stages.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8 (at least 8, never 10 % below the product)."""
    if width == 1.0:
        return channels
    target = channels * width
    out = max(8, int(target + 4) // 8 * 8)
    return out + 8 if out < 0.9 * target else out


def mobilenet_v2_features(
    in_channels: int = 3, width: float = 1.0, out_channels: int = 1280
) -> nn.Sequential:
    """MobileNetV2 feature layers: (B, in_channels, H, W) -> (B, out_channels, H / 32, W / 32)."""
    cin = scaled_channels(32, width)
    layers: list[nn.Module] = [_conv_bn_relu6(in_channels, cin, 3, 2)]
    for t, c, n, s in MOBILENET_V2_STAGES:
        for i in range(n):
            c_out = scaled_channels(c, width)
            layers.append(InvertedResidual(cin, c_out, s if i == 0 else 1, t))
            cin = c_out
    layers.append(_conv_bn_relu6(cin, out_channels, 1))
    return nn.Sequential(*layers)


class SameConv2d(nn.Conv2d):
    """TensorFlow "same" padding computed from the input size (``Conv2dDynamicSamePadding``)."""

    def forward(self, x: Tensor) -> Tensor:
        """Pad so that the output is ceil(input / stride), then convolve."""
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation, strict=True):
            out = math.ceil(size / s)
            pads.append(max((out - 1) * s + (k - 1) * d + 1 - size, 0))
        ph, pw = pads
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3)


class MBConvBlock(nn.Module):
    """EfficientNet block: expand 1×1 → depthwise k×k → squeeze-and-excitation → project 1×1 (+ identity)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, se_ratio: float = 0.25):
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        squeezed = max(1, int(cin * se_ratio))
        self._se_reduce = SameConv2d(hidden, squeezed, 1)
        self._se_expand = SameConv2d(squeezed, hidden, 1)
        self._project_conv = SameConv2d(hidden, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand, self.identity = expand, stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, H, W) -> (B, cout, H / stride, W / stride) (inference: no drop-connect)."""
        h = F.silu(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        h = F.silu(self._bn1(self._depthwise_conv(h)))
        h = h * torch.sigmoid(self._se_expand(F.silu(self._se_reduce(h.mean((2, 3), keepdim=True)))))
        h = self._bn2(self._project_conv(h))
        return h + x if self.identity else h


#: EfficientNet-B0's (repeats, kernel, stride, expansion, in, out) stages.
EFFICIENTNET_B0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class EfficientNetB0(nn.Module):
    """EfficientNet-B0 (``efficientnet_pytorch`` names), any number of input channels.

    Args:
        in_channels: 3 for a frame, 6 for a frame stacked with the goal image.
        width: multiplier of the stem's and stages' channels (1.0: B0).
        out_channels: channels of the head convolution, the pooled feature size (1280).
        classifier: keep the unused ``_fc`` classifier (True: the released state dicts hold it).
    """

    def __init__(
        self, in_channels: int = 3, width: float = 1.0, out_channels: int = 1280, classifier: bool = True
    ) -> None:
        super().__init__()
        stem = scaled_channels(32, width)
        self.out_channels = out_channels
        self._conv_stem = SameConv2d(in_channels, stem, 3, 2, bias=False)
        self._bn0 = _bn(stem)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in EFFICIENTNET_B0_STAGES:
            cin, cout = scaled_channels(cin, width), scaled_channels(cout, width)
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand)
                )
        self._blocks = nn.ModuleList(blocks)
        last = scaled_channels(320, width)
        self._conv_head = SameConv2d(last, out_channels, 1, bias=False)
        self._bn1 = _bn(out_channels)
        if classifier:
            self._fc = nn.Linear(out_channels, 1000)

    def extract_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1280, H / 32, W / 32) (rounded up)."""
        x = F.silu(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.silu(self._bn1(self._conv_head(x)))

    def pooled(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1280): features averaged over space (the encoders' use; ``_fc`` is unused)."""
        return self.extract_features(x).mean((2, 3))


def batchnorm_to_groupnorm(module: nn.Module, features_per_group: int = 16) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` (in place) by ``GroupNorm(max(1, C // 16), C)``; returns
    it."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            setattr(module, name, nn.GroupNorm(max(1, channels // features_per_group), channels))
        else:
            batchnorm_to_groupnorm(child, features_per_group)
    return module
