"""Structured config of ``benchmarks/run.py`` and how it becomes agents and a benchmark.

``configs/eval.yaml`` composes :class:`EvalRunConfig` (stored as ``eval_schema``) with one
``configs/benchmark/<name>.yaml`` (a :class:`BenchmarkConfig`) and optionally one node of the ``agent`` group
(the agents' config dataclasses), so a misspelt key fails when the config is composed, naming the key.

What is evaluated (:func:`agent_entries`):

- ``checkpoint=PATH``: an agent rebuilt from its own saved config and weights. ``PATH`` is an agent folder
  (``config.json`` + ``model.safetensors``), a checkpoint ``<run>/checkpoints/<step>`` (or ``.../last``), a
  run folder (its latest checkpoint) or its ``checkpoints/`` folder. With ``agent=NAME`` as well, the saved
  agent must be a ``NAME``, and the ``agent.<field>=...`` given on the command line replace those fields of
  the saved config (acting settings: ``checkpoint=... agent=navdp agent.selection=random``); the others
  keep their saved values, and one that changes the network fails on the weights, naming the field.
- ``agent=NAME`` alone: a built-in agent that needs no weights (``expert``, ``random``, ``forward``), with
  ``agent.<field>=...`` overrides of its config.
- ``agents=[expert,random,runs/x/checkpoints/last]``: several, each a built-in name or a path as above,
  evaluated on the same episodes; a comparison report comes out of the one command.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from agents import AGENTS, load_agent, make_agent
from agents.base import CONFIG_FILE
from agents.checkpoints import read_json
from agents.hydra_configs import register_agent_configs
from benchmarks.base import BENCHMARKS, EpisodeBenchmark

logger = logging.getLogger(__name__)


@dataclass
class EvalDataConfig:
    """The dataset: ``dir`` holds ``{split}/{split}.json.gz`` folders (R2R-CE layout); ``scenes_dir`` the
    scene files (default ``dir/scenes``)."""

    dir: str = "data/navgym_r2r"
    scenes_dir: str | None = None


@dataclass
class BenchmarkConfig:
    """One benchmark: the registry ``name`` and its fixed episode list, seed and camera.

    Attributes:
        name: a ``BENCHMARKS`` key (= the YAML file name).
        split: dataset split (None: the benchmark's own).
        episode_ids: exactly these episodes, in order (None: the split's, in file order).
        n_episodes: the first ``n_episodes`` of the list (None: all).
        seed: seeds the environment, the agents' global RNGs and the episode order.
        width, height: camera pixels (None: each agent's own size, else 64).
        hfov: camera horizontal field of view, degrees.
        max_episode_steps: step limit (None: the task's protocol value).
        n_videos: episodes recorded as MP4 per agent.
        deterministic: greedy actions (False: sampled).
        planning: ``sync`` or ``async`` (System-1 benchmarks: the planner's latency costs simulated time, see
            :mod:`envs.planning`).
        plan_latency: asynchronous planning: fixed latency in seconds for reproducible runs (None: measured).
        time_limit: asynchronous planning: simulated seconds per episode (NavDP: 120).
    """

    name: str = "vln_val_unseen"
    split: str | None = None
    episode_ids: list[str] | None = None
    n_episodes: int | None = None
    seed: int = 0
    width: int | None = None
    height: int | None = None
    hfov: float = 90.0
    max_episode_steps: int | None = None
    n_videos: int = 2
    deterministic: bool = True
    planning: str = "sync"
    plan_latency: float | None = None
    time_limit: float = 120.0

    def __post_init__(self) -> None:
        BENCHMARKS.get(self.name)
        for key in ("n_episodes", "width", "height", "max_episode_steps"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"benchmark.{key} must be a positive int or null, got {value!r}")
        if self.planning not in ("sync", "async"):
            raise ValueError(f"benchmark.planning must be 'sync' or 'async', got {self.planning!r}")
        if self.plan_latency is not None and self.plan_latency < 0:
            raise ValueError(
                f"benchmark.plan_latency must be null or seconds >= 0, got {self.plan_latency!r}"
            )
        if self.n_videos < 0:
            raise ValueError(f"benchmark.n_videos must be >= 0, got {self.n_videos!r}")


@dataclass
class EvalRunConfig:
    """Top level of ``configs/eval.yaml``; see the module docstring for ``agent``, ``checkpoint``, ``agents``.

    Attributes:
        out_dir: output folder (None: ``runs/eval/<label>-<benchmark>-<timestamp>``, or
            ``runs/eval/<benchmark>-<timestamp>/<label>/`` per agent with ``agents``).
        device: torch device of loaded checkpoints.
        report: write ``report.md`` and plots after evaluating.
        progress: show progress bars.
    """

    agent: Any = None
    checkpoint: str | None = None
    agents: list[str] = field(default_factory=list)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    out_dir: str | None = None
    device: str = "cpu"
    report: bool = True
    progress: bool = True


def register_configs() -> None:
    """Store ``eval_schema``, and the agents' schemas (group ``agent``, see :mod:`agents.hydra_configs`)."""
    register_agent_configs()
    ConfigStore.instance().store(name="eval_schema", node=EvalRunConfig)


@dataclass
class AgentEntry:
    """One agent to evaluate: ``label`` in reports, the agent, its checkpoint folder and training run, and the
    camera it was trained with (``width``/``height``/``hfov`` of the run's ``data`` config; None: unknown)."""

    label: str
    agent: Any
    checkpoint: Path | None = None
    run_dir: Path | None = None
    camera: dict[str, Any] | None = None


def explicit_agent_fields(overrides: list[str], cfg: DictConfig) -> dict[str, Any]:
    """``{field: value}`` of the ``agent.<field>=...`` among command-line ``overrides`` (Hydra's task
    overrides), the values as composed into ``cfg.agent``; a nested key names its top-level field."""
    fields: dict[str, Any] = {}
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith("agent.") and cfg.agent is not None:
            name = key.split(".")[1]
            value = cfg.agent[name]
            fields[name] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return fields


def agent_entries(cfg: DictConfig, checkpoint_overrides: dict[str, Any] | None = None) -> list[AgentEntry]:
    """The agents ``cfg`` asks for (see the module docstring), with unique labels.

    Args:
        cfg: the composed eval config.
        checkpoint_overrides: fields replaced in the saved config of a checkpoint of agent ``cfg.agent.name``
            (:func:`explicit_agent_fields` of the command line).

    Raises:
        ValueError: nothing to evaluate, a trainable agent without checkpoint, or a name/checkpoint mismatch.
        FileNotFoundError: a path that is neither an agent name nor a checkpoint.
    """
    sources = list(cfg.agents) or [cfg.checkpoint or (cfg.agent.name if cfg.agent is not None else None)]
    if sources == [None]:
        raise ValueError("nothing to evaluate: give agent=NAME, checkpoint=PATH or agents=[NAME_OR_PATH,...]")
    entries = [_entry(str(s), cfg, checkpoint_overrides or {}) for s in sources]
    seen: dict[str, int] = {}
    for entry in entries:
        seen[entry.label] = seen.get(entry.label, 0) + 1
        entry.label += f"-{seen[entry.label]}" if seen[entry.label] > 1 else ""
    return entries


def _entry(source: str, cfg: DictConfig, checkpoint_overrides: dict[str, Any]) -> AgentEntry:
    node = cfg.agent
    if source in AGENTS and not Path(source).exists():
        if AGENTS.get(source).is_trainable:
            raise ValueError(
                f"agent {source!r} is trainable: evaluate a checkpoint of it with "
                "checkpoint=runs/<run>/checkpoints/last (its own saved config is used)"
            )
        overrides = OmegaConf.to_container(node) if node is not None and node.name == source else None
        return AgentEntry(source, make_agent(source, overrides))
    agent_dir = find_agent_dir(Path(source))
    saved = agent_name(agent_dir)
    if node is not None and not cfg.agents and node.name != saved:
        raise ValueError(f"agent={node.name} but {agent_dir} holds a {saved!r} agent")
    overrides = checkpoint_overrides if node is not None and node.name == saved else None
    agent = load_agent(agent_dir, device=cfg.device, overrides=overrides)
    if overrides:
        logger.info("%s: saved config with %s", agent_dir, overrides)
    checkpoint, run_dir = checkpoint_of(agent_dir)
    label = agent.name if run_dir is None else f"{agent.name}-{run_dir.name}-{checkpoint.name}"
    return AgentEntry(label, agent, checkpoint, run_dir, training_camera(checkpoint, run_dir))


def checkpoint_of(agent_dir: Path) -> tuple[Path, Path | None]:
    """``(checkpoint, run folder)`` of an agent folder: its checkpoint (the folder itself when it is not a
    checkpoint's ``agent/``) and the run holding it (None outside ``<run>/checkpoints/``)."""
    checkpoint = agent_dir.parent if agent_dir.name == "agent" else agent_dir
    return checkpoint, checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None


def agent_name(agent_dir: Path) -> str | None:
    """The registry name saved in an agent folder's ``config.json`` (None when it has none)."""
    meta = read_json(agent_dir / CONFIG_FILE, "an object with 'name', 'config' and 'vocab'")
    return meta.get("name") if isinstance(meta, dict) else None


def saved_run_config(checkpoint: Path, run_dir: Path | None) -> dict[str, Any] | None:
    """The run config a checkpoint was trained with (``training_state/config.yaml``, else
    ``<run>/config.yaml``) as a plain dict; None when there is none."""
    for path in (checkpoint / "training_state" / "config.yaml", (run_dir or checkpoint) / "config.yaml"):
        if path.is_file():
            return OmegaConf.to_container(OmegaConf.load(path))
    return None


def camera_of(run_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``width``/``height``/``hfov`` of a run config's ``data`` section; None when it has none."""
    data = (run_config or {}).get("data") or {}
    camera = {k: data[k] for k in ("width", "height", "hfov") if isinstance(data.get(k), (int, float))}
    return camera or None


def training_camera(checkpoint: Path, run_dir: Path | None) -> dict[str, Any] | None:
    """The camera of the checkpoint's saved run config (:func:`saved_run_config`, :func:`camera_of`)."""
    return camera_of(saved_run_config(checkpoint, run_dir))


def find_agent_dir(path: Path) -> Path:
    """The agent folder (``config.json`` + ``model.safetensors``) of an agent folder, a checkpoint, a run or
    its ``checkpoints/`` folder (``last``, else the highest step); symlinks resolved. The layout is read by
    :func:`agents.checkpoints.find_agent_dir`, which also verifies a checkpoint's agent files.

    Raises:
        FileNotFoundError: none found; the message names ``path``, the agent names and the accepted forms.
        agents.checkpoints.CheckpointError: the agent files are damaged; the message names the file.
    """
    from agents import checkpoints

    return checkpoints.find_agent_dir(path)


def build_benchmark(cfg: DictConfig) -> EpisodeBenchmark:
    """The benchmark of ``cfg.benchmark`` over ``cfg.data`` (validated through :class:`BenchmarkConfig`)."""
    bench = OmegaConf.to_object(cfg.benchmark)
    if not isinstance(bench, BenchmarkConfig):
        bench = BenchmarkConfig(**bench)
    options = dataclasses.asdict(bench)
    name, _ = options.pop("name"), options.pop("deterministic")
    return BENCHMARKS.get(name).build(cfg.data.dir, scenes_dir=cfg.data.scenes_dir, **options)


def output_dirs(cfg: DictConfig, labels: list[str]) -> tuple[Path, list[Path]]:
    """``(report folder, one evaluation folder per label)`` (see :class:`EvalRunConfig`.out_dir)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = [re.sub(r"[^A-Za-z0-9_.=-]+", "_", label) for label in labels]
    if len(labels) == 1 and not cfg.agents:
        out = Path(cfg.out_dir or f"runs/eval/{safe[0]}-{cfg.benchmark.name}-{stamp}")
        return out, [out]
    out = Path(cfg.out_dir or f"runs/eval/{cfg.benchmark.name}-{stamp}")
    return out, [out / s for s in safe]
