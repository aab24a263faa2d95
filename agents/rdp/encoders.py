"""RDP's observation and instruction encoders: five vision tokens per frame, a depth vector, text tokens.

Vision (InternNav's ``multi_patches_avg_pooling``): token 0 summarises the whole image (the ViT's CLS, or the
mean of the conv map), tokens 1-4 average-pool its four quadrants; they are projected to D with LayerNorm
and learned token positions. Depth (InternNav's ``ImageEncoder``): the DD-PPO ResNet's spatial map
(+ learned per-cell embeddings), flattened → Linear → ReLU → Linear to D, added to token 0. Text: a
summary token first (a learned one before the words, or CLIP's pooled EOT embedding), then one token per word
piece, all projected to D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.encoders.common import FrozenAware
from agents.encoders.depth import DepthEncoder, ResNetEncoder
from agents.rdp.clip import CLIP_MEAN, CLIP_STD
from agents.rdp.config import RDPConfig

#: Vision tokens per frame: the summary and four quadrants.
N_VISION_TOKENS = 5


def summary_and_quadrants(feature_map: Tensor) -> Tensor:
    """(N, C, h, w) → (N, 5, C): the mean over the map, then the average of each 2×2 quadrant (row-major)."""
    quadrants = F.adaptive_avg_pool2d(feature_map, 2).flatten(2).transpose(1, 2)  # (N, 4, C)
    return torch.cat([feature_map.mean(dim=(2, 3)).unsqueeze(1), quadrants], dim=1)


class _TokenProjection(nn.Module):
    """(N, 5, C) raw features → env-dropout → Linear → LayerNorm → + learned token positions (N, 5, D)."""

    def __init__(self, channels: int, width: int, env_dropout: float) -> None:
        super().__init__()
        self.env_drop = nn.Dropout(env_dropout)
        self.linear = nn.Linear(channels, width)
        self.norm = nn.LayerNorm(width)
        self.positions = nn.Parameter(torch.randn(N_VISION_TOKENS, width) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.linear(self.env_drop(x))) + self.positions


class ConvRGBTokens(nn.Module):
    """A trainable GroupNorm ResNet (DD-PPO layout) on RGB in [0, 1] → (N, 5, D) tokens (the default)."""

    def __init__(self, config: RDPConfig) -> None:
        super().__init__()
        c = config
        self.cnn = ResNetEncoder(3, c.rgb_size, c.rgb_backbone, c.rgb_baseplanes, None, c.rgb_flat_size, 1)
        self.project = _TokenProjection(self.cnn.output_shape[0], c.token_size, c.env_dropout)

    def forward(self, rgb: Tensor) -> Tensor:
        """(N, 3, S, S) float in [0, 1] → (N, 5, D)."""
        return self.project(summary_and_quadrants(self.cnn(rgb)))


class CLIPRGBTokens(FrozenAware):
    """The CLIP vision tower: CLS + 4 average-pooled patch quadrants of its last hidden state → (N, 5, D).

    Args:
        vision_model: a ``CLIPVisionModel`` (``CLIPModel.vision_model``).
        config: the agent's config (``rgb_size``, ``token_size``, ``clip_trainable``, ``env_dropout``).
    """

    def __init__(self, vision_model: nn.Module, config: RDPConfig) -> None:
        super().__init__()
        self.vision = vision_model
        self._freeze(config.clip_trainable)
        vc = vision_model.config
        self.grid = vc.image_size // vc.patch_size
        self.interpolate = config.rgb_size != vc.image_size
        self.project = _TokenProjection(vc.hidden_size, config.token_size, config.env_dropout)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def _frozen_part(self) -> nn.Module:
        return self.vision

    def _backbone_forward(self, x: Tensor) -> Tensor:
        hidden = self.vision(pixel_values=x, interpolate_pos_encoding=self.interpolate).last_hidden_state
        n, length, width = hidden.shape
        grid = round((length - 1) ** 0.5)
        # (N, 1 + g², W) -> (N, W, g, g) for the quadrant pooling
        patches = hidden[:, 1:].transpose(1, 2).reshape(n, width, grid, grid)
        quadrants = F.adaptive_avg_pool2d(patches, 2).flatten(2).transpose(1, 2)
        return torch.cat([hidden[:, :1], quadrants], dim=1)

    def forward(self, rgb: Tensor) -> Tensor:
        """(N, 3, S, S) float in [0, 1] → CLIP-normalised → (N, 5, D)."""
        return self.project(self._run_backbone((rgb - self.mean) / self.std))


class DepthVector(nn.Module):
    """DD-PPO depth ResNet (spatial map + per-cell embeddings) → flatten → Linear → ReLU → Linear → LN:
    (N, D)."""

    def __init__(self, config: RDPConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        c = config
        self.resnet = DepthEncoder(
            input_size=c.depth_size, backbone=c.depth_backbone, baseplanes=c.depth_baseplanes,
            flat_size=c.depth_flat_size, input_pool=c.depth_input_pool, spatial_output=True,
            spatial_embedding_size=c.depth_spatial_embedding_size, trainable=c.depth_trainable,
            weights_path=c.depth_weights if load_pretrained else None,
        )  # fmt: skip
        flat = int(torch.tensor(self.resnet.output_shape).prod())
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, c.depth_feature_size), nn.ReLU(), nn.Dropout(c.dropout),
            nn.Linear(c.depth_feature_size, c.token_size), nn.LayerNorm(c.token_size),
        )  # fmt: skip

    def forward(self, depth: Tensor) -> Tensor:
        """(N, 1, S, S) in [0, 1] → (N, D)."""
        return self.fc(self.resnet(depth))


class TransformerTextEncoder(nn.Module):
    """Trainable word embeddings (PAD 0) → Linear to D + learned positions → transformer encoder, with a
    learned summary token before the words.

    Args:
        vocab_size: the agent's vocabulary size.
        config: ``embedding_size``, ``token_size``, ``text_layers``, ``text_heads``,
            ``max_instruction_length``,
            ``dropout``.
    """

    def __init__(self, vocab_size: int, config: RDPConfig) -> None:
        super().__init__()
        c, width = config, config.token_size
        self.embedding = nn.Embedding(vocab_size, c.embedding_size, padding_idx=0)
        self.input = nn.Linear(c.embedding_size, width)
        self.summary = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, c.max_instruction_length + 1, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, c.text_heads, 4 * width, c.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, c.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) ids and (B, L) mask (1 = word) → tokens (B, 1 + L, D) and their validity (B, 1 + L) bool."""
        x = self.input(self.embedding(tokens))
        x = torch.cat([self.summary.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.positions[:, : x.shape[1]]
        valid = torch.cat([torch.ones_like(attention_mask[:, :1]), attention_mask], dim=1).bool()
        return self.norm(self.encoder(x, src_key_padding_mask=~valid)), valid


class CLIPTextEncoder(FrozenAware):
    """The CLIP text tower: [projected pooled EOT embedding, last hidden states] → Linear to D each → LN.

    Args:
        text_model: ``CLIPModel.text_model``; text_projection: ``CLIPModel.text_projection``.
        config: ``token_size``, ``clip_trainable``.
    """

    def __init__(self, text_model: nn.Module, text_projection: nn.Module, config: RDPConfig) -> None:
        super().__init__()
        self.text = nn.ModuleDict({"model": text_model, "projection": text_projection})
        self._freeze(config.clip_trainable)
        tc = text_model.config
        self.summary = nn.Linear(text_projection.out_features, config.token_size)
        self.words = nn.Linear(tc.hidden_size, config.token_size)
        self.norm = nn.LayerNorm(config.token_size)

    def _frozen_part(self) -> nn.Module:
        return self.text

    def _backbone_forward(self, inputs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        out = self.text["model"](input_ids=inputs[0], attention_mask=inputs[1])
        return self.text["projection"](out.pooler_output), out.last_hidden_state

    def forward(self, tokens: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) CLIP token ids and mask → tokens (B, 1 + L, D) and their validity (B, 1 + L) bool."""
        pooled, hidden = self._run_backbone((tokens, attention_mask))
        x = torch.cat([self.summary(pooled).unsqueeze(1), self.words(hidden)], dim=1)
        valid = torch.cat([torch.ones_like(attention_mask[:, :1]), attention_mask], dim=1).bool()
        return self.norm(x), valid
