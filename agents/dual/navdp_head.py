"""``navdp_async``: the System-1 head of "InternVLA-N1 (Dual System) w/ NavDP*" (anchors Part A §2.6).

latents (B, Q, h) → MLP → a one-query token compressor (cross-attention) → goal token (B, 1, D); RGB-D of
[pixel-goal frame, current frame] → NavDP's :class:`agents.navdp.network.RGBDBackbone` (2 RGB + 2 depth
frames) → ``2 · queries_per_frame`` tokens; NavDP's causal transformer decoder over the 32 steps with the
memory [time, goal token, RGB-D tokens]; diffusers' ``DDPMScheduler`` (20 steps, ε-prediction).

Shapes: ``B`` batch, ``K`` samples per plan, ``T = N_STEPS`` (32) steps of ``(dx, dy, dyaw)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.dual.config import N_STEPS, DualConfig
from agents.navdp.agent import make_scheduler
from agents.navdp.config import NavDPConfig
from agents.navdp.inputs import depth_input, rgb_input
from agents.navdp.network import STEP_DIM, RGBDBackbone, _decoder, decode, group_timesteps, timestep_embedding

#: RGB and depth frames per sample: the pixel-goal frame and the current one.
N_FRAMES = 2


def navdp_config(config: DualConfig) -> NavDPConfig:
    """The :class:`NavDPConfig` of the backbone and scheduler from the dual config's sizes."""
    c = config
    return NavDPConfig(
        image_size=c.image_size, patch_size=c.patch_size, vit_dim=c.vit_dim, vit_layers=c.vit_layers,
        vit_heads=c.vit_heads, vit_pos_grid=c.vit_pos_grid, rgb_weights=c.rgb_weights,
        rgb_trainable=c.rgb_trainable, compress_layers=c.compress_layers, compress_heads=c.compress_heads,
        compress_ffn=c.compress_ffn, queries_per_frame=c.queries_per_frame, token_dim=c.token_dim,
        decoder_layers=c.decoder_layers, decoder_heads=c.decoder_heads, decoder_ffn=c.decoder_ffn,
        dropout=c.dropout, num_train_timesteps=c.ddpm_steps, num_inference_steps=c.ddpm_steps,
    )  # fmt: skip


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers between consecutive ``widths`` with GELU between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.GELU()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers)


def frames_input(rgb: Tensor, depth: Tensor | None, size: int, nav: NavDPConfig) -> tuple[Tensor, Tensor]:
    """(B, F, H, W, 3) uint8 RGB and (B, F, H, W, 1) depth -> (B, F, 3, S, S) normalised RGB and depth."""
    b, f = rgb.shape[:2]
    x = rgb_input(rgb, size, nav.normalize_rgb).view(b, f, 3, size, size)  # (B*F, ...) -> (B, F, ...)
    if depth is None:
        return x, x.new_zeros(0)
    d = depth_input(depth, size, nav.min_depth, nav.max_depth).reshape(b, f, 3, size, size)
    return x, d


class NavDPAsyncHead(nn.Module):
    """See the module docstring.

    Args:
        config: a :class:`DualConfig`.
        hidden: System 2's hidden size (the latents' width).
        load_pretrained: read ``rgb_weights`` (False when the weights come from a checkpoint).
    """

    def __init__(self, config: DualConfig, hidden: int, load_pretrained: bool = True) -> None:
        super().__init__()
        c, d = config, config.token_dim
        self.config, self.nav = config, navdp_config(config)
        self.goal_mlp = mlp([hidden, *c.goal_mlp, d])
        self.goal_query = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.compressor = nn.MultiheadAttention(d, c.compress_heads, batch_first=True)
        self.rgbd_encoder = RGBDBackbone(self.nav, load_pretrained, frames=N_FRAMES, depth_frames=N_FRAMES)
        n_memory = 2 + N_FRAMES * c.queries_per_frame
        self.input_embed = nn.Linear(STEP_DIM, d)
        self.cond_pos_embed = nn.Parameter(torch.randn(1, n_memory, d) * 0.02)
        self.out_pos_embed = nn.Parameter(torch.randn(1, N_STEPS, d) * 0.02)
        self.decoder = _decoder(d, c.decoder_heads, c.decoder_ffn, c.dropout, c.decoder_layers)
        self.layernorm = nn.LayerNorm(d)
        self.action_head = nn.Linear(d, STEP_DIM)
        causal = torch.triu(torch.ones(N_STEPS, N_STEPS, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)
        self.scheduler = make_scheduler(self.nav)

    def encode(self, latents: Tensor, rgb: Any, depth: Any) -> dict[str, Tensor]:
        """Latents (B, Q, h), RGB (B, 2, H, W, 3) uint8 and depth (B, 2, H, W, 1) metres of [pixel-goal
        frame, current frame] -> ``goal`` (B, 1, D) and ``tokens`` (B, 2·queries_per_frame, D)."""
        device = self.goal_query.device
        x, d = frames_input(torch.as_tensor(rgb), torch.as_tensor(depth), self.nav.image_size, self.nav)
        tokens = self.rgbd_encoder(x.to(device), d.to(device))
        keys = self.goal_mlp(latents.to(device))
        query = self.goal_query.expand(latents.shape[0], -1, -1)
        goal, _ = self.compressor(query, keys, keys, need_weights=False)
        return {"goal": goal, "tokens": tokens}

    def noise(self, x: Tensor, timestep: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """Predicted noise (N, T, 3) of noisy steps ``x`` (N, T, 3) at ``timestep`` (N,); ``cond`` per step
        (N, ...) or per scene (G, ...), shared by N / G consecutive steps at one timestep (see
        :func:`agents.navdp.network.decode`)."""
        steps = group_timesteps(timestep.expand(x.shape[0]), cond["goal"].shape[0])
        time = timestep_embedding(steps, self.config.token_dim)[:, None]
        memory = torch.cat([time, cond["goal"], cond["tokens"]], dim=1) + self.cond_pos_embed
        tgt = self.input_embed(x) + self.out_pos_embed
        return self.action_head(self.layernorm(decode(self.decoder, tgt, memory, self.causal_mask)))

    def loss(self, cond: dict[str, Tensor], targets: Tensor) -> tuple[Tensor, dict[str, float]]:
        """ε-MSE of the DDPM on (B, T, 3) scaled target steps (the clean steps' MSE when the NavDP config's
        ``prediction_type`` is ``sample``)."""
        x0 = targets.to(cond["goal"].device)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        wanted = x0 if self.nav.prediction_type == "sample" else noise
        loss = F.mse_loss(self.noise(self.scheduler.add_noise(x0, noise, t), t, cond), wanted)
        return loss, {"loss/action": float(loss.detach())}

    @torch.no_grad()
    def sample(self, cond: dict[str, Tensor], k: int, generator: torch.Generator | None) -> Tensor:
        """(B, K, T, 3) scaled steps by DDPM ancestral sampling (a fresh scheduler: thread-safe)."""
        b = cond["goal"].shape[0]  # the K samples of a scene share its condition
        x = torch.randn((b * k, N_STEPS, STEP_DIM), generator=generator).to(cond["goal"].device)
        scheduler = make_scheduler(self.nav)
        scheduler.set_timesteps(self.nav.num_inference_steps, device=x.device)
        for t in scheduler.timesteps:
            timestep = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
            x = scheduler.step(self.noise(x, timestep, cond), t, x, generator=generator).prev_sample
        return x.view(b, k, N_STEPS, STEP_DIM)
