"""Seq2Seq agent: the VLN-CE ``Seq2SeqNet`` network behind the shared recurrent-agent machinery."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from agents.base import AGENTS, NUM_ACTIONS
from agents.encoders.build import make_depth_encoder, make_instruction_encoder, make_rgb_encoder
from agents.layers import RNNStateEncoder, progress_head
from agents.recurrent import RecurrentVLNAgent
from agents.seq2seq.config import Seq2SeqConfig


class Seq2SeqNet(nn.Module):
    """[instruction final state, depth feature, RGB feature (, previous-action embedding)] → 1-layer GRU.

    Paper sizes: 128 + 128 + 256 = 512 inputs → GRU 512 (anchors Part B §1.5). Module names follow VLN-CE.

    Args:
        config: the agent's config.
        vocab_size: instruction vocabulary size.
        embeddings: initial word vectors (vocab_size, embedding_size), or None.
        load_pretrained: load the encoders' pretrained weights named in ``config``.
    """

    def __init__(
        self, config: Seq2SeqConfig, vocab_size: int, embeddings: Tensor | None, load_pretrained: bool = True
    ) -> None:
        super().__init__()
        self.instruction_encoder = make_instruction_encoder(
            config, vocab_size, embeddings, config.bidirectional, True, load_pretrained
        )
        self.depth_encoder = make_depth_encoder(config, spatial_output=False, load_pretrained=load_pretrained)
        self.rgb_encoder = make_rgb_encoder(config, spatial_output=False, load_pretrained=load_pretrained)
        input_size = self.instruction_encoder.output_size + config.depth_output_size + config.rgb_output_size
        self.use_prev_action = config.use_prev_action
        if self.use_prev_action:
            self.prev_action_embedding = nn.Embedding(NUM_ACTIONS + 1, config.prev_action_embedding_size)
            input_size += config.prev_action_embedding_size
        self.state_encoder = RNNStateEncoder(input_size, config.hidden_size)
        self.progress_monitor = progress_head(config.hidden_size)

    def encode_instruction(self, tokens: Tensor) -> Tensor:
        """(B, L) token ids → (B, D) final LSTM state."""
        return self.instruction_encoder(tokens)

    def encode_observations(self, rgb: Tensor, depth: Tensor) -> dict[str, Tensor]:
        """Per-frame features: ``rgb`` (N, rgb_output_size), ``depth`` (N, depth_output_size)."""
        return {"rgb": self.rgb_encoder(rgb), "depth": self.depth_encoder(depth)}

    def forward(
        self, instruction: Tensor, features: dict[str, Tensor], prev_actions: Tensor, hidden: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Run T steps of every trajectory.

        Args:
            instruction: (B, D) final instruction states from :meth:`encode_instruction`.
            features: ``rgb`` (B, T, rgb_output_size) and ``depth`` (B, T, depth_output_size).
            prev_actions: (B, T) int64 in [-1, 3], −1 at the start of an episode.
            hidden: (B, 1, H) GRU state before the first step.

        Returns:
            outputs (B, T, H) and the last state (B, 1, H).
        """
        batch, steps = prev_actions.shape
        parts = [instruction.unsqueeze(1).expand(batch, steps, -1), features["depth"], features["rgb"]]
        if self.use_prev_action:
            parts.append(self.prev_action_embedding(prev_actions + 1))
        x, last = self.state_encoder(torch.cat(parts, dim=-1), hidden[:, 0])
        return x, last.unsqueeze(1)


@AGENTS.register("seq2seq")
class Seq2SeqAgent(RecurrentVLNAgent):
    """VLN-CE's Seq2Seq baseline (+ progress monitor), trained by inflection-weighted imitation."""

    name = "seq2seq"
    config_class = Seq2SeqConfig
    num_recurrent_layers: ClassVar[int] = 1

    def build_net(self, vocab_size: int, embeddings: Tensor | None, load_pretrained: bool) -> nn.Module:
        """A :class:`Seq2SeqNet` for this agent's config."""
        return Seq2SeqNet(self.config, vocab_size, embeddings, load_pretrained)
