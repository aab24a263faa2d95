"""NavDP's network: the RGB-D backbone, the goal encoders and the causal denoiser with its critic head.

Shapes: ``B`` batch, ``M = HISTORY + 1`` RGB frames (oldest first), ``S`` the input side, ``P = (S /
patch)²`` patches per image, ``Q = M · queries_per_frame`` memory tokens, ``D`` ``token_dim``, ``H`` the
24-step horizon. Module names follow InternNav's ``navdp_policy.py`` (``rgbd_encoder.{rgb_model,
depth_model, former_query, former_pe, former_net, project_layer}``, ``point_encoder``, ``input_embed``,
``cond_pos_embed``, ``out_pos_embed``, ``decoder``, ``layernorm``, ``action_head``, ``critic_head``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from agents.navdp.config import NavDPConfig
from agents.navdp.vit import ViT, load_dav2_encoder
from envs.datasets.critic import HISTORY, HORIZON

#: Goal slots of the denoiser's condition.
N_GOAL_SLOTS = 3
#: (dx, dy, dyaw) per step.
STEP_DIM = 3


def _vit(config: NavDPConfig, in_channels: int) -> ViT:
    c = config
    grid = c.vit_pos_grid or c.grid
    return ViT(in_channels, c.vit_dim, c.vit_layers, c.vit_heads, c.patch_size, grid)


def _decoder(width: int, heads: int, ffn: int, dropout: float, layers: int) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(
        width, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerDecoder(layer, layers)


def _check_groups(n: int, groups: int) -> None:
    if groups <= 0 or n % groups:
        raise ValueError(f"{n} targets cannot share {groups} memories (not a multiple)")


def group_timesteps(timestep: Tensor, groups: int) -> Tensor:
    """(N,) timesteps of N targets in ``groups`` consecutive equal groups -> (groups,) timesteps, one per
    group (see :func:`decode`)."""
    _check_groups(timestep.shape[0], groups)
    return timestep[:: timestep.shape[0] // groups]


def decode(
    decoder: nn.TransformerDecoder,
    tgt: Tensor,
    memory: Tensor,
    tgt_mask: Tensor,
    memory_key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Run a pre-norm causal ``decoder`` (of :func:`_decoder`) on ``tgt`` (N, H, D) over ``memory``.

    ``memory`` is (N, M, D), one per target, or (G, M, D) shared by consecutive groups of N / G targets (the
    K sampled trajectories of one scene). Shared memory is attended once per group: the group's K·H queries
    form one cross-attention sequence (cross-attention treats queries independently), so the memory's keys
    and values are projected G times instead of N; self-attention and the feed-forward block still run per
    target. Both paths give the same result; ``memory_key_padding_mask`` is (N or G, M).
    """
    n, g = tgt.shape[0], memory.shape[0]
    if g == n:
        padding = memory_key_padding_mask
        return decoder(tgt, memory, tgt_mask=tgt_mask, tgt_is_causal=True, memory_key_padding_mask=padding)
    _check_groups(n, g)
    h, d = tgt.shape[1:]
    x = tgt
    for layer in decoder.layers:
        x = x + layer._sa_block(layer.norm1(x), tgt_mask, None, True)
        grouped = layer.norm2(x).reshape(g, (n // g) * h, d)
        x = x + layer._mha_block(grouped, memory, None, memory_key_padding_mask).reshape(n, h, d)
        x = x + layer._ff_block(layer.norm3(x))
    return x if decoder.norm is None else decoder.norm(x)


class RGBDBackbone(nn.Module):
    """RGB history + current depth → Q memory tokens (NavDP's ``RGBDBackbone``).

    Each of the M RGB frames and the depth image (3 channels) goes through its ViT; the (M + 1)·P patch
    tokens plus a learned position table are the memory of a transformer decoder whose Q learned queries
    compress them; a linear layer maps the result to ``token_dim``.

    Args:
        config: a :class:`NavDPConfig`.
        load_pretrained: read ``rgb_weights``.
        frames: RGB frames per sample (M; NavDP: ``HISTORY + 1``; the dual systems: 2).
        depth_frames: depth images per sample (NavDP: 1, the current one; the dual systems: 2).
    """

    def __init__(
        self,
        config: NavDPConfig,
        load_pretrained: bool = True,
        frames: int = HISTORY + 1,
        depth_frames: int = 1,
    ) -> None:
        super().__init__()
        c = config
        self.rgb_model, self.depth_model = _vit(c, 3), _vit(c, 3)
        if load_pretrained and c.rgb_weights:
            load_dav2_encoder(self.rgb_model, c.rgb_weights)
        self.rgb_trainable = c.rgb_trainable
        self.rgb_model.requires_grad_(c.rgb_trainable)
        self.former_query = nn.Embedding(frames * c.queries_per_frame, c.vit_dim)
        self.former_pe = nn.Embedding((frames + depth_frames) * c.grid * c.grid, c.vit_dim)
        self.former_net = _decoder(c.vit_dim, c.compress_heads, c.compress_ffn, c.dropout, c.compress_layers)
        self.project_layer = nn.Linear(c.vit_dim, c.token_dim)

    def train(self, mode: bool = True) -> RGBDBackbone:
        """Train/eval mode; a frozen RGB encoder stays in eval mode."""
        super().train(mode)
        if not self.rgb_trainable:
            self.rgb_model.eval()
        return self

    def forward(self, rgb: Tensor, depth: Tensor) -> Tensor:
        """(B, M, 3, S, S) normalised RGB and (B, 3, S, S) or (B, Md, 3, S, S) depth in metres -> (B, Q, D)
        tokens."""
        b, m = rgb.shape[:2]
        with torch.set_grad_enabled(self.rgb_trainable and torch.is_grad_enabled()):
            rgb_tokens = self.rgb_model(rgb.flatten(0, 1))  # (B*M, 3, S, S) -> (B*M, P, Dv)
        rgb_tokens = rgb_tokens.reshape(b, m * rgb_tokens.shape[1], -1)  # -> (B, M*P, Dv)
        depth_tokens = self.depth_model(depth.flatten(0, 1) if depth.ndim == 5 else depth)
        depth_tokens = depth_tokens.reshape(b, -1, depth_tokens.shape[-1])  # (B*Md, P, Dv) -> (B, Md*P, Dv)
        tokens = torch.cat([rgb_tokens, depth_tokens], dim=1)  # (B, (M+Md)*P, Dv)
        memory = tokens + self.former_pe.weight[None]
        queries = self.former_query.weight[None].expand(b, -1, -1)
        return self.project_layer(self.former_net(queries, memory))


class GoalViT(nn.Module):
    """An image-like goal (6-channel image goal ⊕ current image, or 4-channel RGB ⊕ pixel mask) → (B, D):
    a ViT's patch tokens, mean-pooled and projected."""

    def __init__(self, config: NavDPConfig, in_channels: int) -> None:
        super().__init__()
        self.encoder = _vit(config, in_channels)
        self.project = nn.Linear(config.vit_dim, config.token_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, S, S) -> (B, D)."""
        return self.project(self.encoder(x).mean(dim=1))


def timestep_embedding(timesteps: Tensor, width: int) -> Tensor:
    """(N,) timesteps → (N, width) sinusoidal embedding (Vaswani et al. 2017; ``width`` even)."""
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=timesteps.device) / max(half - 1, 1))
    angles = timesteps.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class NavDPNet(nn.Module):
    """The whole NavDP network; see the module docstring.

    Args:
        config: a :class:`NavDPConfig`.
        load_pretrained: read ``rgb_weights`` (False when the weights come from a checkpoint).
    """

    def __init__(self, config: NavDPConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        c = config
        d, n_tokens = c.token_dim, (HISTORY + 1) * c.queries_per_frame
        self.token_dim = d
        self.rgbd_encoder = RGBDBackbone(c, load_pretrained)
        self.point_encoder = nn.Linear(3, d)
        self.image_encoder = GoalViT(c, 6)
        self.pixel_encoder = GoalViT(c, 4)
        self.image_aux_head = nn.Linear(d, 3)
        self.pixel_aux_head = nn.Linear(d, 3)
        self.input_embed = nn.Linear(STEP_DIM, d)
        self.cond_pos_embed = nn.Parameter(torch.randn(1, 1 + N_GOAL_SLOTS + n_tokens, d) * 0.02)
        self.out_pos_embed = nn.Parameter(torch.randn(1, HORIZON, d) * 0.02)
        self.drop = nn.Dropout(c.dropout)
        self.decoder = _decoder(d, c.decoder_heads, c.decoder_ffn, c.dropout, c.decoder_layers)
        self.layernorm = nn.LayerNorm(d)
        self.action_head = nn.Linear(d, STEP_DIM)
        self.critic_head = nn.Linear(d, 1)
        causal = torch.triu(torch.ones(HORIZON, HORIZON, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)
        critic_mask = torch.zeros(1 + N_GOAL_SLOTS + n_tokens, dtype=torch.bool)
        critic_mask[1 : 1 + N_GOAL_SLOTS] = True  # the critic never sees the goal (cond_critic_mask)
        self.register_buffer("critic_mask", critic_mask, persistent=False)

    def _decode(
        self, x: Tensor, timestep: Tensor, goals: Tensor, tokens: Tensor, mask: Tensor | None
    ) -> Tensor:
        """(N, H, 3) steps, (N,) timesteps, (G, 3, D) goal slots, (G, Q, D) tokens -> (N, H, D) features;
        G = N, or G scenes each shared by N / G consecutive steps at one timestep (see :func:`decode`)."""
        steps = group_timesteps(timestep.expand(x.shape[0]), tokens.shape[0])
        time = timestep_embedding(steps, self.token_dim)
        memory = self.drop(torch.cat([time[:, None], goals, tokens], dim=1) + self.cond_pos_embed)
        tgt = self.drop(self.input_embed(x) + self.out_pos_embed)
        padding = None if mask is None else mask[None].expand(tokens.shape[0], -1)
        return self.layernorm(decode(self.decoder, tgt, memory, self.causal_mask, padding))

    def noise(self, x: Tensor, timestep: Tensor, goals: Tensor, tokens: Tensor) -> Tensor:
        """Predicted noise (N, H, 3) of noisy scaled steps ``x`` (N, H, 3) at ``timestep`` (N,); goals and
        tokens per step (N, ...) or per scene (G, ...), as in :meth:`_decode`."""
        return self.action_head(self._decode(x, timestep, goals, tokens, None))

    def critic(self, x: Tensor, tokens: Tensor) -> Tensor:
        """(N,) values of clean scaled steps ``x`` (N, H, 3) given the memory tokens (N or G, Q, D); the goal
        slots are masked out and the timestep is 0."""
        goals = tokens.new_zeros(tokens.shape[0], N_GOAL_SLOTS, self.token_dim)
        timestep = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        features = self._decode(x, timestep, goals, tokens, self.critic_mask)
        return self.critic_head(features.mean(dim=1))[:, 0]
