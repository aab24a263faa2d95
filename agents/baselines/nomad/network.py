"""NoMaD (Sridhar et al. 2023) at its released size (19,049,675 parameters), with its parameter names.

``vision_encoder``: ViNT's encoders with every BatchNorm replaced by GroupNorm, 256-d tokens for ``context +
1`` frames and one for (current frame ⊕ goal), sinusoidal positions, a 4-layer, 4-head pre-norm transformer
whose output tokens are averaged into one 256-d context vector; **goal masking**: with the goal masked the
goal token is excluded from attention and from the average (the average is rescaled), so one model navigates
to a goal image or explores without one. ``noise_pred_net``: a 1-D conditional U-Net denoising 8 (Δx, Δy)
waypoints (DDPM, 10 steps, ``squaredcos_cap_v2``, ε-prediction). ``dist_pred_net``: 256 → 64 → 16 → 1 temporal
distance.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from agents.baselines.backbones import EfficientNetB0, batchnorm_to_groupnorm
from agents.baselines.nomad.unet import ConditionalUnet1D
from agents.baselines.vint.network import PositionalEncoding, encode_frames, pre_norm_encoder


class NoMaDEncoder(nn.Module):
    """obs (B, 3 (context + 1), H, W), goal (B, 3, H, W), goal_mask (B,) (1 = no goal) -> (B, d) context."""

    def __init__(
        self,
        context_size: int = 3,
        encoding_size: int = 256,
        n_heads: int = 4,
        n_layers: int = 4,
        width: float = 1.0,
        feature_dim: int = 1280,
        classifier: bool = True,
    ):
        super().__init__()
        self.context_size = context_size
        self.obs_encoder = batchnorm_to_groupnorm(EfficientNetB0(3, width, feature_dim, classifier))
        self.goal_encoder = batchnorm_to_groupnorm(EfficientNetB0(6, width, feature_dim, classifier))
        self.compress_obs_enc = nn.Linear(feature_dim, encoding_size)
        self.compress_goal_enc = nn.Linear(feature_dim, encoding_size)
        self.positional_encoding = PositionalEncoding(encoding_size, context_size + 2)
        self.sa_layer, self.sa_encoder = pre_norm_encoder(encoding_size, n_heads, n_layers, 4)

    def forward(self, obs: Tensor, goal: Tensor, goal_mask: Tensor) -> Tensor:
        """See the class docstring."""
        current_and_goal = torch.cat([obs[:, 3 * self.context_size :], goal], dim=1)
        goal_token = self.compress_goal_enc(self.goal_encoder.pooled(current_and_goal))[:, None]
        tokens = torch.cat([encode_frames(self.obs_encoder, self.compress_obs_enc, obs), goal_token], dim=1)
        n = tokens.shape[1]
        masked = goal_mask.bool()
        padding = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        padding[:, -1] = masked  # the goal token is ignored when there is no goal
        out = self.sa_encoder(self.positional_encoding(tokens), src_key_padding_mask=padding)
        keep = (~padding).float()[..., None] * torch.where(masked, n / (n - 1), 1.0)[:, None, None]
        return (out * keep).mean(dim=1)  # the mean over the n - 1 kept tokens when the goal is masked


class DistanceHead(nn.Module):
    """(B, d) -> (B, 1) temporal distance to the goal."""

    def __init__(self, d: int = 256) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(d, d // 4), nn.ReLU(), nn.Linear(d // 4, d // 16), nn.ReLU(), nn.Linear(d // 16, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """See the class docstring."""
        return self.network(x)


class NoMaDNet(nn.Module):
    """The three released parts; see the module docstring.

    Args:
        context_size: past frames (3). encoding_size: token and context width (256).
        down_dims: the U-Net's level channels ((64, 128, 256)).
        width, feature_dim, n_heads, n_layers, classifier: as :class:`NoMaDEncoder` (1.0, 1280, 4, 4, True).
        step_embed_dim: the U-Net's diffusion-step embedding (256).
    """

    def __init__(
        self,
        context_size: int = 3,
        encoding_size: int = 256,
        down_dims: tuple[int, ...] = (64, 128, 256),
        width: float = 1.0,
        feature_dim: int = 1280,
        n_heads: int = 4,
        n_layers: int = 4,
        classifier: bool = True,
        step_embed_dim: int = 256,
    ):
        super().__init__()
        self.vision_encoder = NoMaDEncoder(
            context_size, encoding_size, n_heads, n_layers, width, feature_dim, classifier
        )
        self.noise_pred_net = ConditionalUnet1D(2, encoding_size, tuple(down_dims), step_embed_dim)
        self.dist_pred_net = DistanceHead(encoding_size)
