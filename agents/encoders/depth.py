"""The DD-PPO depth encoder (habitat ``ResNetEncoder``) of VLN-CE's ``VlnResnetDepthEncoder``, and its loader.

Layout (habitat-baselines ``ddppo/policy/resnet_policy.py``): 2×2 average pooling of the input, a GroupNorm
ResNet (base planes 32, ngroups = base planes // 2), then a 3×3 compression convolution to
``round(2048 / s²)`` channels (s = final spatial size) + GroupNorm(1) + ReLU. A 256×256 depth image gives
128×4×4 = 2048 features.
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
from agents.encoders.habitat_resnet import make_groupnorm_resnet

log = logging.getLogger(__name__)

#: Key prefix of the visual encoder inside a habitat DD-PPO checkpoint's ``state_dict``.
DDPPO_PREFIX = "actor_critic.net.visual_encoder."


class ResNetEncoder(nn.Module):
    """habitat's ``ResNetEncoder``: input pooling → GroupNorm ResNet → compression conv.

    Parameter names (``backbone.*``, ``compression.*``) match ``net.visual_encoder.*`` of a DD-PPO checkpoint.

    Args:
        in_channels: input channels (1 for depth).
        input_size: input height = width in pixels; ``input_size // input_pool`` must be a multiple of 32.
        backbone: ``resnet18`` or ``resnet50``.
        baseplanes: width of the first ResNet stage (32 in DD-PPO).
        ngroups: GroupNorm groups; ``baseplanes // 2`` when None (as in DD-PPO).
        flat_size: target size of the flattened output (2048 in DD-PPO).
        input_pool: side of the average pooling applied to the input (2 in DD-PPO; 1 = none).
    """

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        backbone: str = "resnet50",
        baseplanes: int = 32,
        ngroups: int | None = None,
        flat_size: int = 2048,
        input_pool: int = 2,
    ) -> None:
        super().__init__()
        spatial = input_size // input_pool
        if spatial < 32 or spatial % 32:
            raise ValueError(
                f"ResNetEncoder: input_size // input_pool = {input_size} // {input_pool} "
                "must be a multiple of 32"
            )
        self.input_pool = input_pool
        self.backbone = make_groupnorm_resnet(backbone, in_channels, baseplanes, ngroups or baseplanes // 2)
        final_spatial = spatial // 32
        channels = max(1, int(round(flat_size / final_spatial**2)))
        self.compression = nn.Sequential(
            nn.Conv2d(self.backbone.final_channels, channels, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(1, channels),
            nn.ReLU(True),
        )
        #: (C, s, s) of the output.
        self.output_shape = (channels, final_spatial, final_spatial)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nn.init.calculate_gain("relu"))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) float → (N, C, s, s)."""
        # Standard layout: GroupNorm backward on channels-last CPU tensors corrupts memory in torch 2.13.
        x = x.contiguous()
        if self.input_pool > 1:
            x = F.avg_pool2d(x, self.input_pool)
        return self.compression(self.backbone(x))


class DepthEncoder(FrozenAware):
    """VLN-CE's depth encoder: DD-PPO ``visual_encoder`` + a linear head or per-cell spatial embeddings.

    Input: depth (N, 1, H, W) normalised to [0, 1]. Output: (N, ``output_size``) after Flatten → Linear → ReLU
    (``visual_fc``), or with ``spatial_output`` (N, C + E, s, s) = features ⊕ learned ``spatial_embeddings``.

    Args:
        input_size: depth height = width fed to the encoder.
        output_size: size of the linear head (non-spatial mode).
        backbone, baseplanes, flat_size, input_pool: see :class:`ResNetEncoder`.
        spatial_output: keep the s×s map (CMA) instead of the linear head (Seq2Seq).
        spatial_embedding_size: E, size of the learned per-cell embeddings (64 in VLN-CE).
        trainable: train the ResNet (False: frozen and in eval mode).
        weights_path: a DD-PPO checkpoint to load into the ResNet (see :func:`load_ddppo_weights`).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 128,
        backbone: str = "resnet50",
        baseplanes: int = 32,
        flat_size: int = 2048,
        input_pool: int = 2,
        spatial_output: bool = False,
        spatial_embedding_size: int = 64,
        trainable: bool = False,
        weights_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.visual_encoder = ResNetEncoder(1, input_size, backbone, baseplanes, None, flat_size, input_pool)
        if weights_path is not None:
            load_ddppo_weights(self.visual_encoder, weights_path)
        self._freeze(trainable)
        self.spatial_output = spatial_output
        channels, h, w = self.visual_encoder.output_shape
        if spatial_output:
            self.spatial_embeddings = nn.Embedding(h * w, spatial_embedding_size)
            self.output_shape: tuple[int, ...] = (channels + spatial_embedding_size, h, w)
        else:
            self.visual_fc = nn.Sequential(
                nn.Flatten(), nn.Linear(channels * h * w, output_size), nn.ReLU(True)
            )
            self.output_shape = (output_size,)

    def _frozen_part(self) -> nn.Module:
        return self.visual_encoder

    def forward(self, depth: Tensor) -> Tensor:
        """(N, 1, H, W) in [0, 1] → (N, output_size) or (N, C + E, s, s)."""
        x = self._run_backbone(depth)
        if not self.spatial_output:
            return self.visual_fc(x)
        n, _, h, w = x.shape
        return torch.cat([x, spatial_embedding_map(self.spatial_embeddings, n, h, w)], dim=1)


def load_ddppo_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Load the visual encoder of a habitat DD-PPO checkpoint (e.g. ``gibson-2plus-resnet50.pth``).

    The file is a torch dict with a ``state_dict`` whose keys start with ``actor_critic.net.visual_encoder.``;
    it is read with ``weights_only=True`` (no arbitrary unpickling).

    Args:
        encoder: a :class:`ResNetEncoder`, or a module holding one as ``visual_encoder``.
        path: the checkpoint file.

    Raises:
        ValueError: the file has no ``state_dict``, no visual-encoder keys, or keys/shapes that differ from
            ``encoder`` (the message lists missing, unexpected and mismatched keys).
    """
    target = getattr(encoder, "visual_encoder", encoder)
    checkpoint = read_torch_checkpoint(path)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a DD-PPO checkpoint, a dict with a 'state_dict' entry")
    weights = {k[len(DDPPO_PREFIX) :]: v for k, v in state.items() if k.startswith(DDPPO_PREFIX)}
    if not weights:
        sample = sorted(state)[:5]
        raise ValueError(
            f"{path}: no key starts with {DDPPO_PREFIX!r} in 'state_dict' (first keys: {sample})"
        )
    load_state_dict_checked(target, weights, source=str(path))
    log.info("loaded DD-PPO visual encoder weights from %s (%d tensors)", path, len(weights))
