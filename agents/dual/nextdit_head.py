"""``nextdit_async``: the System-1 head of "DualVLN" (RGB only; anchors Part A §2.6).

RGB of [pixel-goal frame, current frame] → a ViT (:class:`agents.navdp.vit.ViT`, trainable) → 2·P tokens → a
memory encoder (transformer encoder) whose output is joined to the raw tokens → a Q-Former (learned queries
cross-attending them) → ``qformer_queries`` (32) memory tokens; the latents (B, Q, h) → ``cond_projector``
MLP → Q condition tokens. The trajectory model is diffusers' **``LuminaNextDiT2DModel``** (the NextDiT of
Lumina-Next, the model InternVLA-N1's ``nextdit_crossattn_traj`` builds on) run on the 32 steps as a 1×32
"image" of 3 channels with patch 1: its patch embedder is then exactly a Linear(3 → d), its output layer a
Linear(d → 3), its 2-D rotary embedding a 1-D one along the steps, and its blocks cross-attend the
conditions [32 memory tokens, Q latents]. Trained by rectified flow with diffusers'
``FlowMatchEulerDiscreteScheduler`` (x_σ = σ·noise + (1 − σ)·x0, target noise − x0), sampled with 10 Euler
steps (σ from 1 to 0.1, then 0), optionally with classifier-free guidance against zero conditioning.

Shapes: ``B`` batch, ``K`` samples, ``T = N_STEPS`` steps, ``C`` ``cond_dim``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.dual.config import N_STEPS, DualConfig
from agents.dual.navdp_head import N_FRAMES, frames_input, mlp, navdp_config
from agents.navdp.network import STEP_DIM
from agents.navdp.vit import ViT, load_dav2_encoder


def _layer(width: int, heads: int, decoder: bool) -> nn.Module:
    cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    return cls(width, heads, 4 * width, 0.0, activation="gelu", batch_first=True, norm_first=True)


class NextDiTHead(nn.Module):
    """See the module docstring.

    Args:
        config: a :class:`DualConfig`.
        hidden: System 2's hidden size (the latents' width).
        load_pretrained: read ``rgb_weights`` (False when the weights come from a checkpoint).
    """

    def __init__(self, config: DualConfig, hidden: int, load_pretrained: bool = True) -> None:
        super().__init__()
        from diffusers import FlowMatchEulerDiscreteScheduler, LuminaNextDiT2DModel
        from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

        c = config
        self.config, self.nav = c, navdp_config(c)
        self.rgb_model = ViT(
            3, c.vit_dim, c.vit_layers, c.vit_heads, c.patch_size, c.vit_pos_grid or self.nav.grid
        )
        if load_pretrained and c.rgb_weights:
            load_dav2_encoder(self.rgb_model, c.rgb_weights)
        self.rgb_model.requires_grad_(c.rgb_trainable)
        self.memory_encoder = nn.TransformerEncoder(
            _layer(c.vit_dim, c.memory_heads, False), c.memory_layers, enable_nested_tensor=False
        )
        self.qformer_in = nn.Linear(2 * c.vit_dim, c.cond_dim)
        self.qformer_query = nn.Parameter(torch.randn(1, c.qformer_queries, c.cond_dim) * 0.02)
        self.qformer = nn.TransformerDecoder(_layer(c.cond_dim, c.qformer_heads, True), c.qformer_layers)
        self.cond_projector = mlp([hidden, c.cond_dim, c.cond_dim])
        self.model = LuminaNextDiT2DModel(
            sample_size=N_STEPS, patch_size=1, in_channels=STEP_DIM, hidden_size=c.dit_dim,
            num_layers=c.dit_layers, num_attention_heads=c.dit_heads, num_kv_heads=c.dit_heads,
            learn_sigma=False, qk_norm=True, cross_attention_dim=c.cond_dim,
        )  # fmt: skip
        nn.init.zeros_(self.model.pad_token)  # created uninitialised; unused by forward
        rope = get_2d_rotary_pos_embed_lumina(c.dit_dim // c.dit_heads, 1, N_STEPS)  # (1, T, d_head / 2)
        self.register_buffer("rotary", rope, persistent=False)
        self.train_scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=c.flow_train_steps)

    def encode(self, latents: Tensor, rgb: Any, depth: Any = None) -> dict[str, Tensor]:
        """Latents (B, Q, h) and RGB (B, 2, H, W, 3) uint8 of [pixel-goal frame, current frame] (depth is
        not used) -> ``cond`` (B, qformer_queries + Q, C)."""
        device = self.qformer_query.device
        x, _ = frames_input(torch.as_tensor(rgb), None, self.nav.image_size, self.nav)
        b = x.shape[0]
        tokens = self.rgb_model(x.to(device).flatten(0, 1))  # (B*2, 3, S, S) -> (B*2, P, Dv)
        tokens = tokens.reshape(b, N_FRAMES * tokens.shape[1], -1)  # -> (B, 2P, Dv)
        joined = self.qformer_in(torch.cat([tokens, self.memory_encoder(tokens)], dim=-1))  # (B, 2P, C)
        memory = self.qformer(self.qformer_query.expand(b, -1, -1), joined)  # (B, 32, C)
        return {"cond": torch.cat([memory, self.cond_projector(latents.to(device))], dim=1)}

    def velocity(self, x: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        """Predicted velocity (N, T, 3) of noisy steps ``x`` (N, T, 3) at ``timestep`` (N,) (σ · 1000)."""
        image = x.transpose(1, 2)[:, :, None]  # (N, T, 3) -> (N, 3, 1, T)
        mask = torch.ones(cond.shape[:2], dtype=torch.long, device=cond.device)
        out = self.model(image, timestep, cond, mask, self.rotary, cross_attention_kwargs={}).sample
        return out[:, :, 0].transpose(1, 2)  # (N, 3, 1, T) -> (N, T, 3)

    def loss(self, cond: dict[str, Tensor], targets: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Rectified-flow MSE on (B, T, 3) scaled target steps: velocity vs noise − x0 at uniform σ; each
        sample's conditioning is zeroed with probability ``cond_drop`` (for guidance)."""
        c = cond["cond"]
        x0 = targets.to(c.device)
        if self.training and self.config.cond_drop > 0:
            keep = torch.rand(c.shape[0], device=c.device) >= self.config.cond_drop
            c = c * keep[:, None, None]
        sched = self.train_scheduler
        index = torch.randint(0, len(sched.timesteps), (x0.shape[0],))
        timestep = sched.timesteps[index].to(c.device)
        noise = torch.randn_like(x0)
        noisy = sched.scale_noise(x0, timestep, noise)
        loss = F.mse_loss(self.velocity(noisy, timestep, c), noise - x0)
        return loss, {"loss/action": float(loss.detach())}

    @torch.no_grad()
    def sample(self, cond: dict[str, Tensor], k: int, generator: torch.Generator | None) -> Tensor:
        """(B, K, T, 3) scaled steps by ``flow_steps`` Euler steps (a fresh scheduler: thread-safe)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        c, scale = cond["cond"].repeat_interleave(k, 0), self.config.guidance_scale
        b = cond["cond"].shape[0]
        x = torch.randn((b * k, N_STEPS, STEP_DIM), generator=generator).to(c.device)
        sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=self.config.flow_train_steps)
        sched.set_timesteps(sigmas=np.linspace(1.0, 0.1, self.config.flow_steps).tolist(), device=c.device)
        for t in sched.timesteps:
            timestep = t.expand(x.shape[0]).to(c.device)
            v = self.velocity(x, timestep, c)
            if scale != 1.0:
                v_zero = self.velocity(x, timestep, torch.zeros_like(c))
                v = v_zero + scale * (v - v_zero)
            x = sched.step(v, t, x).prev_sample
        return x.view(b, k, N_STEPS, STEP_DIM)
