"""RGB encoders: VLN-CE's ImageNet ResNet (torchvision layout) or a small GroupNorm ResNet.

``torchvision`` kind (VLN-CE ``TorchVisionResNet50``): the ResNet ``layer4`` map, then either a global average
pool → Linear → ReLU (Seq2Seq), or an adaptive average pool to ``spatial_size``² cells + learned per-cell
embeddings (CMA: 2048 + 64 channels × 4×4). ``groupnorm`` kind: a
:class:`~agents.encoders.depth.ResNetEncoder` on 3 channels (the DD-PPO RGB layout), cheap enough to train
from scratch on a CPU.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.encoders.common import (
    FrozenAware,
    load_state_dict_checked,
    read_torch_checkpoint,
    spatial_embedding_map,
)
from agents.encoders.depth import ResNetEncoder, load_ddppo_weights
from agents.encoders.torchvision_resnet import TorchvisionResNet, torchvision_resnet

log = logging.getLogger(__name__)

RGB_ENCODER_KINDS = ("torchvision", "groupnorm")


class RGBEncoder(FrozenAware):
    """Encodes RGB frames (N, 3, H, W) float (already scaled, see the agent's preprocessing).

    Output: (N, ``output_size``) after Linear → ReLU (``fc``, ``activation``), or with ``spatial_output``
    (N, C + E, s, s) = features ⊕ learned ``spatial_embeddings``.

    Args:
        input_size: image height = width fed to the encoder.
        output_size: size of the linear head (non-spatial mode).
        kind: ``torchvision`` (ImageNet ResNet layout) or ``groupnorm`` (DD-PPO layout ResNet).
        backbone: ``resnet18`` or ``resnet50``.
        baseplanes, flat_size, input_pool: ``groupnorm`` kind only, see :class:`ResNetEncoder`.
        spatial_output: keep a spatial map (CMA) instead of the linear head (Seq2Seq).
        spatial_size: side of the pooled map of the ``torchvision`` kind (4 in VLN-CE).
        spatial_embedding_size: E, size of the learned per-cell embeddings (64 in VLN-CE).
        trainable: train the ResNet (False: frozen and in eval mode, BatchNorm uses running statistics).
        weights_path: torchvision state dict (``torchvision`` kind) or DD-PPO checkpoint (``groupnorm`` kind).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        kind: str = "torchvision",
        backbone: str = "resnet50",
        baseplanes: int = 32,
        flat_size: int = 2048,
        input_pool: int = 1,
        spatial_output: bool = False,
        spatial_size: int = 4,
        spatial_embedding_size: int = 64,
        trainable: bool = False,
        weights_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if kind not in RGB_ENCODER_KINDS:
            raise ValueError(f"RGBEncoder: kind must be one of {RGB_ENCODER_KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "torchvision":
            self.cnn: nn.Module = torchvision_resnet(backbone, num_classes=None)
            if weights_path is not None:
                load_torchvision_weights(self.cnn, weights_path)
            self.pool_size = spatial_size if spatial_output else 1
            channels, h, w = self.cnn.final_channels, self.pool_size, self.pool_size
        else:
            self.cnn = ResNetEncoder(3, input_size, backbone, baseplanes, None, flat_size, input_pool)
            if weights_path is not None:
                load_ddppo_weights(self.cnn, weights_path)
            channels, h, w = self.cnn.output_shape
        self._freeze(trainable)
        self.spatial_output = spatial_output
        if spatial_output:
            self.spatial_embeddings = nn.Embedding(h * w, spatial_embedding_size)
            self.output_shape: tuple[int, ...] = (channels + spatial_embedding_size, h, w)
        else:
            self.fc = nn.Linear(channels * h * w, output_size)
            self.activation = nn.ReLU()
            self.output_shape = (output_size,)

    def _frozen_part(self) -> nn.Module:
        return self.cnn

    def _backbone_forward(self, x: Tensor) -> Tensor:
        if self.kind == "groupnorm":
            return self.cnn(x)
        return F.adaptive_avg_pool2d(self.cnn.forward_features(x), self.pool_size)

    def forward(self, rgb: Tensor) -> Tensor:
        """(N, 3, H, W) → (N, output_size) or (N, C + E, s, s)."""
        x = self._run_backbone(rgb)
        if not self.spatial_output:
            return self.activation(self.fc(torch.flatten(x, 1)))
        n, _, h, w = x.shape
        return torch.cat([x, spatial_embedding_map(self.spatial_embeddings, n, h, w)], dim=1)


def load_torchvision_weights(resnet: TorchvisionResNet, path: str | os.PathLike) -> None:
    """Load a torchvision ResNet state dict (e.g. ``resnet50-0676ba61.pth``) with ``weights_only=True``.

    A file holding ``{"state_dict": ...}`` is accepted too. The ``fc.*`` entries are skipped when ``resnet``
    was built without a classifier; missing ``num_batches_tracked`` counters (older torchvision files, such as
    VLN-CE's ``resnet50-19c8e357.pth``) are set to 0.

    Raises:
        ValueError: not a state dict, or keys/shapes differ (the message lists them).
    """
    state = read_torch_checkpoint(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a torchvision ResNet state dict (parameter name -> tensor)")
    if resnet.fc is None:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    counters = [k for k in resnet.state_dict() if k.endswith("num_batches_tracked") and k not in state]
    state.update({k: torch.tensor(0, dtype=torch.long) for k in counters})
    load_state_dict_checked(resnet, state, source=str(path))
    log.info("loaded torchvision ResNet weights from %s (%d tensors)", path, len(state))
