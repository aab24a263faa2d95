"""ViNT (Shah et al. 2023) at its released size (29,662,397 parameters), with its parameter names.

Each context frame is encoded by an EfficientNet-B0 (``obs_encoder``), the current frame stacked with the goal
by a 6-channel one (``goal_encoder``); both are pooled and compressed to 512-d tokens, and a 4-layer, 4-head
pre-norm transformer (``decoder``: sinusoidal positions, GELU, feed-forward ×4) runs over the ``context + 2``
tokens; its flattened output goes through 3584 → 512 → 256 → 128 → 64 → 32 layers to a temporal-distance head
and ``len_traj_pred`` waypoints ``(x, y, cos, sin)`` (positions cumulated, angles normalised). The released
state dict keeps parts its forward never uses (both ``_fc`` classifier heads, the template
``decoder.sa_layer``); they are here too, so that it loads strictly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from agents.baselines.backbones import EfficientNetB0
from agents.baselines.gnm.network import finish_actions


class PositionalEncoding(nn.Module):
    """Adds fixed sinusoidal positions (buffer ``pos_enc`` (1, max_len, d)) to (B, L, d) tokens."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pos_enc", pe[None])

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, d) -> (B, L, d)."""
        return x + self.pos_enc[:, : x.shape[1]]


def pre_norm_encoder(
    d_model: int, n_heads: int, n_layers: int, ff_factor: int
) -> tuple[nn.Module, nn.Module]:
    """The template layer and its stacked copies, as ViNT and NoMaD keep both (``sa_layer``, the encoder)."""
    layer = nn.TransformerEncoderLayer(
        d_model, n_heads, ff_factor * d_model, activation="gelu", batch_first=True, norm_first=True
    )
    return layer, nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


class MultiLayerDecoder(nn.Module):
    """Transformer over the tokens, then an MLP over their concatenation: (B, L, d) -> (B, 32)."""

    def __init__(self, d_model: int = 512, seq_len: int = 7, n_heads: int = 4, n_layers: int = 4) -> None:
        super().__init__()
        self.positional_encoding = PositionalEncoding(d_model, seq_len)
        self.sa_layer, self.sa_decoder = pre_norm_encoder(d_model, n_heads, n_layers, 4)
        sizes = [seq_len * d_model, d_model, 256, 128, 64, 32]
        self.output_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def forward(self, tokens: Tensor) -> Tensor:
        """See the class docstring."""
        x = self.sa_decoder(self.positional_encoding(tokens)).flatten(1)  # (B, L, d) -> (B, L*d)
        for layer in self.output_layers:
            x = torch.relu(layer(x))
        return x


def encode_frames(encoder: EfficientNetB0, compress: nn.Linear, frames: Tensor) -> Tensor:
    """(B, 3 n, H, W) frames stacked on channels -> (B, n, d) tokens, one per frame, oldest first."""
    b, n = frames.shape[0], frames.shape[1] // 3
    per_frame = torch.cat(torch.split(frames, 3, dim=1), dim=0)  # (n*B, 3, H, W), frame-major
    tokens = compress(encoder.pooled(per_frame))  # (n*B, d)
    return tokens.reshape(n, b, -1).transpose(0, 1)


class ViNTNet(nn.Module):
    """ViNT: obs (B, 3 (context + 1), H, W), goal (B, 3, H, W), ImageNet-normalised -> distance (B, 1),
    actions (B, len_traj_pred, 4).

    Args:
        context_size, len_traj_pred: past frames (5) and predicted waypoints (5).
        encoding_size: token width (512).
        width, feature_dim: EfficientNet-B0 width multiplier (1.0) and head channels (1280).
        n_heads, n_layers: the transformer's heads and layers (4, 4).
        classifier: keep the unused EfficientNet classifiers (True, as released).
    """

    def __init__(
        self,
        context_size: int = 5,
        len_traj_pred: int = 5,
        encoding_size: int = 512,
        width: float = 1.0,
        feature_dim: int = 1280,
        n_heads: int = 4,
        n_layers: int = 4,
        classifier: bool = True,
    ) -> None:
        super().__init__()
        self.context_size, self.len_traj_pred = context_size, len_traj_pred
        self.obs_encoder = EfficientNetB0(3, width, feature_dim, classifier)
        self.goal_encoder = EfficientNetB0(6, width, feature_dim, classifier)
        self.compress_obs_enc = nn.Linear(feature_dim, encoding_size)
        self.compress_goal_enc = nn.Linear(feature_dim, encoding_size)
        self.decoder = MultiLayerDecoder(encoding_size, context_size + 2, n_heads, n_layers)
        self.dist_predictor = nn.Sequential(nn.Linear(32, 1))
        self.action_predictor = nn.Sequential(nn.Linear(32, len_traj_pred * 4))

    def forward(self, obs: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring."""
        current_and_goal = torch.cat([obs[:, 3 * self.context_size :], goal], dim=1)  # (B, 6, H, W)
        goal_token = self.compress_goal_enc(self.goal_encoder.pooled(current_and_goal))[:, None]
        tokens = torch.cat([encode_frames(self.obs_encoder, self.compress_obs_enc, obs), goal_token], dim=1)
        z = self.decoder(tokens)
        actions = self.action_predictor(z).reshape(-1, self.len_traj_pred, 4)
        return self.dist_predictor(z), finish_actions(actions, True)
