"""The latent goal: ``n_query`` learned query tokens appended after System 2's conversation; their last-layer
hidden states are what System 1 is conditioned on (InternVLA-N1's ``latent_queries``, anchors Part A §2.6).

Shapes: ``B`` conversations, ``L`` tokens, ``Q = n_query``, ``h`` System 2's hidden size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence


class LatentQueries(nn.Module):
    """Learned query embeddings and their read-out through a (frozen or trainable) Qwen2.5-VL.

    The queries stand where InternVLA-N1's collator appends its ``<traj>`` tokens: right after each
    conversation (before the right padding). Their input ids are the pad token's (only the M-RoPE positions
    read them); their embeddings are replaced by the learned ones before the language model runs.

    Args:
        hidden: System 2's hidden size ``h``.
        n_query: ``Q``.
    """

    def __init__(self, hidden: int, n_query: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_query, hidden) * 0.02)

    def forward(
        self,
        model: nn.Module,
        input_ids: Sequence[Tensor],
        pixel_values: Tensor,
        image_grid_thw: Tensor,
        pad_id: int,
    ) -> Tensor:
        """(B, Q, h) last-layer hidden states of the queries.

        Args:
            model: a ``Qwen2_5_VLForConditionalGeneration``.
            input_ids: B conversations, (L_i,) int64 each (no padding).
            pixel_values: (N, D) patches of every image of every conversation, in order.
            image_grid_thw: (n_images, 3).
            pad_id: the tokenizer's pad id.
        """
        device, n = self.queries.device, self.queries.shape[0]
        rows = [torch.cat([ids.to(device), ids.new_full((n,), pad_id).to(device)]) for ids in input_ids]
        lengths = torch.tensor([len(ids) for ids in input_ids], device=device)
        ids = pad_sequence(rows, batch_first=True, padding_value=pad_id)  # (B, L + Q)
        positions = torch.arange(ids.shape[1], device=device)[None]
        mask = (positions < (lengths + n)[:, None]).long()
        query = (positions >= lengths[:, None]) & (positions < (lengths + n)[:, None])  # (B, L + Q)
        embeds = model.get_input_embeddings()(ids)
        slots = (positions - lengths[:, None]).clamp(0, n - 1)  # query index at each position
        embeds = torch.where(query[..., None], self.queries.to(embeds.dtype)[slots], embeds)
        dtype = next(model.parameters()).dtype
        out = model.model(
            input_ids=ids,
            inputs_embeds=embeds,
            attention_mask=mask,
            pixel_values=pixel_values.to(device, dtype),
            image_grid_thw=image_grid_thw.to(device),
            use_cache=False,
        )
        hidden = out.last_hidden_state  # (B, L + Q, h)
        index = lengths[:, None] + torch.arange(n, device=device)[None]  # (B, Q)
        return torch.gather(hidden, 1, index[..., None].expand(-1, -1, hidden.shape[-1])).float()
