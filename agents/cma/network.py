"""The Cross-Modal Attention network of VLN-CE (``CMANet``), with its module names and layer sizes.

Per step (paper sizes, anchors Part B §1.6):
1. rgb_in = ReLU(Linear(2112 → 256)(mean over cells)); depth_in = ReLU(Linear(192·16 → 128)(flatten));
   GRU-1 over [rgb_in, depth_in, prev-action 32] → state h (512).
2. Text attention: q = Linear(512 → 256)(h), keys = Conv1d(256 → 256)(tokens), values = tokens;
   scaled by 1/√256, padded tokens masked.
3. Visual attention queried by Linear(256 → 256)(text): RGB keys/values from Conv1d(2112 → 256 + 256),
   depth keys/values from Conv1d(192 → 256 + 128), over the spatial cells.
4. [h, text, rgb, depth, prev-action] (1184) → ReLU(Linear(→ 512)) → GRU-2 (512) → outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from agents.base import NUM_ACTIONS
from agents.cma.config import CMAConfig
from agents.encoders.build import make_depth_encoder, make_instruction_encoder, make_rgb_encoder
from agents.layers import RNNStateEncoder, progress_head


class CMANet(nn.Module):
    """VLN-CE's CMA network over whole sequences (the attention runs batched over all B·T steps).

    Args:
        config: the agent's config.
        vocab_size: instruction vocabulary size.
        embeddings: initial word vectors (vocab_size, embedding_size), or None.
        load_pretrained: load the encoders' pretrained weights named in ``config``.
    """

    def __init__(
        self, config: CMAConfig, vocab_size: int, embeddings: Tensor | None, load_pretrained: bool = True
    ) -> None:
        super().__init__()
        hidden, half = config.hidden_size, config.hidden_size // 2
        rgb_out, depth_out = config.rgb_output_size, config.depth_output_size
        self.instruction_encoder = make_instruction_encoder(
            config, vocab_size, embeddings, config.bidirectional, False, load_pretrained
        )
        self.depth_encoder = make_depth_encoder(config, True, config.spatial_embedding_size, load_pretrained)
        self.rgb_encoder = make_rgb_encoder(config, True, config.spatial_embedding_size, load_pretrained)
        self.prev_action_embedding = nn.Embedding(NUM_ACTIONS + 1, config.prev_action_embedding_size)
        prev_size, text_size = config.prev_action_embedding_size, self.instruction_encoder.output_size
        rgb_channels = self.rgb_encoder.output_shape[0]
        depth_channels, depth_h, depth_w = self.depth_encoder.output_shape

        self.rgb_linear = nn.Sequential(
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(rgb_channels, rgb_out), nn.ReLU(True)
        )
        self.depth_linear = nn.Sequential(
            nn.Flatten(), nn.Linear(depth_channels * depth_h * depth_w, depth_out), nn.ReLU(True)
        )
        self.state_encoder = RNNStateEncoder(rgb_out + depth_out + prev_size, hidden)
        self.rgb_kv = nn.Conv1d(rgb_channels, half + rgb_out, 1)
        self.depth_kv = nn.Conv1d(depth_channels, half + depth_out, 1)
        self.state_q = nn.Linear(hidden, half)
        self.text_k = nn.Conv1d(text_size, half, 1)
        self.text_q = nn.Linear(text_size, half)
        self.register_buffer("_scale", torch.tensor(1.0 / half**0.5))
        self.second_state_compress = nn.Sequential(
            nn.Linear(hidden + text_size + rgb_out + depth_out + prev_size, hidden), nn.ReLU(True)
        )
        self.second_state_encoder = RNNStateEncoder(hidden, hidden)
        self.progress_monitor = progress_head(hidden)
        self._split = {"rgb": (half, rgb_out), "depth": (half, depth_out)}

    def encode_instruction(self, tokens: Tensor) -> Tensor:
        """(B, L) token ids → (B, D, L') per-token features (padded tokens exactly 0)."""
        return self.instruction_encoder(tokens)

    def encode_observations(self, rgb: Tensor, depth: Tensor) -> dict[str, Tensor]:
        """Per-frame spatial features, flattened over cells: ``rgb`` (N, C_rgb, S), ``depth`` (N, C_d, S')."""
        return {"rgb": self.rgb_encoder(rgb).flatten(2), "depth": self.depth_encoder(depth).flatten(2)}

    def _attend(self, query: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """Scaled dot-product attention of (N, c) queries over (N, c, S) keys / (N, v, S) values → (N, v)."""
        logits = torch.einsum("nc,ncs->ns", query, keys)
        weights = torch.softmax(logits * self._scale, dim=1)
        return torch.einsum("ns,nvs->nv", weights, values)

    def _text_attention(self, state: Tensor, instruction: Tensor) -> Tensor:
        """Text context (B, T, D) for states (B, T, H) over instruction features (B, D, L)."""
        keys = self.text_k(instruction)  # (B, half, L), once per trajectory
        logits = torch.einsum("btc,bcl->btl", self.state_q(state), keys)
        padding = (instruction == 0.0).all(dim=1)  # (B, L)
        logits = logits - padding.unsqueeze(1).float() * 1e8  # VLN-CE's masking of padded tokens
        weights = torch.softmax(logits * self._scale, dim=-1)
        return torch.einsum("btl,bdl->btd", weights, instruction)

    def forward(
        self, instruction: Tensor, features: dict[str, Tensor], prev_actions: Tensor, hidden: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Run T steps of every trajectory.

        Args:
            instruction: (B, D, L) per-token features from :meth:`encode_instruction`.
            features: ``rgb`` (B, T, C_rgb, S) and ``depth`` (B, T, C_d, S') from :meth:`encode_observations`.
            prev_actions: (B, T) int64 in [-1, 3], −1 at the start of an episode.
            hidden: (B, 2, H) states of GRU-1 and GRU-2 before the first step.

        Returns:
            outputs (B, T, H) of GRU-2 and the last states (B, 2, H).
        """
        batch, steps = prev_actions.shape
        # (B, T, C, S) -> (B*T, C, S)
        rgb, depth = features["rgb"].flatten(0, 1), features["depth"].flatten(0, 1)
        prev = self.prev_action_embedding(prev_actions + 1)  # (B, T, E)
        rgb_in = self.rgb_linear(rgb).view(batch, steps, -1)
        depth_in = self.depth_linear(depth).view(batch, steps, -1)
        state, last_1 = self.state_encoder(torch.cat([rgb_in, depth_in, prev], dim=-1), hidden[:, 0])

        text = self._text_attention(state, instruction)  # (B, T, D)
        query = self.text_q(text).flatten(0, 1)  # (B*T, half)
        rgb_k, rgb_v = torch.split(self.rgb_kv(rgb), self._split["rgb"], dim=1)
        depth_k, depth_v = torch.split(self.depth_kv(depth), self._split["depth"], dim=1)
        rgb_att = self._attend(query, rgb_k, rgb_v).view(batch, steps, -1)
        depth_att = self._attend(query, depth_k, depth_v).view(batch, steps, -1)

        x = torch.cat([state, text, rgb_att, depth_att, prev], dim=-1)
        x, last_2 = self.second_state_encoder(self.second_state_compress(x), hidden[:, 1])
        return x, torch.stack([last_1, last_2], dim=1)
