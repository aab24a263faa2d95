"""RDP's diffusion head: a transformer denoiser over future steps, diffusers' DDPM schedule, guided
sampling.

:class:`DiffusionTransformer` follows the shape of diffusion_policy's ``TransformerForDiffusion`` (Chi et
al. 2023) with time as a condition token: the condition tokens (a sinusoidal timestep embedding, then the
agent's condition tokens, plus learned positions) pass through a pre-norm transformer encoder; the noisy
steps (plus learned positions) pass through a pre-norm transformer decoder with causal self-attention that
cross-attends to every encoded condition token; a LayerNorm and a linear layer give the prediction.

The noise schedule is diffusers' :class:`~diffusers.DDPMScheduler` (RDP: 20 steps, ``squaredcos_cap_v2``,
ε-prediction, ``clip_sample``; the head may instead predict the clean sample, ``prediction_type="sample"``).
Classifier-free guidance (Ho & Salimans 2022) combines the conditional and the unconditional
(masked-condition) predictions as ``p_u + s (p_c − p_u)`` (``p`` the noise or the sample); ``s = 1`` skips
the unconditional pass, so it is exactly the conditional prediction.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from agents.diffusion import cosine_ddpm_scheduler, draw


def make_scheduler(num_train_timesteps: int = 20, prediction_type: str = "epsilon") -> Any:
    """diffusers' ``DDPMScheduler`` of RDP: ``squaredcos_cap_v2`` betas, samples clipped to [-1, 1], the head
    predicting the noise (``epsilon``, RDP's) or the clean sample (``sample``)."""
    return cosine_ddpm_scheduler(num_train_timesteps, prediction_type)


def timestep_embedding(timesteps: Tensor, width: int) -> Tensor:
    """(N,) timesteps → (N, width) sinusoidal embedding (Vaswani et al. 2017; ``width`` even)."""
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=timesteps.device) / max(half - 1, 1))
    angles = timesteps.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class DiffusionTransformer(nn.Module):
    """Predicts the noise of (N, horizon, action_dim) noisy steps given (N, n_cond, cond_dim) condition
    tokens.

    Args:
        action_dim: size of one step (3: dx, dy, dyaw).
        horizon: steps per sample.
        n_cond: condition tokens (the timestep token comes on top).
        cond_dim: size of the condition tokens.
        width: model width (RDP: 512).
        n_layers: causal decoder layers (RDP: 3).
        n_cond_layers: condition-encoder layers (RDP: 1; 0 = a two-layer MLP).
        heads: attention heads (RDP: 8).
        p_drop_emb: dropout on the input embeddings (RDP: 0.2).
        p_drop_attn: dropout inside the transformer layers.
    """

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        n_cond: int,
        cond_dim: int,
        width: int,
        n_layers: int,
        n_cond_layers: int,
        heads: int,
        p_drop_emb: float = 0.1,
        p_drop_attn: float = 0.1,
    ) -> None:
        super().__init__()
        if width % 2:
            raise ValueError(f"DiffusionTransformer: width must be even, got {width}")
        self.width = width
        self.input_emb = nn.Linear(action_dim, width)
        self.pos_emb = nn.Parameter(torch.randn(1, horizon, width) * 0.02)
        self.cond_emb = nn.Linear(cond_dim, width)
        self.cond_pos_emb = nn.Parameter(torch.randn(1, 1 + n_cond, width) * 0.02)
        self.drop = nn.Dropout(p_drop_emb)

        def layer(kind: type) -> nn.Module:
            return kind(
                width, heads, 4 * width, p_drop_attn, activation="gelu", batch_first=True, norm_first=True
            )

        if n_cond_layers > 0:
            self.encoder: nn.Module = nn.TransformerEncoder(
                layer(nn.TransformerEncoderLayer), n_cond_layers, enable_nested_tensor=False
            )
        else:
            self.encoder = nn.Sequential(nn.Linear(width, 4 * width), nn.Mish(), nn.Linear(4 * width, width))
        self.decoder = nn.TransformerDecoder(layer(nn.TransformerDecoderLayer), n_layers)
        causal = torch.triu(torch.ones(horizon, horizon, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, action_dim)

    def forward(self, sample: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        """Predicted noise.

        Args:
            sample: (N, horizon, action_dim) noisy steps.
            timestep: (N,) int64 diffusion timesteps.
            cond: (N, n_cond, cond_dim) condition tokens.

        Returns:
            (N, horizon, action_dim).
        """
        time = timestep_embedding(timestep.expand(sample.shape[0]), self.width).unsqueeze(1)
        tokens = torch.cat([time, self.cond_emb(cond)], dim=1)
        memory = self.encoder(self.drop(tokens + self.cond_pos_emb))
        x = self.drop(self.input_emb(sample) + self.pos_emb)
        x = self.decoder(x, memory, tgt_mask=self.causal_mask, tgt_is_causal=True)
        return self.head(self.ln_f(x))


def guided_noise(
    model: nn.Module, sample: Tensor, timestep: Tensor, cond: Tensor, uncond: Tensor | None, scale: float
) -> Tensor:
    """Classifier-free guided prediction ``p_u + scale (p_c − p_u)`` (noise or clean sample, as the model
    predicts); with ``scale == 1`` or no ``uncond`` the conditional prediction alone (one forward pass).

    Args:
        model: the denoiser ``model(sample, timestep, cond)``.
        sample: (N, H, A) noisy steps; timestep: (N,) timesteps.
        cond: (N, S, D) condition tokens; uncond: the same with the guided tokens masked, or None.
        scale: guidance scale.
    """
    if uncond is None or scale == 1.0:
        return model(sample, timestep, cond)
    both = model(torch.cat([sample, sample]), torch.cat([timestep, timestep]), torch.cat([cond, uncond]))
    conditional, unconditional = both.chunk(2)
    return unconditional + scale * (conditional - unconditional)


def sample_steps(
    model: nn.Module,
    scheduler: Any,
    cond: Tensor,
    uncond: Tensor | None,
    shape: tuple[int, int],
    n_steps: int,
    scale: float,
    generators: list[torch.Generator] | None = None,
) -> Tensor:
    """DDPM ancestral sampling from Gaussian noise.

    Args:
        model: the denoiser; scheduler: a diffusers scheduler (its timesteps are set here).
        cond: (N, S, D) condition tokens; uncond: masked ones for guidance, or None.
        shape: (horizon, action_dim) of one sample.
        n_steps: denoising steps.
        scale: guidance scale (see :func:`guided_noise`).
        generators: one CPU generator per sample (N) for reproducible noise; None draws from torch's global
            generator.

    Returns:
        (N, horizon, action_dim) samples in [-1, 1].
    """
    n = cond.shape[0]
    x = draw(shape, generators, n).to(cond.device)
    scheduler.set_timesteps(n_steps, device=cond.device)
    for t in scheduler.timesteps:
        timestep = torch.full((n,), int(t), dtype=torch.long, device=cond.device)
        noise = guided_noise(model, x, timestep, cond, uncond, scale)
        x = scheduler.step(noise, t, x, generator=generators).prev_sample
    return x
