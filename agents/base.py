"""The ``Agent`` interface every policy implements, the agent registry and checkpoint (de)serialisation.

An agent declares what it needs (:mod:`agents.contract`): ``action_mode`` and ``n_waypoints``, the ``tasks``
it
accepts, ``requires_expert``, its ``cameras`` and the ``sample`` a training batch is made of. The rest of the
project reads these declarations.

An agent directory holds ``config.json`` (agent name, the config dataclass as a dict, the instruction
vocabulary word list, the weight files), the weights — ``model.safetensors``, or for large models shards
``model-00001-of-0000N.safetensors`` with ``model.safetensors.index.json`` (Hugging Face's layout) — and any
extra files the agent writes in :meth:`Agent.save_extra` (a tokenizer, a processor config). Nothing is
unpickled.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from agents.contract import CameraRequest, SampleSpec, check_declarations
from agents.registry import Registry
from agents.weights import (
    atomic_write,
    read_json,
    read_weights,
    write_weights,
)
from envs.datasets.vocab import Vocabulary

STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
#: Number of discrete VLN-CE actions (STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT).
NUM_ACTIONS = 4
CONFIG_FILE = "config.json"

AGENTS: Registry[type[Agent]] = Registry("agent")

VocabLike = Vocabulary | Sequence[str] | Mapping[str, Any]


def config_from_dict(config_class: type, data: Mapping[str, Any], source: str = "config") -> Any:
    """Build a config dataclass from a mapping, rejecting unknown keys (a misspelt key must fail, not vanish).

    Raises:
        ValueError: a key is not a field of ``config_class``; the message names ``source`` and the valid
            fields.
    """
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(
            f"{source}: unknown {config_class.__name__} field(s) {unknown}; valid fields: {sorted(fields)}"
        )
    return config_class(**dict(data))


def resolve_vocab(
    vocab: VocabLike | None = None, instructions: Iterable[str] | None = None
) -> Vocabulary | None:
    """A ``Vocabulary`` from a vocabulary, a word list, an ``instruction_vocab`` dict or instruction texts."""
    if vocab is not None and instructions is not None:
        raise ValueError("pass either vocab or instructions, not both")
    if vocab is None and instructions is None:
        return None
    if isinstance(vocab, Vocabulary):
        return vocab
    if isinstance(vocab, Mapping):
        return Vocabulary.from_dict(dict(vocab))
    if vocab is not None:
        return Vocabulary([str(w) for w in vocab])
    return Vocabulary.build(instructions)


def as_tensor(
    x: Any, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """A tensor view or copy of a numpy array, tensor or list; never modifies ``x``."""
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = np.array(x)
    return torch.as_tensor(x, dtype=dtype, device=device)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a tensor (any device), array or list."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def batch_size(obs: Mapping[str, Any]) -> int:
    """Number of environments in a batched observation dict."""
    for key in ("instruction_text", "expert_action", "rgb", "depth", "instruction"):
        if key in obs:
            return len(obs[key])
    raise ValueError(f"observation batch has none of the keys that give its size; got keys {sorted(obs)}")


class Agent(nn.Module, abc.ABC):
    """Base class of every navigation policy.

    Subclasses declare ``name`` (registry key, equal to the default of their config's ``name`` field),
    ``config_class`` (a dataclass) and may override the interface declarations below; all are checked when the
    subclass is defined (:func:`agents.contract.check_declarations`). Intermediate bases pass
    ``abstract=True``
    in the class statement. Instances may narrow a declaration from their config (the expert's action mode).

    Actions (``action_mode``): ``discrete`` — (B,) int64 VLN-CE ids ``0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT,
    3 TURN_RIGHT``; ``waypoint`` — (B, n_waypoints, 3) float32 ``(dx m forward, dy m left, dyaw rad left
    positive)`` in the agent frame at the time of the call, followed by the simulator's controller.

    Observations given to :meth:`act` are batched dicts of numpy arrays or tensors: ``rgb`` (B,H,W,3) uint8,
    ``depth`` (B,H,W,1) float32 metres from the main camera, ``<uuid>_rgb`` / ``<uuid>_depth`` from the other
    declared cameras, and the task's keys: ``instruction_text`` list[str] of length B, ``instruction``
    (B,L) int64 and ``odometry`` (B,3) float32 (x, y, dyaw in the start frame) (VLN); ``pointgoal`` (B,2)
    float32 (distance m, angle rad), ``gps`` (B,2), ``compass`` (B,1) (point goal); ``imagegoal`` (B,H,W,3)
    uint8 (image goal); ``expert_action`` (B,) int64 or (B, n_waypoints, 3) float32 when ``requires_expert``.

    Args:
        config: an instance of ``config_class``.
        vocab: the instruction vocabulary (a ``Vocabulary``, a word list or an R2R-CE ``instruction_vocab``
            dict).
        instructions: training instruction texts to build the vocabulary from (instead of ``vocab``).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    #: Whether :meth:`loss` can train the agent.
    is_trainable: ClassVar[bool] = True
    #: ``discrete`` or ``waypoint`` (see the class docstring).
    action_mode: ClassVar[str] = "discrete"
    #: Waypoints per action in ``waypoint`` mode (0 for discrete agents).
    n_waypoints: ClassVar[int] = 0
    #: Tasks the agent accepts (``vln``, ``pointnav``, ``imagenav``, ``explore``).
    tasks: ClassVar[tuple[str, ...]] = ("vln",)
    #: The rollout adds ``obs["expert_action"]`` (the environment's expert) for agents that set this.
    requires_expert: ClassVar[bool] = False
    #: The rollout adds ``obs["navigator"]``, one :class:`envs.navigator.Navigator` per environment (map
    #: queries: the agent's pose, snapping to the navigable area, the shortest-path follower's next action),
    #: for planner + follower agents that set this.
    requires_navigator: ClassVar[bool] = False
    #: The cameras: the main one first (its size open: the benchmark's or the data's), then extra ones.
    cameras: ClassVar[tuple[CameraRequest, ...]] = (CameraRequest(),)
    #: What one training sample holds (whole trajectories by default).
    sample: ClassVar[SampleSpec] = SampleSpec()
    #: Weights larger than this are written as safetensors shards (None: one file).
    max_shard_bytes: ClassVar[int | None] = None
    #: Under ``distributed=fsdp``: class names of submodules sharded as units of their own (each all-gathered
    #: in its ``forward``, e.g. a transformer's decoder layers). Only modules that :meth:`loss` calls through
    #: ``forward`` qualify; the rest of the agent is one unit gathered around the whole loss (the default).
    fsdp_units: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"agent class {cls.__name__} must declare a non-empty class attribute `name: str`"
            )
        config_class = getattr(cls, "config_class", None)
        if config_class is None or not dataclasses.is_dataclass(config_class):
            raise TypeError(f"agent class {cls.__name__} must declare `config_class`, a dataclass")
        fields = {f.name: f for f in dataclasses.fields(config_class)}
        if "name" not in fields or fields["name"].default != name:
            raise TypeError(
                f"{config_class.__name__} must have a field `name` defaulting to {name!r} "
                f"(registry key = config name = {cls.__name__}.name)"
            )
        check_declarations(cls)

    def __init__(
        self, config: Any, vocab: VocabLike | None = None, instructions: Iterable[str] | None = None
    ) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.vocab = resolve_vocab(vocab, instructions)
        self.n_envs = 0
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        """The device holding the agent's parameters and buffers."""
        return self._device_anchor.device

    # ----------------------------------------------------------------------------------------------- episodes
    def reset(self, n_envs: int, env_ids: Sequence[int] | None = None) -> None:
        """Start new episodes: all ``n_envs`` slots when ``env_ids`` is None, else only the listed slots.

        Clears the recurrent state and the previous action of the reset slots.
        """
        n_envs = int(n_envs)
        if n_envs < 1:
            raise ValueError(f"reset: n_envs must be >= 1, got {n_envs}")
        if env_ids is None or self.n_envs != n_envs:
            if env_ids is not None and self.n_envs != 0:
                raise ValueError(
                    f"reset: n_envs={n_envs} but the agent runs {self.n_envs} envs; reset all first"
                )
            self.n_envs = n_envs
            self._init_state(n_envs)
            return
        ids = np.asarray(env_ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= n_envs):
            raise ValueError(f"reset: env_ids must lie in [0, {n_envs}), got {ids.tolist()}")
        self._clear_state(ids)

    def episode_stats(self) -> dict[str, float]:
        """Numbers the agent keeps about its own acting since its last full :meth:`reset` (the dual systems:
        System-1 plans, System-2 calls and their seconds); none by default. The rollout stores them with
        each episode and the benchmarks add them up in their summary."""
        return {}

    def _init_state(self, n_envs: int) -> None:
        """Allocate fresh per-environment state for ``n_envs`` slots."""

    def _clear_state(self, env_ids: np.ndarray) -> None:
        """Clear the per-environment state of the given slots."""

    def _check_batch(self, obs: Mapping[str, Any]) -> int:
        """Batch size of ``obs``; resets all slots on first use, errors when it differs from ``n_envs``."""
        n = batch_size(obs)
        if self.n_envs == 0:
            self.reset(n)
        elif n != self.n_envs:
            raise ValueError(f"act: observation batch has {n} envs but reset() was called with {self.n_envs}")
        return n

    # ------------------------------------------------------------------------------------------ the contract
    @abc.abstractmethod
    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """Actions for one step of ``n_envs`` environments: (B,) int64 in ``[0, NUM_ACTIONS)`` for discrete
        agents, (B, n_waypoints, 3) float32 agent-frame waypoints for waypoint agents."""

    def record_actions(self, actions: Any) -> None:
        """Tell the agent the actions (B,) the environments executed after :meth:`act`.

        Only needed when they differ from the agent's own (a DAgger mixture executing expert actions): agents
        that condition on the previous action then use the executed one. A no-op for agents without such
        memory.
        """

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch shaped by :attr:`sample`; ``batch`` is not modified.

        A loss may be stochastic (dropout, a diffusion model's noise and timesteps) but then draws only from
        torch's global generator, so it is reproducible under ``torch.manual_seed`` (the trainers seed it).

        Args:
            batch: tensors (strings as lists). ``trajectory`` samples — B padded whole trajectories of T
                steps (:func:`trainers.data.dataset.collate_trajectories`): ``rgb`` (B,T,H,W,3) uint8,
                ``depth`` (B,T,H,W,1) float32 metres, ``instruction_text`` list[str] (B), ``actions`` (B,T)
                int64 expert labels, ``prev_actions`` (B,T) int64 action executed at t−1 (−1 at t=0), ``mask``
                (B,T) bool valid steps, ``progress`` (B,T) float32, ``positions`` (B,T,3) and ``yaws`` (B,T)
                poses, ``goal_position`` (B,3), optionally ``labels`` (B,T,...) float32 continuous labels.
                ``window`` samples — B time steps (:mod:`trainers.data.windows`): ``rgb`` (B,K+1,H,W,3),
                ``depth`` (B,K+1,H,W,1) for K history frames then the current one, ``history_mask`` (B,K+1),
                ``future`` (B,N,3) agent-frame ``(dx, dy, dyaw)`` of the next N poses, ``future_mask`` (B,N),
                ``pointgoal`` (B,2), extra cameras' ``<uuid>_rgb`` / ``<uuid>_depth`` and ``imagegoal`` at
                the current step, ``action`` (B,) int64 expert label, ``progress`` (B,), ``instruction_text``.

        Returns:
            (scalar loss with gradients, info floats: ``loss/action``, ``loss/progress``, ``accuracy``).

        Raises:
            RuntimeError: the agent is not trainable (``is_trainable`` is False).
        """
        raise RuntimeError(f"agent {self.name!r} is not trainable: it has no loss")

    def preprocess(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Model inputs from raw observations; the identity for agents without a model."""
        return dict(obs)

    # ------------------------------------------------------------------------------------- training hooks
    def item_transform(self) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """A per-item transform (a tokenizer or processor) the data loader runs in its worker processes, or
        None. It must pickle without the model's weights (it travels to spawned workers) and return the item
        with the keys :meth:`loss` reads added or replaced."""
        return None

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: dicts with ``params`` and optional per-group settings (``lr``,
        ``weight_decay``). Frozen encoders are left out by overriding this. Default: one group of every
        parameter."""
        return [{"params": list(self.parameters())}]

    def after_step(self, step: int) -> None:
        """Called by the trainer after every optimiser step (``step`` counts them): e.g. an EMA of weights."""

    # ------------------------------------------------------------------------------------------ checkpoints
    def save(self, directory: str | os.PathLike, state: Mapping[str, torch.Tensor] | None = None) -> None:
        """Write ``config.json``, the weights and the agent's extra files into ``directory``.

        The directory is created if needed; each file is written to a temporary name, then renamed, and
        ``config.json`` (which lists the weight files) comes last.

        Args:
            directory: the agent folder.
            state: the weights to write instead of ``state_dict()`` (the whole weights gathered from the
                shards of a model trained with FSDP).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.state_dict() if state is None else state
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        files = write_weights(directory, tensors, {"agent": self.name}, self.max_shard_bytes)
        extra = self.save_extra(directory)
        meta = {
            "name": self.name,
            "config": dataclasses.asdict(self.config),
            "vocab": None if self.vocab is None else list(self.vocab.word_list),
            "weights": files,
            "extra_files": sorted(extra),
        }
        atomic_write(directory / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(meta, indent=2) + "\n"))

    def save_extra(self, directory: Path) -> list[str]:
        """Write files the agent needs besides its config and weights (a tokenizer, a processor config) into
        ``directory``, atomically; returns their names. Read them back in :meth:`_build_for_load`."""
        return []

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        device: torch.device | str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Agent:
        """Rebuild an agent written by :meth:`save`; the class is looked up by the saved name.

        ``overrides`` replace fields of the saved config before the agent is built (acting settings such as
        NavDP's ``selection`` or ``n_waypoints``); one that changes the network's shape fails on the weights.

        Raises:
            FileNotFoundError: a file is missing. ValueError: a file is damaged or does not fit, or an
                override is not a field; all name it.
        """
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(
                f"{config_path}: missing (expected an agent directory written by Agent.save)"
            )
        meta = read_json(config_path, "an object with 'name', 'config' and 'vocab'")
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or "name" not in meta:
            raise ValueError(f"{config_path}: expected an object with 'name', 'config' and 'vocab'")
        agent_class = AGENTS.get(meta["name"])
        if not issubclass(agent_class, cls):
            raise TypeError(f"{config_path}: agent {meta['name']!r} is not a {cls.__name__}")
        data = {**meta["config"], **dict(overrides or {})}
        source = str(config_path) + (f" with overrides {dict(overrides)}" if overrides else "")
        config = config_from_dict(agent_class.config_class, data, source=source)
        agent = agent_class._build_for_load(config, meta.get("vocab"), directory)
        state = read_weights(directory)
        try:
            agent.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{directory}: weights do not match the agent in {source}: {err}") from None
        return agent.to(device) if device is not None else agent

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        """Construct the agent whose weights are about to be loaded from ``directory`` (no pretrained files
        are read; extra files written by :meth:`save_extra` are there to read)."""
        return cls(config, vocab=vocab)


def make_agent(name: str, config: Any = None, **kwargs: Any) -> Agent:
    """Build a registered agent.

    Args:
        name: registry key (``expert``, ``random``, ``forward``, ``seq2seq``, ``cma``).
        config: the agent's config dataclass, a mapping of its fields (e.g. a Hydra node), or None for
            defaults.
        **kwargs: passed to the agent's constructor (``vocab=`` or ``instructions=`` for learned agents).

    Raises:
        KeyError: unknown ``name`` (the message lists the valid names).
        ValueError: the config names another agent or has unknown fields.
    """
    agent_class = AGENTS.get(name)
    if config is None:
        config = agent_class.config_class()
    elif isinstance(config, Mapping):
        config = config_from_dict(agent_class.config_class, config, source=f"agent config for {name!r}")
    if getattr(config, "name", name) != name:
        raise ValueError(f"config.name={config.name!r} does not match the agent {name!r}")
    return agent_class(config, **kwargs)


def load_agent(
    directory: str | os.PathLike,
    device: torch.device | str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Agent:
    """Alias of :meth:`Agent.load`."""
    return Agent.load(directory, device=device, overrides=overrides)
