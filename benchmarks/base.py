"""The generic episode benchmark and the benchmark registry.

One benchmark is one split of one dataset and a fixed episode list (the split's episodes in file order, or an
explicit ``episode_ids`` list, or the first ``n_episodes``) plus a seed, so numbers compare across agents.
Episodes run through :func:`envs.rollout.rollout` (the one rollout loop). Under ``torch.distributed`` each
rank runs ``episode_list[rank::world]`` and the records are gathered on every rank with
``all_gather_object``; rank 0 writes the files.

The environment is built from the agent's declarations (:mod:`agents.contract`): its task must be one the
agent accepts, the action mode and waypoint count are the agent's, and the agent's extra cameras (a look-down
camera) are mounted beside the main one.

Files written to ``out_dir`` (each atomically: a temporary file renamed into place):

- ``episodes.jsonl``: one JSON object per episode, in episode-list order, with ``episode_id``, ``scene_id``,
  ``instruction``, ``actions``, ``metrics`` (the task's measures, see :mod:`envs.tasks.measures`),
  ``termination`` (``stop``, ``arrival``, ``stuck`` or ``timeout``), ``reference_length`` (metres along the
  reference path), ``geodesic_distance`` (start-goal, metres), ``positions`` ((T+1, 3) metres),
  ``total_reward``, ``video`` (a path or null) and, for an agent that counts its own acting
  (``episode_stats()``: the dual systems' System-1 plans and System-2 calls and their seconds),
  ``agent_stats``.
- ``summary.json``: ``benchmark``, ``task``, ``agent``, ``label``, ``agent_config`` (the agent's config as
  it acted, command-line overrides included; null for a bare policy), ``checkpoint``, ``split``, ``dataset``,
  ``dataset_digest`` (and ``dataset_mismatch`` when the checkpoint was trained on other data, see
  :mod:`benchmarks.provenance`), ``seed``, ``count``, ``episode_ids``, ``metrics`` (the mean of every
  per-episode metric, non-finite navigation errors dropped as in :func:`envs.tasks.measures.aggregate`),
  ``wall_time_s``, ``total_steps``, ``steps_per_s``, ``camera``, ``world_size`` and, when the episodes have
  any, ``agent_stats`` (each count summed over the episodes).
- ``videos/episode_<id>.mp4`` for the first ``n_videos`` episodes (RGB | depth | top-down map + caption).

``BENCHMARKS`` maps names (``vln_val_seen``, ``vln_val_unseen``, ``vln_test``, ``system1_pointnav``,
``system1_imagenav``, ``system1_explore``) to :class:`BenchmarkSpec` s.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agents.contract import AgentInterface, agent_sim_config, interface_of
from agents.registry import Registry
from benchmarks.provenance import dataset_fields
from envs.datasets.r2r import R2RDataset, load_episodes
from envs.env import NavEnv
from envs.fileio import atomic_write
from envs.rollout import EpisodeResult, RolloutHook, rollout
from envs.tasks import measures

logger = logging.getLogger(__name__)

#: Camera side in pixels for agents that do not say which size they want.
DEFAULT_CAMERA_SIZE = 64


@dataclass(frozen=True)
class BenchmarkSpec:
    """A registered benchmark: which class runs it, on which task and split.

    Attributes:
        name: registry key (= the ``configs/benchmark/<name>.yaml`` file name).
        benchmark_class: ``"module:Class"`` of an :class:`EpisodeBenchmark` subclass.
        split: the dataset split it evaluates by default.
        task: the environment task (``vln``, ``pointnav``, ``imagenav``, ``explore``).
        description: one line for listings and reports.
    """

    name: str
    benchmark_class: str
    split: str
    task: str
    description: str

    def build(self, data_dir: str | Path, **options: Any) -> EpisodeBenchmark:
        """The benchmark over ``data_dir/<split>`` (``options`` are :class:`EpisodeBenchmark` arguments;
        ``split`` among them replaces the default)."""
        module, cls_name = self.benchmark_class.split(":")
        cls = getattr(importlib.import_module(module), cls_name)
        split = options.pop("split", None) or self.split
        return cls(Path(data_dir) / split, split=split, name=self.name, task=self.task, **options)


BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")


def _register(spec: BenchmarkSpec) -> None:
    BENCHMARKS.register(spec.name)(spec)


for _split in ("val_seen", "val_unseen", "test"):
    _register(
        BenchmarkSpec(f"vln_{_split}", "benchmarks.vln:VLNBenchmark", _split, "vln", f"R2R-CE {_split}")
    )
for _task in ("pointnav", "imagenav", "explore"):
    _register(
        BenchmarkSpec(
            f"system1_{_task}",
            "benchmarks.system1:System1Benchmark",
            "val_unseen",
            _task,
            f"NavDP System-1 {_task} protocol on the split's start/goal pairs",
        )
    )


def agent_camera_size(agent: Any, default: int = DEFAULT_CAMERA_SIZE) -> int:
    """Square camera side (pixels) an agent wants: its main camera's declared width, else the larger of its
    config's ``rgb_size`` / ``depth_size``, else ``default``."""
    declared = interface_of(agent).cameras[0].width
    if declared:
        return int(declared)
    config = getattr(agent, "config", None)
    sizes = [getattr(config, key, None) for key in ("rgb_size", "depth_size")]
    sizes = [int(s) for s in sizes if isinstance(s, int) and s > 0]
    return max(sizes) if sizes else int(default)


def agent_label(agent: Any) -> str:
    """The agent's registry name (``agent.name``), else its class name."""
    return str(getattr(agent, "name", None) or type(agent).__name__)


def distributed_context() -> tuple[int, int, Any]:
    """``(rank, world_size, torch.distributed or None)``; ``(0, 1, None)`` when no process group is up."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dist
    return 0, 1, None


class TerminationHook(RolloutHook):
    """Records why each episode ended: ``stop``, ``arrival``, ``stuck`` or ``timeout``."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def on_step(self, env, obs, action, reward, terminated, truncated, info) -> None:
        """Classify the end of the episode from the task's state."""
        if not (terminated or truncated):
            return
        task = env.unwrapped.task
        if truncated:
            reason = "timeout"
        elif task.stopped:
            reason = "stop"
        elif (
            task.config.arrival_distance > 0
            and task.goal is not None
            and (task.euclidean_to_goal() < task.config.arrival_distance)
        ):
            reason = "arrival"
        else:
            reason = "stuck"
        self.reasons[info["episode_id"]] = reason


class EpisodeBenchmark:
    """An agent over a fixed episode list of one split; see the module docstring for the files.

    Args:
        episodes: a split folder or episode file (R2R-CE layout), or a loaded :class:`R2RDataset`.
        scenes_dir: folder the scene ids are relative to (default: ``scenes`` beside the split folder).
        name: benchmark name written to the summary.
        task: environment task (subclasses fix which are allowed).
        split: split name for the summary (default: the split folder's name).
        episode_ids: run exactly these episodes, in this order.
        n_episodes: run the first ``n_episodes`` of the list (all when None).
        seed: seeds the environment's first reset.
        width, height: camera size in pixels; None: the agent's own size (:func:`agent_camera_size`).
        hfov: camera horizontal field of view, degrees.
        max_episode_steps: step limit (None: the task's protocol default).
        n_videos: how many of the first episodes to record as MP4.
        planning, plan_latency, time_limit: asynchronous planning (System-1 benchmarks only; see
            :mod:`envs.planning`).
    """

    tasks: ClassVar[tuple[str, ...]] = ("vln",)
    #: Metres above the floor of the camera of an agent that declares no height (None: the simulator's).
    camera_height: ClassVar[float | None] = None

    def __init__(
        self,
        episodes: str | Path | R2RDataset,
        *,
        scenes_dir: str | Path | None = None,
        name: str | None = None,
        task: str | None = None,
        split: str | None = None,
        episode_ids: Sequence[str] | None = None,
        n_episodes: int | None = None,
        seed: int = 0,
        width: int | None = None,
        height: int | None = None,
        hfov: float = 90.0,
        max_episode_steps: int | None = None,
        n_videos: int = 0,
        planning: str = "sync",
        plan_latency: float | None = None,
        time_limit: float = 120.0,
    ) -> None:
        self.task = task or self.tasks[0]
        if planning != "sync" and self.task == "vln":
            raise ValueError(
                f"{type(self).__name__}: planning={planning!r} applies to System-1 benchmarks only"
            )
        self.planning, self.plan_latency, self.time_limit = planning, plan_latency, float(time_limit)
        if self.task not in self.tasks:
            raise ValueError(f"{type(self).__name__}: task must be one of {self.tasks}, got {self.task!r}")
        self.dataset = _load(episodes, scenes_dir)
        self.split = split or Path(str(self.dataset.source)).parent.name
        self.name = name or f"{self.task}_{self.split}"
        self.episode_ids = select_episodes(self.dataset, episode_ids, n_episodes)
        self._episodes = self.dataset.by_id()
        self.seed, self.width, self.height, self.hfov = int(seed), width, height, float(hfov)
        self.max_episode_steps, self.n_videos = max_episode_steps, int(n_videos)
        self._env: NavEnv | None = None
        self._env_key: tuple | None = None

    # ------------------------------------------------------------------ environment
    def env_kwargs(self, agent: Any, camera: dict[str, Any] | None = None) -> dict[str, Any]:
        """NavEnv arguments for ``agent`` from its declarations (see :meth:`run` for ``camera``).

        Raises:
            ValueError: the agent does not accept this benchmark's task (the message names both).
        """
        interface = self.interface(agent)
        camera, side = camera or {}, agent_camera_size(agent)
        width = int(self.width or camera.get("width") or side)
        height = int(self.height or camera.get("height") or side)
        hfov = float(camera.get("hfov") or self.hfov)
        kwargs: dict[str, Any] = {
            "width": width,
            "height": height,
            "hfov": hfov,
            "max_episode_steps": self.max_episode_steps,
            "action_mode": interface.action_mode,
            "n_waypoints": max(interface.n_waypoints, 1),
        }
        sim_config = agent_sim_config(interface, width, height, hfov, self.camera_height)
        if sim_config is not None:
            kwargs["sim_config"] = sim_config
        return kwargs

    def interface(self, agent: Any) -> AgentInterface:
        """The agent's declarations, checked against this benchmark's task."""
        interface = interface_of(agent)
        interface.check_task(self.task, f"agent {agent_label(agent)!r} on benchmark {self.name!r}")
        return interface

    def env_for(self, agent: Any, camera: dict[str, Any] | None = None) -> NavEnv:
        """The environment for ``agent``, reused while the arguments stay the same (scenes stay loaded)."""
        kwargs = self.env_kwargs(agent, camera)
        key = tuple(sorted(kwargs.items(), key=lambda kv: kv[0]))
        if self._env is None or key != self._env_key:
            self.close()
            self._env = NavEnv(self.task, episodes=self.dataset, shuffle=False, **kwargs)
            self._env_key = key
        return self._env

    def close(self) -> None:
        """Release the environment."""
        if self._env is not None:
            self._env.close()
            self._env, self._env_key = None, None

    def hooks(self) -> list[RolloutHook]:
        """Rollout hooks of one run (the first must be a :class:`TerminationHook`)."""
        return [TerminationHook()]

    def record(self, result: EpisodeResult, termination: str) -> dict[str, Any]:
        """The per-episode JSON record of ``result`` (see the module docstring)."""
        episode = self._episodes[result.episode_id]
        out = result.to_json()
        out["termination"] = termination
        out["reference_length"] = (
            measures.path_length(episode.reference_path) if len(episode.reference_path) else 0.0
        )
        out["geodesic_distance"] = episode.info.get("geodesic_distance")
        return out

    # ------------------------------------------------------------------ running
    def run(
        self,
        agent: Any,
        out_dir: str | Path | None = None,
        *,
        label: str | None = None,
        checkpoint: str | None = None,
        deterministic: bool = True,
        video_dir: str | Path | None = None,
        progress: bool = False,
        camera: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run ``agent`` on every episode of the list.

        Args:
            agent: an agent (``reset``/``act``) or a callable ``policy(obs) -> action``.
            out_dir: where rank 0 writes ``episodes.jsonl``, ``summary.json`` and ``videos/`` (None: none).
            label: the agent's name in reports (default: its registry name).
            checkpoint: the checkpoint it was loaded from, recorded in the summary.
            deterministic: passed to ``agent.act``.
            video_dir: where videos go (default ``out_dir/videos``).
            progress: show a progress bar.
            camera: ``width``/``height``/``hfov`` the agent was trained with (its run's config); they apply
                where the benchmark leaves the size open (None) and replace its ``hfov``.

        Returns:
            ``(summary, records)``, identical on every rank.
        """
        rank, world, dist = distributed_context()
        env = self.env_for(agent, camera)
        hooks = self.hooks()
        if video_dir is None and out_dir is not None:
            video_dir = Path(out_dir) / "videos"
        start = time.perf_counter()
        mine = self.episode_ids[rank::world]
        results = rollout(
            env,
            agent,
            episode_ids=mine,
            seed=self.seed,
            hooks=hooks,
            deterministic=deterministic,
            video_dir=video_dir if rank == 0 else None,
            n_videos=self.n_videos if rank == 0 else 0,
            progress=progress,
            desc=f"{self.name} {label or agent_label(agent)}",
        )
        records = [self.record(r, hooks[0].reasons.get(r.episode_id, "timeout")) for r in results]
        if dist is not None:
            shards: list[Any] = [None] * world
            dist.all_gather_object(shards, records)
            order = {e: i for i, e in enumerate(self.episode_ids)}
            records = sorted((r for shard in shards for r in shard), key=lambda r: order[r["episode_id"]])
        wall = time.perf_counter() - start
        summary = self.summarize(records, agent, label, checkpoint, wall, world, env)
        if out_dir is not None and rank == 0:
            write_results(out_dir, summary, records)
        return summary, records

    def summarize(self, records, agent, label, checkpoint, wall, world, env) -> dict[str, Any]:
        """The summary dict of a run (see the module docstring)."""
        steps = int(sum(len(r["actions"]) for r in records))
        cam = env.sim_config.cameras[0]
        return {
            "benchmark": self.name,
            "task": self.task,
            "agent": agent_label(agent),
            "label": label or agent_label(agent),
            "agent_config": agent_config(agent),
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "split": self.split,
            "dataset": str(self.dataset.source),
            **dataset_fields(self.dataset.source, checkpoint),
            "seed": self.seed,
            "count": len(records),
            "episode_ids": [r["episode_id"] for r in records],
            "metrics": measures.aggregate(r["metrics"] for r in records),
            "wall_time_s": round(wall, 3),
            "total_steps": steps,
            "steps_per_s": round(steps / wall, 2) if wall > 0 else None,
            "camera": {"width": cam.width, "height": cam.height, "hfov": cam.hfov},
            "world_size": world,
            **agent_stats_totals(records),
        }


def agent_stats_totals(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"agent_stats": {key: sum over the episodes}}`` of the records' ``agent_stats`` ({}: none has
    any)."""
    totals: dict[str, float] = {}
    for record in records:
        for key, value in record.get("agent_stats", {}).items():
            totals[key] = totals.get(key, 0.0) + float(value)
    return {"agent_stats": totals} if totals else {}


def agent_config(agent: Any) -> dict[str, Any] | None:
    """The agent's config as a dict (its acting settings included), or None for a bare policy."""
    config = getattr(agent, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return None
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def _load(episodes: str | Path | R2RDataset, scenes_dir: str | Path | None) -> R2RDataset:
    """The split's episodes; scenes default to ``scenes`` beside the split folder (the generator's layout)."""
    if isinstance(episodes, R2RDataset):
        if scenes_dir is not None:
            episodes.scenes_dir = Path(scenes_dir)
        return episodes
    path = Path(episodes)
    if scenes_dir is None:
        scenes_dir = (path.parent if path.is_dir() else path.parent.parent) / "scenes"
    return load_episodes(path, scenes_dir=scenes_dir)


def select_episodes(
    dataset: R2RDataset, episode_ids: Sequence[str] | None = None, n_episodes: int | None = None
) -> list[str]:
    """The fixed episode list: ``episode_ids`` (checked against the file) or the file's episodes in order,
    cut to the first ``n_episodes``.

    Raises:
        ValueError: an id is not in the episode file, ``n_episodes`` is not positive, or the list is empty.
    """
    known = [ep.episode_id for ep in dataset.episodes]
    if episode_ids is not None:
        ids = [str(e) for e in episode_ids]
        missing = sorted(set(ids).difference(known))
        if missing:
            raise ValueError(f"{dataset.source}: field 'episode_ids': no episodes with ids {missing[:10]}")
    else:
        ids = known
    if n_episodes is not None:
        if int(n_episodes) < 1:
            raise ValueError(f"n_episodes must be a positive int or None, got {n_episodes!r}")
        ids = ids[: int(n_episodes)]
    if not ids:
        raise ValueError(f"{dataset.source}: no episodes to evaluate")
    return ids


def write_results(out_dir: str | Path, summary: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    """Write ``episodes.jsonl`` then ``summary.json`` into ``out_dir``, each atomically."""
    out = Path(out_dir)
    atomic_write(out / "episodes.jsonl", "".join(json.dumps(_jsonable(r)) + "\n" for r in records).encode())
    atomic_write(out / "summary.json", (json.dumps(_jsonable(summary), indent=2) + "\n").encode())


def _jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as Python values and non-finite floats as null (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
