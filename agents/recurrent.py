"""Shared machinery of the recurrent VLN-CE agents (Seq2Seq, CMA): preprocessing, acting, the imitation loss.

A subclass provides ``build_net`` returning a network with this interface:

- ``encode_instruction(tokens (B, L)) -> Tensor`` (instruction features, batch first);
- ``encode_observations(rgb (N, 3, h, w), depth (N, 1, h, w)) -> dict[str, Tensor]`` per-frame features;
- ``forward(instruction, features {k: (B, T, ...)}, prev_actions (B, T), hidden (B, layers, H))``
  ``-> (outputs (B, T, H), last hidden (B, layers, H))``;
- ``progress_monitor``: ``Linear(H → 1)``.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import NUM_ACTIONS, STOP, Agent, VocabLike, as_tensor, to_numpy
from agents.encoders.instruction import load_glove_embeddings
from agents.layers import CategoricalHead
from agents.losses import progress_loss, weighted_action_loss
from agents.preprocess import preprocess_depth, preprocess_rgb
from envs.datasets.vocab import PAD_TOKEN, UNK_TOKEN, Vocabulary

log = logging.getLogger(__name__)


def _texts(obs: Mapping[str, Any]) -> list[str]:
    if "instruction_text" not in obs:
        raise KeyError(f"learned agents need 'instruction_text' (list of B strings); got keys {sorted(obs)}")
    texts = obs["instruction_text"]
    return [texts] if isinstance(texts, str) else [str(t) for t in texts]


def _require(obs: Mapping[str, Any], key: str, form: str) -> Any:
    if key not in obs:
        raise KeyError(f"learned agents need {key!r} ({form}); got keys {sorted(obs)}")
    return obs[key]


class RecurrentVLNAgent(Agent, abstract=True):
    """An agent with a recurrent network over RGB, depth and instruction, trained by imitation.

    Args:
        config: the agent's config (a :class:`~agents.policy_config.VLNPolicyConfig` subclass).
        vocab: instruction vocabulary (``Vocabulary``, word list or R2R-CE ``instruction_vocab`` dict).
        instructions: training instruction texts to build the vocabulary from, instead of ``vocab``.
        load_pretrained: read ``embedding_file`` / ``depth_weights`` / ``rgb_weights`` (False when the weights
            come from a checkpoint).
    """

    #: Number of recurrent state layers of the network.
    num_recurrent_layers: ClassVar[int] = 1

    def __init__(
        self,
        config: Any,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(config, vocab=vocab, instructions=instructions)
        if self.vocab is None:
            log.warning(
                "%s: no vocabulary given (vocab= or instructions=): every word maps to <unk>", self.name
            )
            self.vocab = Vocabulary([PAD_TOKEN, UNK_TOKEN])
        embeddings = None
        if load_pretrained and config.embedding_file:
            embeddings = load_glove_embeddings(config.embedding_file, self.vocab, config.embedding_size)
        self.net = self.build_net(len(self.vocab), embeddings, load_pretrained)
        self.action_distribution = CategoricalHead(config.hidden_size, NUM_ACTIONS)
        self._hidden: Tensor | None = None
        self._prev_actions = np.zeros(0, dtype=np.int64)

    @abc.abstractmethod
    def build_net(self, vocab_size: int, embeddings: Tensor | None, load_pretrained: bool) -> nn.Module:
        """The network (see the module docstring for its interface)."""

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Any = None) -> Agent:
        return cls(config, vocab=vocab, load_pretrained=False)

    # ----------------------------------------------------------------------------------------- preprocessing
    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """(B, max_instruction_length) int64 token ids of the agent's vocabulary (PAD 0, UNK 1)."""
        length = self.config.max_instruction_length
        return torch.tensor(
            [self.vocab.encode(t, length) for t in texts], dtype=torch.long, device=self.device
        )

    def preprocess(self, obs: Mapping[str, Any]) -> dict[str, Tensor]:
        """Model inputs from a step's observations (B envs) or any batch with leading dims.

        Returns:
            ``rgb`` (N, 3, rgb_size, rgb_size) float in [0, 1] (ImageNet-normalised if ``normalize_rgb``),
            ``depth`` (N, 1, depth_size, depth_size) float in [0, 1] (metres / ``max_depth``), ``instruction``
            (B, max_instruction_length) int64; all on the agent's device.
        """
        cfg = self.config
        rgb = _require(obs, "rgb", "(..., H, W, 3) uint8")
        depth = _require(obs, "depth", "(..., H, W, 1) float32 metres")
        return {
            "rgb": preprocess_rgb(rgb, cfg.rgb_size, cfg.normalize_rgb, self.device),
            "depth": preprocess_depth(depth, cfg.depth_size, cfg.max_depth, self.device),
            "instruction": self.tokenize(_texts(obs)),
        }

    # ----------------------------------------------------------------------------------------------- acting
    def _init_state(self, n_envs: int) -> None:
        layers, hidden = self.num_recurrent_layers, self.config.hidden_size
        self._hidden = torch.zeros(n_envs, layers, hidden, device=self.device)
        self._prev_actions = np.full(n_envs, -1, dtype=np.int64)
        self._instruction_cache: tuple[tuple[str, ...], Tensor] | None = None

    def _clear_state(self, env_ids: np.ndarray) -> None:
        # Out-of-place on the stored state: it may be an inference tensor from act().
        hidden = self._hidden.clone()
        hidden[torch.as_tensor(env_ids, device=hidden.device)] = 0.0
        self._hidden = hidden
        self._prev_actions[env_ids] = -1
        self._instruction_cache = None

    def record_actions(self, actions: Any) -> None:
        """Use the executed actions (B,) as the previous actions of the next step."""
        actions = to_numpy(actions).astype(np.int64).reshape(-1)
        if actions.shape != self._prev_actions.shape:
            raise ValueError(
                f"record_actions: expected {self._prev_actions.shape[0]} actions, got {actions.shape}"
            )
        if actions.size and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
            raise ValueError(
                f"record_actions: actions must lie in [0, {NUM_ACTIONS}), got {actions.tolist()}"
            )
        self._prev_actions = actions

    def _step_logits(self, obs: Mapping[str, Any]) -> Tensor:
        """(B, NUM_ACTIONS) logits of one step; advances the recurrent state (and keeps the step's progress
        prediction in ``_progress`` when the agent has a progress head)."""
        inputs = self.preprocess(obs)
        # An instruction is fixed for a whole episode: encode it once (the cache is cleared by reset()).
        texts = tuple(_texts(obs))
        if self._instruction_cache is None or self._instruction_cache[0] != texts:
            self._instruction_cache = (texts, self.net.encode_instruction(inputs["instruction"]))
        instruction = self._instruction_cache[1]
        features = self.net.encode_observations(inputs["rgb"], inputs["depth"])
        # (B, ...) -> (B, T=1, ...)
        features = {k: v.unsqueeze(1) for k, v in features.items()}
        prev = torch.as_tensor(self._prev_actions, device=self.device).unsqueeze(1)
        x, self._hidden = self.net(instruction, features, prev, self._hidden.to(self.device))
        if self.config.progress_monitor:
            self._progress = torch.tanh(self.net.progress_monitor(x[:, 0])).squeeze(-1)
        return self.action_distribution(x[:, 0])

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """One step for every env: (B,) int64 actions, argmax when ``deterministic`` else sampled."""
        self._check_batch(obs)
        with torch.no_grad():
            logits = self._step_logits(obs)
            if deterministic:
                actions = logits.argmax(dim=-1)
            else:
                actions = torch.distributions.Categorical(logits=logits).sample()
            if self.config.progress_stop is not None:
                actions = torch.where(self._progress >= self.config.progress_stop, STOP, actions)
        actions = actions.cpu().numpy().astype(np.int64)
        self._prev_actions = actions.copy()
        return actions

    def action_logits(self, obs: Mapping[str, Any]) -> Tensor:
        """(B, NUM_ACTIONS) logits of the next step, leaving the recurrent state unchanged."""
        self._check_batch(obs)
        hidden = self._hidden
        with torch.no_grad():
            logits = self._step_logits(obs)
        self._hidden = hidden
        return logits

    # ------------------------------------------------------------------------------------------------- loss
    def _trajectory_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        mask = as_tensor(_require(batch, "mask", "(B, T) bool"), torch.bool, self.device)
        if mask.ndim != 2 or not mask.any():
            raise ValueError(
                f"batch['mask'] must be (B, T) bool with a valid step, got shape {tuple(mask.shape)}"
            )
        actions = as_tensor(_require(batch, "actions", "(B, T) int64"), torch.long, self.device)
        if "prev_actions" in batch:
            prev = as_tensor(batch["prev_actions"], torch.long, self.device)
        else:  # teacher forcing: the previous expert label, -1 at t=0
            prev = torch.cat([torch.full_like(actions[:, :1], -1), actions[:, :-1]], dim=1)
        progress = batch.get("progress")
        for key, value in (("actions", actions), ("prev_actions", prev)):
            if value.shape != mask.shape:
                raise ValueError(
                    f"batch[{key!r}] has shape {tuple(value.shape)}, expected {tuple(mask.shape)}"
                )
        low = {"actions": 0, "prev_actions": -1}
        for key, value in (("actions", actions[mask]), ("prev_actions", prev[mask])):
            if value.numel() and (value.min() < low[key] or value.max() >= NUM_ACTIONS):
                raise ValueError(f"batch[{key!r}] must lie in [{low[key]}, {NUM_ACTIONS}) on valid steps")
        return {
            "mask": mask,
            "actions": actions,
            "prev_actions": prev.clamp(min=-1),
            "progress": None if progress is None else as_tensor(progress, torch.float32, self.device),
            "rgb": as_tensor(_require(batch, "rgb", "(B, T, H, W, 3) uint8")),
            "depth": as_tensor(_require(batch, "depth", "(B, T, H, W, 1) float32")),
            "instruction": self.tokenize(_texts(batch)),
        }

    def _valid_frame_features(self, inputs: dict[str, Any]) -> dict[str, Tensor]:
        """Encode only the valid frames and scatter them into (B, T, ...) (zeros on padded steps)."""
        mask = inputs["mask"]
        frames = {}
        for key in ("rgb", "depth"):
            images = inputs[key]
            if images.shape[:2] != mask.shape:
                raise ValueError(
                    f"batch[{key!r}] has leading dims {tuple(images.shape[:2])}, expected (B, T)"
                )
            frames[key] = images[mask.to(images.device)]
        cfg = self.config
        features = self.net.encode_observations(
            preprocess_rgb(frames["rgb"], cfg.rgb_size, cfg.normalize_rgb, self.device),
            preprocess_depth(frames["depth"], cfg.depth_size, cfg.max_depth, self.device),
        )
        out = {}
        for key, value in features.items():
            full = value.new_zeros((*mask.shape, *value.shape[1:]))
            full[mask] = value
            out[key] = full
        return out

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """Inflection-weighted CE (+ α · progress MSE) over padded whole trajectories, full BPTT from zero
        state.

        ``batch``: ``rgb`` (B,T,H,W,3) uint8, ``depth`` (B,T,H,W,1) float32 metres, ``instruction_text`` (B),
        ``actions`` (B,T) int64 expert labels, ``prev_actions`` (B,T) int64 (−1 at t=0; derived from
        ``actions`` when absent), ``mask`` (B,T) bool, optional ``progress`` (B,T) float32. Not modified.

        Returns:
            (loss, info) with info keys ``loss/action``, ``loss/progress`` (0 without a progress target) and
            ``accuracy`` (argmax = label over valid steps).
        """
        inputs = self._trajectory_inputs(batch)
        mask = inputs["mask"]
        instruction = self.net.encode_instruction(inputs["instruction"])
        features = self._valid_frame_features(inputs)
        hidden = torch.zeros(
            mask.shape[0], self.num_recurrent_layers, self.config.hidden_size, device=self.device
        )
        x, _ = self.net(instruction, features, inputs["prev_actions"], hidden)
        logits = self.action_distribution(x)
        action_loss, accuracy = weighted_action_loss(
            logits, inputs["actions"], mask, self.config.inflection_weight
        )
        progress = torch.zeros((), device=self.device)
        if self.config.progress_monitor and inputs["progress"] is not None:
            predicted = torch.tanh(self.net.progress_monitor(x)).squeeze(-1)
            progress = progress_loss(predicted, inputs["progress"], mask)
        total = action_loss + self.config.progress_alpha * progress
        info = {
            "loss/action": action_loss.item(),
            "loss/progress": progress.item(),
            "accuracy": accuracy.item(),
        }
        return total, info
