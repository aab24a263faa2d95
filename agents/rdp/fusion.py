"""Cross-modal fusion layers of RDP (InternNav's RoBERTa-config ``VisionLanguageEncoder``, written here).

A layer updates query tokens by self-attention among themselves, cross-attention to a context sequence and a
feed-forward block, each followed by a residual connection and LayerNorm (post-norm, as BERT/RoBERTa and
LXMERT's cross-modality layers). RDP runs two stacks: image (+ GRU state) tokens attending to the instruction,
and instruction tokens attending to the image (+ state) tokens.
"""

from __future__ import annotations

from torch import Tensor, nn


class CrossModalLayer(nn.Module):
    """Self-attention → cross-attention → feed-forward, post-norm.

    Args:
        width: token size D.
        heads: attention heads (``width`` must be a multiple).
        dropout: dropout of attention weights and of each block's output.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, context: Tensor, x_pad: Tensor | None = None, context_pad: Tensor | None = None
    ) -> Tensor:
        """Update ``x``.

        Args:
            x: (N, Lq, D) query tokens.
            context: (N, Lk, D) context tokens.
            x_pad: (N, Lq) bool, True at padded query tokens (or None).
            context_pad: (N, Lk) bool, True at padded context tokens (or None); a row needs a valid token.

        Returns:
            (N, Lq, D).
        """
        h = self.self_attn(x, x, x, key_padding_mask=x_pad, need_weights=False)[0]
        x = self.norms[0](x + self.drop(h))
        h = self.cross_attn(x, context, context, key_padding_mask=context_pad, need_weights=False)[0]
        x = self.norms[1](x + self.drop(h))
        return self.norms[2](x + self.drop(self.ffn(x)))


class CrossModalEncoder(nn.Module):
    """``n_layers`` :class:`CrossModalLayer` s over the same context.

    Args:
        width, heads, dropout: see :class:`CrossModalLayer`.
        n_layers: number of layers (RDP: 2).
    """

    def __init__(self, width: int, heads: int, n_layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrossModalLayer(width, heads, dropout) for _ in range(n_layers))

    def forward(
        self, x: Tensor, context: Tensor, x_pad: Tensor | None = None, context_pad: Tensor | None = None
    ) -> Tensor:
        """(N, Lq, D) queries over (N, Lk, D) context → (N, Lq, D); masks as in :class:`CrossModalLayer`."""
        for layer in self.layers:
            x = layer(x, context, x_pad, context_pad)
        return x
