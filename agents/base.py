"""The ``Agent`` interface every policy implements, the agent registry and checkpoint (de)serialisation.

A checkpoint directory holds ``config.json`` (agent name, the config dataclass as a dict, the instruction
vocabulary word list) and ``model.safetensors`` (the full ``state_dict``, frozen encoders included). Nothing
is unpickled.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from agents.registry import Registry
from envs.datasets.vocab import Vocabulary

STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
#: Number of discrete VLN-CE actions (STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT).
NUM_ACTIONS = 4
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

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


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Agent(nn.Module, abc.ABC):
    """Base class of every navigation policy.

    Subclasses declare ``name`` (registry key, equal to the default of their config's ``name`` field) and
    ``config_class`` (a dataclass); both are checked when the subclass is defined. Intermediate bases pass
    ``abstract=True`` in the class statement.

    Actions are discrete VLN-CE actions: ``0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT``.

    Observations given to :meth:`act` are batched dicts of numpy arrays or tensors: ``rgb`` (B,H,W,3) uint8,
    ``depth`` (B,H,W,1) float32 metres, ``instruction_text`` list[str] of length B, optionally ``instruction``
    (B,L) int64 environment token ids and ``expert_action`` (B,) int64.

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
        """Actions for one step of ``n_envs`` environments: (B,) int64 in ``[0, NUM_ACTIONS)``."""

    def record_actions(self, actions: Any) -> None:
        """Tell the agent the actions (B,) the environments executed after :meth:`act`.

        Only needed when they differ from the agent's own (a DAgger mixture executing expert actions): agents
        that condition on the previous action then use the executed one. A no-op for agents without such
        memory.
        """

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch of B padded whole trajectories of T steps; ``batch`` is not modified.

        Args:
            batch: numpy arrays or tensors: ``rgb`` (B,T,H,W,3) uint8, ``depth`` (B,T,H,W,1) float32 metres,
                ``instruction_text`` list[str] (B), ``actions`` (B,T) int64 expert labels, ``prev_actions``
                (B,T) int64 action executed at t−1 (−1 at t=0), ``mask`` (B,T) bool valid steps, optionally
                ``progress`` (B,T) float32.

        Returns:
            (scalar loss with gradients, info floats: ``loss/action``, ``loss/progress``, ``accuracy``).

        Raises:
            RuntimeError: the agent is not trainable (``is_trainable`` is False).
        """
        raise RuntimeError(f"agent {self.name!r} is not trainable: it has no loss")

    def preprocess(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Model inputs from raw observations; the identity for agents without a model."""
        return dict(obs)

    # ------------------------------------------------------------------------------------------ checkpoints
    def save(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``.

        The directory is created if needed; each file is written to a temporary name, then renamed.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "config": dataclasses.asdict(self.config),
            "vocab": None if self.vocab is None else list(self.vocab.word_list),
        }
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        _atomic_write(
            directory / WEIGHTS_FILE, lambda p: save_file(tensors, p, metadata={"agent": self.name})
        )
        _atomic_write(
            directory / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(meta, indent=2) + "\n")
        )

    @classmethod
    def load(cls, directory: str | os.PathLike, device: torch.device | str | None = None) -> Agent:
        """Rebuild an agent written by :meth:`save`; the class is looked up by the saved name.

        Raises:
            FileNotFoundError: a file is missing. ValueError: a file is damaged or does not fit; both name it.
        """
        config_path = Path(directory) / CONFIG_FILE
        weights_path = Path(directory) / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: missing (expected an agent directory written by Agent.save)"
                )
        try:
            meta = json.loads(config_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{config_path}: not readable JSON ({err}); expected the file Agent.save writes"
            ) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or "name" not in meta:
            raise ValueError(f"{config_path}: expected an object with 'name', 'config' and 'vocab'")
        agent_class = AGENTS.get(meta["name"])
        if not issubclass(agent_class, cls):
            raise TypeError(f"{config_path}: agent {meta['name']!r} is not a {cls.__name__}")
        config = config_from_dict(agent_class.config_class, meta["config"], source=str(config_path))
        agent = agent_class._build_for_load(config, meta.get("vocab"))
        try:
            tensors = load_file(str(weights_path))
        except Exception as err:  # safetensors raises its own SafetensorError for a damaged file
            raise ValueError(
                f"{weights_path}: not a readable safetensors file ({err}); expected what Agent.save writes"
            ) from None
        try:
            agent.load_state_dict(tensors, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"{weights_path}: weights do not match the agent in {config_path}: {err}"
            ) from None
        return agent.to(device) if device is not None else agent

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None) -> Agent:
        """Construct the agent whose weights are about to be loaded (no pretrained files are read)."""
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


def load_agent(directory: str | os.PathLike, device: torch.device | str | None = None) -> Agent:
    """Alias of :meth:`Agent.load`."""
    return Agent.load(directory, device=device)
