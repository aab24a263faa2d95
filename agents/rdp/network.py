"""The RDP network (InternNav ``RDPNet``, anchors Part A §2.3 / Part B §4), written here.

Per step: five vision tokens (RGB tokens with depth fused into token 0) → a GRU over [the flattened vision
tokens, the previous action's embedding, the odometry's embedding]; image→text fusion of [vision tokens,
GRU state] over the instruction and text→image fusion of the instruction over them; the condition
tokens ``[6 fused image/state tokens, fused text summary, GRU state, odometry, n_prev_actions previous
actions]`` plus learned type embeddings condition a diffusion transformer over the next ``horizon``
steps. Progress and stop-progress heads (and the auxiliary next-action head of the small default) read [GRU
state, fused text summary].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from agents.base import NUM_ACTIONS
from agents.layers import RNNStateEncoder
from agents.rdp.config import RDPConfig
from agents.rdp.diffusion import DiffusionTransformer
from agents.rdp.encoders import (
    N_VISION_TOKENS,
    CLIPRGBTokens,
    CLIPTextEncoder,
    ConvRGBTokens,
    DepthVector,
    TransformerTextEncoder,
)
from agents.rdp.fusion import CrossModalEncoder

#: Size of one step (dx, dy, dyaw).
STEP_DIM = 3
#: Condition tokens that classifier-free guidance masks: the fused image tokens and the text summary.
N_GUIDED = N_VISION_TOKENS + 2


class RDPNet(nn.Module):
    """See the module docstring.

    Args:
        config: the agent's config.
        vocab_size: size of the agent's vocabulary (the ``transformer`` text encoder).
        clip: a ``CLIPModel`` whose towers the ``clip`` encoders use (None when neither does).
        load_pretrained: read ``depth_weights`` (False when the weights come from a checkpoint).
    """

    def __init__(
        self, config: RDPConfig, vocab_size: int, clip: Any = None, load_pretrained: bool = True
    ) -> None:
        super().__init__()
        c, d, h = config, config.token_size, config.hidden_size
        if c.rgb_encoder == "clip":
            self.rgb_encoder: nn.Module = CLIPRGBTokens(clip.vision_model, c)
        else:
            self.rgb_encoder = ConvRGBTokens(c)
        self.depth_encoder = DepthVector(c, load_pretrained)
        if c.text_encoder == "clip":
            self.instruction_encoder: nn.Module = CLIPTextEncoder(clip.text_model, clip.text_projection, c)
        else:
            self.instruction_encoder = TransformerTextEncoder(vocab_size, c)
        self.prev_action_embedding = nn.Linear(STEP_DIM, c.action_embedding_size)
        self.odometry_embedding = nn.Linear(STEP_DIM, c.odometry_embedding_size)
        scale = torch.tensor([c.odometry_xy_scale, c.odometry_xy_scale, 1.0])
        self.register_buffer("odometry_scale", scale, persistent=False)
        gru_in = N_VISION_TOKENS * d + c.action_embedding_size + c.odometry_embedding_size
        self.state_encoder = RNNStateEncoder(gru_in, h)
        self.state_dropout = nn.Dropout(c.dropout)
        self.state_token: nn.Module = nn.Identity() if h == d else nn.Linear(h, d)
        self.image_text = CrossModalEncoder(d, c.cross_modal_heads, c.cross_modal_layers, c.dropout)
        self.text_image = CrossModalEncoder(d, c.cross_modal_heads, c.text_cross_modal_layers, c.dropout)
        self.odometry_token = nn.Linear(STEP_DIM, d)
        self.prev_action_token = nn.Linear(STEP_DIM, d)
        types = [0] * (N_VISION_TOKENS + 1) + [1, 2, 3] + [4] * c.n_prev_actions
        self.register_buffer("token_types", torch.tensor(types), persistent=False)
        self.type_embedding = nn.Embedding(5, d)
        nn.init.normal_(self.type_embedding.weight, std=0.02)  # as the positions: the content must dominate
        self.mask_token = nn.Parameter(torch.randn(d) * 0.02)
        self.head = DiffusionTransformer(
            STEP_DIM, c.horizon, len(types), d, c.head_size, c.head_layers, c.head_cond_layers, c.head_heads,
            p_drop_emb=c.head_dropout, p_drop_attn=c.dropout,
        )  # fmt: skip
        self.progress_monitor = nn.Linear(h + d, 1)
        self.stop_progress = nn.Linear(h + d, 1)
        self.action_head = nn.Linear(h + d, NUM_ACTIONS) if c.action_loss_weight > 0 else None

    def encode_text(self, tokens: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) ids and mask → text tokens (B, 1 + L, D) (the summary first) and validity (B, 1 + L)."""
        return self.instruction_encoder(tokens, attention_mask)

    def encode_frames(self, rgb: Tensor, depth: Tensor) -> Tensor:
        """(N, 3, S, S) RGB in [0, 1] and (N, 1, S', S') depth in [0, 1] → (N, 5, D) vision tokens."""
        tokens = self.rgb_encoder(rgb)
        fused = tokens[:, :1] + self.depth_encoder(depth).unsqueeze(1)
        return torch.cat([fused, tokens[:, 1:]], dim=1)

    def recurrent(
        self, vision: Tensor, prev_steps: Tensor, odometry: Tensor, hidden: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Run the GRU over T steps.

        Args:
            vision: (B, T, 5, D) vision tokens.
            prev_steps: (B, T, 3) normalised step of the action executed at t−1 (zero at the start).
            odometry: (B, T, 3) ``(x m, y m, dyaw rad)`` in the start frame.
            hidden: (B, H) state before the first step.

        Returns:
            states (B, T, H) (after dropout in training) and the last state (B, H).
        """
        x = torch.cat(
            [
                vision.flatten(2),  # (B, T, 5, D) -> (B, T, 5*D)
                self.prev_action_embedding(prev_steps),
                self.odometry_embedding(odometry * self.odometry_scale),
            ],
            dim=-1,
        )
        states, last = self.state_encoder(x, hidden)
        return self.state_dropout(states), last

    def condition(
        self,
        vision: Tensor,
        state: Tensor,
        text: Tensor,
        text_valid: Tensor,
        odometry: Tensor,
        history: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Condition tokens of N steps, before guidance masking and type embeddings.

        Args:
            vision: (N, 5, D); state: (N, H) GRU states; text: (N, L, D) and text_valid (N, L) bool;
            odometry: (N, 3); history: (N, n_prev_actions, 3) normalised previous steps, most recent first.

        Returns:
            cond (N, 7 + 2 + n_prev_actions, D) and the fused text summary (N, D).
        """
        s = self.state_token(state).unsqueeze(1)
        image = torch.cat([vision, s], dim=1)  # (N, 6, D)
        fused_image = self.image_text(image, text, None, ~text_valid)
        summary = self.text_image(text, image, ~text_valid, None)[:, 0]
        odometry = self.odometry_token(odometry * self.odometry_scale).unsqueeze(1)
        cond = torch.cat(
            [fused_image, summary.unsqueeze(1), s, odometry, self.prev_action_token(history)], dim=1
        )
        return cond, summary

    def finish_condition(self, cond: Tensor, masked: Tensor | None) -> Tensor:
        """Replace the guided tokens (fused image tokens and text summary) of the ``masked`` (N,) bool rows by
        the learned mask token, then add the type embeddings; ``masked=None`` masks nothing."""
        if masked is not None:
            guided = torch.zeros(cond.shape[1], dtype=torch.bool, device=cond.device)
            guided[:N_GUIDED] = True
            where = masked[:, None, None] & guided[None, :, None]
            cond = torch.where(where, self.mask_token.to(cond.dtype), cond)
        return cond + self.type_embedding(self.token_types)

    def progress(self, state: Tensor, summary: Tensor) -> tuple[Tensor, Tensor]:
        """Progress (tanh, in [-1, 1]) and stop progress (sigmoid, in [0, 1]) from (N, H) states and (N, D)
        text summaries: two (N,) tensors."""
        x = torch.cat([state, summary], dim=-1)
        return torch.tanh(self.progress_monitor(x)).squeeze(-1), torch.sigmoid(self.stop_progress(x)).squeeze(
            -1
        )

    def action_logits(self, state: Tensor, summary: Tensor) -> Tensor:
        """(N, NUM_ACTIONS) logits of the auxiliary next-action head from (N, H) states and (N, D)
        summaries."""
        if self.action_head is None:
            raise RuntimeError("RDPNet has no action head (RDPConfig.action_loss_weight is 0)")
        return self.action_head(torch.cat([state, summary], dim=-1))
