"""A ViT in DINOv2's state-dict layout (the encoder of DepthAnythingV2) and the DepthAnythingV2 loader.

Module names follow DINOv2 (Oquab et al. 2023) as DepthAnythingV2 stores them under ``pretrained.``:
``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``mask_token``, ``blocks.N.{norm1, attn.qkv, attn.proj,
ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}``, ``norm``. The position table is stored for a
``pos_grid``×``pos_grid`` patch grid (37 for DINOv2's 518 px) and interpolated bicubically to the input's
grid, as DINOv2 does. ``mask_token`` is kept (as a buffer, it is unused here) so the layout loads exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.encoders.common import load_state_dict_checked, read_torch_checkpoint

#: Key prefixes of a DepthAnythingV2 checkpoint: the DINOv2 encoder and the DPT depth head (not used here).
DAV2_ENCODER_PREFIX, DAV2_HEAD_PREFIX = "pretrained.", "depth_head."


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection (DINOv2's ``MemEffAttention`` layout)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(N, L, D) -> (N, L, D)."""
        n, length, dim = x.shape
        # (N, L, 3D) -> (3, N, heads, L, D / heads)
        qkv = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` (CaiT / DINOv2)."""

    def __init__(self, dim: int, init: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """``fc1`` → GELU → ``fc2`` with a 4× hidden width."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale: ``x + ls1(attn(norm1 x))``, ``x + ls2(mlp(norm2 x))``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim, eps=1e-6), Mlp(dim), LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch``×``patch`` convolution: (N, C, S, S) -> (N, (S / patch)², D)."""

    def __init__(self, in_channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """DINOv2-layout vision transformer returning normalised patch tokens.

    Args:
        in_channels: image channels (3; NavDP's goal encoders use 6 and 4).
        dim, depth, heads: width, blocks, heads (ViT-S/14: 384, 12, 6).
        patch: patch side in pixels.
        pos_grid: side of the stored position table (its patch grid).
    """

    def __init__(self, in_channels: int, dim: int, depth: int, heads: int, patch: int, pos_grid: int) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + pos_grid * pos_grid, dim) * 0.02)
        self.register_buffer("mask_token", torch.zeros(1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.normal_(self.cls_token, std=1e-6)
        self.pos_grid = pos_grid

    def position_table(self, grid: int) -> Tensor:
        """(1, 1 + grid², D) position embeddings for a ``grid``×``grid`` patch grid (bicubic when resized)."""
        if grid == self.pos_grid:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        dim = patch_pos.shape[-1]
        # (1, G², D) -> (1, D, G, G) -> (1, D, grid, grid) -> (1, grid², D)
        table = patch_pos.reshape(1, self.pos_grid, self.pos_grid, dim).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(grid, grid), mode="bicubic", align_corners=False)
        return torch.cat([cls_pos, table.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, S, S) images -> (N, (S / patch)², D) patch tokens (the class token is dropped)."""
        tokens = self.patch_embed(x)
        grid = int(round(tokens.shape[1] ** 0.5))
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.position_table(grid)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 1:]


def load_dav2_encoder(vit: ViT, path: str | os.PathLike) -> None:
    """Load the ``pretrained.*`` (DINOv2) weights of a DepthAnythingV2 ``.pth`` into ``vit``, exactly.

    The file is a plain state dict read with ``torch.load(weights_only=True)``; ``depth_head.*`` keys are
    skipped.

    Raises:
        FileNotFoundError: no such file. ValueError: not a state dict, a key outside ``pretrained.`` /
            ``depth_head.``, or keys / shapes that do not fit ``vit``; the message names the file and keys.
    """
    path = Path(path)
    state = read_torch_checkpoint(path)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a plain state dict of tensors (DepthAnythingV2 layout)")
    foreign = sorted(k for k in state if not k.startswith((DAV2_ENCODER_PREFIX, DAV2_HEAD_PREFIX)))
    if foreign:
        raise ValueError(
            f"{path}: key {foreign[0]!r} is not DepthAnythingV2's (expected '{DAV2_ENCODER_PREFIX}*' encoder "
            f"and '{DAV2_HEAD_PREFIX}*' head keys; {len(foreign)} such key(s))"
        )
    weights = {
        k[len(DAV2_ENCODER_PREFIX) :]: v for k, v in state.items() if k.startswith(DAV2_ENCODER_PREFIX)
    }
    if not weights:
        raise ValueError(f"{path}: no '{DAV2_ENCODER_PREFIX}*' keys (the DINOv2 encoder of DepthAnythingV2)")
    load_state_dict_checked(vit, weights, f"{path} (keys under '{DAV2_ENCODER_PREFIX}')")
