"""The 1-D conditional U-Net that denoises NoMaD's waypoint sequences (Chi et al.'s diffusion-policy U-Net).

Parameter names follow the released NoMaD state dict (``noise_pred_net.{diffusion_step_encoder, down_modules,
mid_modules, up_modules, final_conv}``): residual blocks of two (Conv1d k3, GroupNorm 8, Mish) blocks with a
FiLM-style additive condition (the diffusion-step embedding concatenated with the observation encoding),
strided convolutions down, transposed convolutions up, and skip connections.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SinusoidalPosEmb(nn.Module):
    """(B,) timesteps -> (B, dim) sinusoidal embedding (half sines, half cosines)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        """See the class docstring."""
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000.0) / (half - 1)))
        args = t.float()[:, None] * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class Conv1dBlock(nn.Module):
    """Conv1d → GroupNorm → Mish, length preserved."""

    def __init__(self, cin: int, cout: int, kernel: int, n_groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(cin, cout, kernel, padding=kernel // 2), nn.GroupNorm(n_groups, cout), nn.Mish()
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, cin, T) -> (B, cout, T)."""
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with the condition added in between and a residual (1×1 conv when channels change)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, kernel: int = 3, n_groups: int = 8) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [Conv1dBlock(cin, cout, kernel, n_groups), Conv1dBlock(cout, cout, kernel, n_groups)]
        )
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cout), nn.Unflatten(-1, (-1, 1)))
        self.residual_conv = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x (B, cin, T), cond (B, cond_dim) -> (B, cout, T)."""
        out = self.blocks[0](x) + self.cond_encoder(cond)
        return self.blocks[1](out) + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """Noise prediction ε(x_t, t, cond): sample (B, T, input_dim), timesteps (B,), global_cond (B, G) -> (B,
    T, input_dim). ``T`` must be divisible by ``2 ** (len(down_dims) - 1)``.

    Args:
        input_dim: channels of the denoised sequence (2: x, y).
        global_cond_dim: observation encoding size (256).
        down_dims: channels of the U-Net levels ((64, 128, 256) in NoMaD).
        step_embed_dim: diffusion-step embedding size (256).
        kernel: convolution size (3).
        n_groups: GroupNorm groups (8).
    """

    def __init__(
        self,
        input_dim: int = 2,
        global_cond_dim: int = 256,
        down_dims: tuple[int, ...] = (64, 128, 256),
        step_embed_dim: int = 256,
        kernel: int = 3,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        dims = [input_dim, *down_dims]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))
        cond_dim = step_embed_dim + global_cond_dim
        self.diffusion_step_encoder = nn.Sequential(
            SinusoidalPosEmb(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        block = lambda a, b: ConditionalResidualBlock1D(a, b, cond_dim, kernel, n_groups)  # noqa: E731
        self.down_modules = nn.ModuleList(
            nn.ModuleList(
                [block(a, b), block(b, b), nn.Conv1d(b, b, 3, 2, 1) if i < len(in_out) - 1 else nn.Identity()]
            )
            for i, (a, b) in enumerate(in_out)
        )
        self.mid_modules = nn.ModuleList([block(dims[-1], dims[-1]), block(dims[-1], dims[-1])])
        self.up_modules = nn.ModuleList(
            nn.ModuleList(
                [
                    block(2 * b, a),
                    block(a, a),
                    nn.ConvTranspose1d(a, a, 4, 2, 1) if i < len(in_out) - 1 else nn.Identity(),
                ]
            )
            for i, (a, b) in enumerate(reversed(in_out[1:]))
        )
        self.final_conv = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel, n_groups), nn.Conv1d(down_dims[0], input_dim, 1)
        )

    def forward(self, sample: Tensor, timesteps: Tensor, global_cond: Tensor) -> Tensor:
        """See the class docstring."""
        x = sample.transpose(1, 2)  # (B, T, C) -> (B, C, T)
        t = timesteps.expand(x.shape[0]) if timesteps.dim() <= 1 else timesteps
        cond = torch.cat([self.diffusion_step_encoder(t.reshape(-1)), global_cond], dim=-1)
        skips = []
        for res1, res2, down in self.down_modules:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for mid in self.mid_modules:
            x = mid(x, cond)
        for res1, res2, up in self.up_modules:
            x = up(res2(res1(torch.cat([x, skips.pop()], dim=1), cond), cond))
        return self.final_conv(x).transpose(1, 2)
