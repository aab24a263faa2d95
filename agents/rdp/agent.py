"""The RDP agent: acting by re-planning with diffusion, and the loss on whole trajectories.

Acting, per environment: every step updates the GRU with the frame, the previous executed action and the
odometry; when the environment's plan is empty, ``horizon`` future steps are sampled with diffusers' DDPM
(classifier-free guidance ``guidance_scale``) and decoded into up to ``len_traj_act`` discrete actions
(:func:`agents.rdp.labels.decode_plan`), which the next steps execute before re-planning. The agent keeps,
per environment, the plan's remaining actions, the GRU state and the previous-action history; ``reset``
clears them and ``record_actions`` (DAgger executing another action) rewrites the history and drops the plan.
``deterministic=True`` draws the plans' noise from one generator per environment, seeded with ``sample_seed``
at the episode's start (:class:`agents.diffusion.EpisodeNoise`): an episode replays exactly, and successive
plans differ.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.base import AGENTS, NUM_ACTIONS, STOP, Agent, VocabLike, as_tensor, to_numpy
from agents.contract import SampleSpec
from agents.diffusion import EpisodeNoise
from agents.preprocess import preprocess_depth, preprocess_rgb
from agents.rdp import clip as clip_io
from agents.rdp.config import RDPConfig
from agents.rdp.diffusion import make_scheduler, sample_steps
from agents.rdp.labels import DecodeRules, StepSemantics, action_steps, decode_plan
from agents.rdp.losses import trajectory_loss
from agents.rdp.network import STEP_DIM, RDPNet
from agents.weights import atomic_write
from envs.datasets.vocab import PAD_TOKEN, UNK_TOKEN, Vocabulary

log = logging.getLogger(__name__)
CLIP_DIR = "clip"


@AGENTS.register("rdp")
class RDPAgent(Agent):
    """Recurrent Diffusion Policy (VLN-PE's RDP): a discrete VLN agent that plans ``(dx, dy, dyaw)`` steps.

    Observations: ``rgb``, ``depth``, ``instruction_text`` and ``odometry`` (B, 3) ``(x m, y m, dyaw rad)`` in
    the episode's start frame (the VLN environment's observation). Training batches: whole trajectories
    (``positions`` and ``yaws`` give the odometry and the labels, see :mod:`agents.rdp.labels`).

    Args:
        config: an :class:`RDPConfig`.
        vocab, instructions: the instruction vocabulary (the ``transformer`` text encoder).
        load_pretrained: read ``clip_path`` and ``depth_weights`` (False: the weights come from a checkpoint).
        clip_dir: a checkpoint's ``clip/`` folder (CLIP config and tokenizer), read when ``load_pretrained``
            is False.
    """

    name = "rdp"
    config_class = RDPConfig
    action_mode = "discrete"
    tasks = ("vln",)
    sample = SampleSpec(kind="trajectory")

    def __init__(
        self,
        config: RDPConfig,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        load_pretrained: bool = True,
        clip_dir: str | Path | None = None,
    ) -> None:
        super().__init__(config, vocab=vocab, instructions=instructions)
        c = config
        if self.vocab is None:
            if c.text_encoder == "transformer":
                log.warning("rdp: no vocabulary given (vocab= or instructions=): every word maps to <unk>")
            self.vocab = Vocabulary([PAD_TOKEN, UNK_TOKEN])
        self.clip_config, self.tokenizer, clip = self._clip(load_pretrained, clip_dir)
        self.net = RDPNet(c, len(self.vocab), clip, load_pretrained)
        self.scheduler = make_scheduler(c.num_train_timesteps, c.prediction_type)
        self.semantics = StepSemantics(
            c.horizon, c.forward_step, np.radians(c.turn_angle), c.max_dxy, c.max_dyaw,
            c.use_discrete_dataset, c.supervise_after_end,
        )  # fmt: skip
        self.rules = DecodeRules(c.len_traj_act, c.move_threshold, c.stop_threshold, c.stop_window)
        self._init_state(0)

    def _clip(self, load_pretrained: bool, clip_dir: str | Path | None) -> tuple[Any, Any, Any]:
        """(CLIPConfig, tokenizer or None, CLIPModel) when an encoder uses CLIP, else three Nones."""
        c = self.config
        if "clip" not in (c.rgb_encoder, c.text_encoder):
            return None, None, None
        source = c.clip_path if load_pretrained else clip_dir
        if source is None:
            log.warning(
                "rdp: clip_path is null: CLIP ViT-B/16 keeps its random initialisation (no tokenizer)"
            )
            model = clip_io.build_clip(clip_io.vit_b16_config(), c.clip_text_positions)
        elif load_pretrained:
            model = clip_io.load_clip(source, c.clip_text_positions)
        else:
            model = clip_io.build_clip(clip_io.read_clip_config(source), c.clip_text_positions)
        positions = model.config.text_config.max_position_embeddings
        if c.text_encoder == "clip" and c.max_instruction_length > positions:
            raise ValueError(
                f"RDPConfig.max_instruction_length must be <= the CLIP text positions ({positions}); got "
                f"{c.max_instruction_length} (set clip_text_positions, e.g. 248 for LongCLIP)"
            )
        tokenizer = None
        if c.text_encoder == "clip" and source is not None:
            tokenizer = clip_io.load_tokenizer(source)
        return model.config, tokenizer, model

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        clip_dir = None if directory is None else Path(directory) / CLIP_DIR
        return cls(config, vocab=vocab, load_pretrained=False, clip_dir=clip_dir)

    def save_extra(self, directory: Path) -> list[str]:
        """With a CLIP encoder: ``clip/config.json`` and the tokenizer files, so the checkpoint rebuilds
        without the original CLIP directory."""
        if self.clip_config is None:
            return []
        folder = Path(directory) / CLIP_DIR
        folder.mkdir(parents=True, exist_ok=True)
        text = self.clip_config.to_json_string()
        atomic_write(folder / clip_io.CONFIG_FILE, lambda p: Path(p).write_text(text))
        names = [clip_io.CONFIG_FILE]
        if self.tokenizer is not None:
            names += [Path(f).name for f in self.tokenizer.save_pretrained(str(folder)) if Path(f).is_file()]
        return sorted(f"{CLIP_DIR}/{n}" for n in set(names))

    def param_groups(self) -> list[dict[str, Any]]:
        """One group of the trainable parameters (frozen CLIP / depth towers left out)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    # ----------------------------------------------------------------------------------------- preprocessing
    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """(B, L) int64 token ids and (B, L) attention mask of the instructions, L the longest one."""
        c = self.config
        if c.text_encoder == "clip":
            if self.tokenizer is None:
                raise RuntimeError(
                    "rdp: RDPConfig.clip_path is null, so the CLIP text tower has no tokenizer; give "
                    "clip_path "
                    "(a CLIP directory with vocab.json and merges.txt, or tokenizer.json)"
                )
            ids, mask = clip_io.tokenize(self.tokenizer, list(texts), c.max_instruction_length)
            return ids.to(self.device), mask.to(self.device)
        ids = torch.tensor([self.vocab.encode(t, c.max_instruction_length) for t in texts], dtype=torch.long)
        length = max(1, int((ids != 0).sum(dim=1).max())) if len(texts) else 1
        ids = ids[:, :length].to(self.device)
        return ids, (ids != 0).long()

    def frames(self, rgb: Any, depth: Any) -> tuple[Tensor, Tensor]:
        """(N, 3, S, S) RGB in [0, 1] and (N, 1, S', S') depth in [0, 1] from (..., H, W, C) frames."""
        c = self.config
        return (
            preprocess_rgb(rgb, c.rgb_size, False, self.device),
            preprocess_depth(depth, c.depth_size, c.max_depth, self.device),
        )

    def steps(self, actions: Any) -> Tensor:
        """(..., 3) normalised nominal steps of action ids (−1: none) on the agent's device."""
        steps = self.semantics.normalise(action_steps(to_numpy(actions), self.semantics))
        return torch.from_numpy(steps).to(self.device)

    # ----------------------------------------------------------------------------------------------- acting
    def _init_state(self, n_envs: int) -> None:
        self._hidden = torch.zeros(n_envs, self.config.hidden_size, device=self.device)
        self._history = np.full((n_envs, self.config.n_prev_actions), -1, np.int64)
        self._plans: list[collections.deque[int]] = [collections.deque() for _ in range(n_envs)]
        self._last = np.full(n_envs, -1, np.int64)
        self._text_cache: tuple[tuple[str, ...], Tensor, Tensor] | None = None
        self._noise = EpisodeNoise(self.config.sample_seed, n_envs)

    def _clear_state(self, env_ids: np.ndarray) -> None:
        hidden = self._hidden.clone()  # out of place: it may be an inference tensor from act()
        hidden[torch.as_tensor(env_ids, device=hidden.device)] = 0.0
        self._hidden = hidden
        self._history[env_ids] = -1
        self._last[env_ids] = -1
        for i in env_ids:
            self._plans[int(i)].clear()
        self._text_cache = None
        self._noise.clear(env_ids)

    def _text(self, obs: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        texts = tuple(_texts(obs))
        if self._text_cache is None or self._text_cache[0] != texts:
            self._text_cache = (texts, *self.net.encode_text(*self.tokenize(texts)))
        return self._text_cache[1], self._text_cache[2]

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """One step for every env: (B,) int64 actions, popped from each env's plan (re-planned when empty)."""
        n = self._check_batch(obs)
        odometry = as_tensor(_require(obs, "odometry", "(B, 3) float32 x, y, dyaw in the start frame"))
        if tuple(odometry.shape) != (n, STEP_DIM):
            raise ValueError(f"obs['odometry'] has shape {tuple(odometry.shape)}, expected ({n}, {STEP_DIM})")
        odometry = odometry.to(self.device, torch.float32)
        with torch.no_grad():
            text, valid = self._text(obs)
            vision = self.net.encode_frames(
                *self.frames(_require(obs, "rgb", "(B,H,W,3)"), _require(obs, "depth", "(B,H,W,1)"))
            )
            prev = self.steps(self._history[:, 0])
            states, self._hidden = self.net.recurrent(
                vision[:, None], prev[:, None], odometry[:, None], self._hidden.to(self.device)
            )
            need = [i for i in range(n) if not self._plans[i]]
            if need:
                self._plan(need, vision, states[:, 0], text, valid, odometry, deterministic)
        actions = np.array([self._plans[i].popleft() for i in range(n)], np.int64)
        for i in np.flatnonzero(actions == STOP):
            self._plans[i].clear()
        self._history = np.concatenate([actions[:, None], self._history[:, :-1]], axis=1)
        self._last = actions.copy()
        return actions

    def _plan(self, envs: list[int], vision, state, text, valid, odometry, deterministic: bool) -> None:
        """Sample and decode a plan for the listed envs (their inputs are rows of the step's tensors)."""
        c, idx = self.config, torch.as_tensor(envs, device=self.device)
        history = self.steps(self._history[envs])
        cond, summary = self.net.condition(
            vision[idx], state[idx], text[idx], valid[idx], odometry[idx], history
        )
        _, stop = self.net.progress(state[idx], summary)
        guided = self.net.finish_condition(cond, None)
        masked = torch.ones(len(envs), dtype=torch.bool, device=self.device)
        uncond = self.net.finish_condition(cond, masked) if c.guidance_scale != 1.0 else None
        generators = self._noise.generators(envs) if deterministic else None
        x = sample_steps(
            self.net.head, self.scheduler, guided, uncond, (c.horizon, STEP_DIM), c.num_inference_steps,
            c.guidance_scale, generators,
        )  # fmt: skip
        steps = self.semantics.denormalise(to_numpy(x))
        for i, plan, p in zip(envs, steps, to_numpy(stop).tolist(), strict=True):
            self._plans[i].extend(decode_plan(plan, p, self.rules))

    def record_actions(self, actions: Any) -> None:
        """The executed actions (B,): where one differs from the agent's, it replaces the last action of the
        history and the rest of that env's plan is dropped."""
        actions = to_numpy(actions).astype(np.int64).reshape(-1)
        if actions.shape != self._last.shape:
            raise ValueError(f"record_actions: expected {self._last.shape[0]} actions, got {actions.shape}")
        if actions.size and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
            raise ValueError(
                f"record_actions: actions must lie in [0, {NUM_ACTIONS}), got {actions.tolist()}"
            )
        for i in np.flatnonzero(actions != self._last):
            self._history[i, 0] = actions[i]
            self._plans[i].clear()
        self._last = actions.copy()

    # ------------------------------------------------------------------------------------------------- loss
    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """Denoising MSE + auxiliary terms over the valid steps of padded whole trajectories
        (:func:`agents.rdp.losses.trajectory_loss`); draws its noise, timesteps and guidance masks from
        torch's global generator. ``batch`` is not modified.

        Returns:
            (loss, info): ``loss/action`` (the denoising MSE, of the noise or of the plan),
            ``loss/progress`` (the weighted auxiliary terms), ``loss/progress_monitor``,
            ``loss/stop_progress``, ``loss/action_ce``, ``accuracy`` (the first step of the one-shot denoised
            estimate decodes to the label's action).
        """
        return trajectory_loss(self, batch)


def _texts(obs: Mapping[str, Any]) -> list[str]:
    texts = _require(obs, "instruction_text", "list of B strings")
    return [texts] if isinstance(texts, str) else [str(t) for t in texts]


def _require(obs: Mapping[str, Any], key: str, form: str) -> Any:
    if key not in obs:
        hint = " (the VLN environment's observation)" if key == "odometry" else ""
        raise KeyError(f"rdp needs {key!r} ({form}){hint}; got keys {sorted(obs)}")
    return obs[key]
