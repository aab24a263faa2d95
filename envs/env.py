"""The Gymnasium environment: a task over a list of episodes, on the embedded simulator.

Registered ids (see :mod:`envs`): ``NavGym/VLN-v0``, ``NavGym/PointNav-v0``, ``NavGym/ImageNav-v0``,
``NavGym/Explore-v0``. ``gymnasium.make(id)`` with no argument runs on a small generated dataset (made once
and cached, see :mod:`envs.datasets.default`); ``episodes=`` (an R2R-CE file or split folder) and
``scenes_dir=`` select real data.

Observations (``Dict``): the cameras' ``rgb`` (H,W,3) uint8 and ``depth`` (H,W,1) float32 metres (z-depth
clipped to [min_depth, max_depth]), plus the task's own keys (``instruction``, ``instruction_text``,
``odometry``; ``pointgoal``, ``gps``, ``compass``; ``imagegoal``). Actions: ``Discrete(4)`` (0 STOP, 1
FORWARD, 2 LEFT, 3 RIGHT; 6 with ``look_actions``) or, with ``action_mode="waypoint"``, a ``Box``
(n_waypoints, 3) of (dx m forward, dy m left, dyaw rad) in the agent frame (|dx|, |dy| <= max(1, 0.5 *
n_waypoints) m), followed by the simulator's velocity-limited controller; an all-NaN waypoint action is STOP.

Episodes end with ``terminated=True`` when the task says so (STOP; System-1 arrival or stuck) and with
``truncated=True`` at the step limit. ``info`` always holds ``episode_id``, ``scene_id``, ``collided``; at the
end of an episode it also holds ``metrics`` (the task's measures, plus ``plan_latency`` (s), the mean latency
reported by :meth:`NavEnv.report_plan_latency`, when the rollout reported any).

**Asynchronous planning** (``planning="async"``, waypoint mode; :mod:`envs.planning`): each ``step`` is the
arrival of a plan that took ``plan_latency`` seconds (fixed, or as the rollout measured it around the agent's
``act``); the robot keeps tracking the previous plan meanwhile, then tracks the new one for ``plan_period``
seconds before the next observation. The episode is truncated after ``time_limit`` seconds of simulated time
(NavDP: 120 s) instead of at the step limit, so a slow planner gets fewer plans in the same time.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.datasets.r2r import R2RDataset, VLNEpisode, load_episodes
from envs.planning import AsyncPlanner
from envs.render import CameraSpec
from envs.sim import SimConfig, Simulator
from envs.tasks.base import NavTask, TaskConfig
from envs.tasks.explore import ExploreTask
from envs.tasks.imagenav import ImageNavTask
from envs.tasks.pointnav import PointNavTask
from envs.tasks.vln import VLNTask
from envs.visualize import compose_frame

logger = logging.getLogger(__name__)

TASKS: dict[str, type[NavTask]] = {t.name: t for t in (VLNTask, PointNavTask, ImageNavTask, ExploreTask)}


class NavEnv(gym.Env):
    """A navigation task over episodes in 3-D scenes.

    Args:
        task: ``vln``, ``pointnav``, ``imagenav`` or ``explore``.
        episodes: an R2R-CE episode file or split folder, an :class:`R2RDataset`, or None for the default
            generated dataset.
        scenes_dir: folder that episode ``scene_id`` paths are relative to (default: the dataset's ``scenes``
            folder beside its split folders).
        split: split of the default dataset (``train``, ``val_seen``, ``val_unseen``, ``test``).
        width, height, hfov: the camera (ignored when ``sim_config`` is given).
        sim_config: full simulator settings.
        task_config: task settings (default: the task's protocol defaults).
        action_mode: ``discrete`` or ``waypoint``.
        n_waypoints: waypoints per action in waypoint mode.
        look_actions: add LOOK_UP / LOOK_DOWN (actions 4, 5).
        max_episode_steps: overrides ``task_config.max_steps``.
        shuffle: visit episodes in a seeded random order (else file order).
        render_mode: None or ``rgb_array`` (RGB | depth | top-down map).
        scene_cache_size: simulators kept loaded at once.
        planning: ``sync`` (each plan is executed whole) or ``async`` (see the module docstring).
        plan_latency: async: fixed planner latency in seconds (None: the measured one).
        plan_period: async: seconds of tracking after each plan arrives.
        time_limit: async: simulated seconds per episode.
        measure_latency: add ``plan_latency`` to the metrics in synchronous mode too (it is wall-clock time,
            so the metrics are no longer reproducible bit for bit).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        task: str = "vln",
        episodes: str | Path | R2RDataset | None = None,
        scenes_dir: str | Path | None = None,
        split: str = "train",
        width: int = 128,
        height: int = 128,
        hfov: float = 90.0,
        sim_config: SimConfig | None = None,
        task_config: TaskConfig | None = None,
        action_mode: str = "discrete",
        n_waypoints: int = 4,
        look_actions: bool = False,
        max_episode_steps: int | None = None,
        shuffle: bool = True,
        render_mode: str | None = None,
        scene_cache_size: int = 4,
        planning: str = "sync",
        plan_latency: float | None = None,
        plan_period: float = 0.1,
        time_limit: float = 120.0,
        measure_latency: bool = False,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid tasks: {sorted(TASKS)}")
        if action_mode not in ("discrete", "waypoint"):
            raise ValueError(f"action_mode must be 'discrete' or 'waypoint', got {action_mode!r}")
        if planning not in ("sync", "async") or (planning == "async" and action_mode != "waypoint"):
            raise ValueError(
                f"planning must be 'sync', or 'async' with action_mode='waypoint'; got planning={planning!r} "
                f"with action_mode={action_mode!r}"
            )
        if not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 simulated seconds, got {time_limit!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.dataset = _load_dataset(episodes, scenes_dir, split)
        if not self.dataset.episodes:
            raise ValueError(f"{self.dataset.source}: no episodes")
        self.sim_config = sim_config or SimConfig(
            cameras=(CameraSpec(width=width, height=height, hfov=hfov),)
        )
        task_cls = TASKS[task]
        self.sim_config = _with_modalities(self.sim_config, task_cls.required_modalities)
        config = task_config or task_cls.default_config
        if max_episode_steps is not None:
            config = TaskConfig(**{**config.__dict__, "max_steps": int(max_episode_steps)})
        self.task = task_cls(config, vocab=self.dataset.vocab) if task_cls is VLNTask else task_cls(config)
        self.action_mode, self.render_mode, self.shuffle = action_mode, render_mode, shuffle
        self.n_waypoints = int(n_waypoints)
        self.observation_space = self._observation_space()
        if action_mode == "discrete":
            self.action_space = spaces.Discrete(6 if look_actions else 4)
        else:
            reach = max(1.0, 0.5 * n_waypoints)  # metres: room for a waypoint every 0.5 m
            lim = np.array([reach, reach, np.pi], np.float32)
            self.action_space = spaces.Box(-np.tile(lim, (n_waypoints, 1)), np.tile(lim, (n_waypoints, 1)))
        self._sims: collections.OrderedDict[str, Simulator] = collections.OrderedDict()
        self._cache_size = max(1, scene_cache_size)
        self._order: list[int] = []
        self._cursor = 0
        self._steps = 0
        self.sim: Simulator | None = None
        self.episode: VLNEpisode | None = None
        self._last_obs: dict[str, Any] | None = None
        self.planning, self.plan_latency, self.plan_period = planning, plan_latency, float(plan_period)
        self.time_limit, self.measure_latency = float(time_limit), bool(measure_latency)
        self.planner: AsyncPlanner | None = None
        self._latencies: list[float] = []

    # ------------------------------------------------------------------ spaces
    def _observation_space(self) -> spaces.Dict:
        obs: dict[str, spaces.Space] = {}
        for key, (cam, modality) in self.sim_config.observation_keys().items():
            shape = (cam.height, cam.width)
            if modality == "rgb":
                obs[key] = spaces.Box(0, 255, (*shape, 3), np.uint8)
            elif modality == "depth":
                obs[key] = spaces.Box(cam.min_depth, cam.max_depth, (*shape, 1), np.float32)
            else:
                obs[key] = spaces.Box(0, np.iinfo(np.int32).max, shape, np.int32)
        obs.update(self.task.observation_spaces(self.sim_config))
        return spaces.Dict(obs)

    # ------------------------------------------------------------------ episodes
    def _simulator(self, scene_id: str) -> Simulator:
        if scene_id in self._sims:
            self._sims.move_to_end(scene_id)
            return self._sims[scene_id]
        sim = Simulator(self.dataset.resolve_scene(scene_id), self.sim_config)
        self._sims[scene_id] = sim
        while len(self._sims) > self._cache_size:
            _, old = self._sims.popitem(last=False)
            old.close()
        return sim

    def _next_index(self, options: dict | None) -> int:
        options = options or {}
        if "episode_id" in options:
            ids = {ep.episode_id: i for i, ep in enumerate(self.dataset.episodes)}
            if str(options["episode_id"]) not in ids:
                raise KeyError(f"{self.dataset.source}: no episode with id {options['episode_id']!r}")
            return ids[str(options["episode_id"])]
        if "episode_index" in options:
            return int(options["episode_index"]) % len(self.dataset.episodes)
        if self._cursor >= len(self._order):
            n = len(self.dataset.episodes)
            self._order = list(self.np_random.permutation(n)) if self.shuffle else list(range(n))
            self._cursor = 0
        self._cursor += 1
        return int(self._order[self._cursor - 1])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start the next episode (seeded order), or the one named by ``options["episode_id"]`` /
        ``options["episode_index"]``.

        Raises:
            ValueError: the episode's start is not navigable, or its goal is unreachable from it; the message
                names the episode file, the episode id and the field.
        """
        super().reset(seed=seed)
        if seed is not None:
            self._order, self._cursor = [], 0
        ep = self.dataset.episodes[self._next_index(options)]
        self.episode, self.sim = ep, self._simulator(ep.scene_id)
        where = f"{self.dataset.source}: episode {ep.episode_id}"
        try:
            self.sim.set_agent_state(ep.start_position, ep.start_rotation)
        except ValueError as err:
            raise ValueError(f"{where}: field 'start_position'/'start_rotation': {err}") from None
        reference = self.dataset.reference_locations(ep)
        self.task.reset(self.sim, ep, reference)
        if self.task.has_goal and not np.isfinite(self.task.start_geodesic):
            raise ValueError(
                f"{where}: field 'goals': goal {np.round(ep.goal_position, 3).tolist()} is not "
                f"reachable from the start in scene {ep.scene_id!r} (another connected region)"
            )
        self._steps, self._latencies = 0, []
        if self.planning == "async":
            self.planner = AsyncPlanner(self.sim, self.plan_latency, self.plan_period)
        frames = self.sim.observe()
        self.task.on_frames(self.sim, frames)
        return self._observation(frames), self._info()

    def _observation(self, frames: dict[str, np.ndarray]) -> dict[str, Any]:
        obs = dict(frames)
        obs.update(self.task.observe(self.sim))
        self._last_obs = obs
        return obs

    def _info(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode.episode_id,
            "scene_id": self.episode.scene_id,
            "collided": bool(self.sim.collided),
        }

    # ------------------------------------------------------------------ stepping
    def step(self, action) -> tuple[dict, float, bool, bool, dict]:
        """Apply an action; see the module docstring for spaces and termination."""
        if self.sim is None or self.episode is None:
            raise RuntimeError("call reset() before step()")
        if self.action_mode == "discrete":
            a = int(action)
            if not self.action_space.contains(a):
                raise ValueError(f"action {action!r} is outside {self.action_space}")
            frames = self.sim.step(a)
        elif np.isnan(np.asarray(action, dtype=np.float64)).all():
            a = 0  # waypoint mode: an all-NaN action is STOP (a planner that decides the task is done)
            self.sim.collided = False
            frames = self.sim.observe()
        elif self.planner is not None:
            a = None
            self.sim.collided = self.planner.step(
                np.asarray(action, dtype=np.float64).reshape(-1, 3)
            ).collided
            frames = self.sim.observe()
        else:
            a = None
            frames = self.sim.move_along(np.asarray(action, dtype=np.float64).reshape(-1, 3))
        self._steps += 1
        terminated = self.task.update(self.sim, a)
        self.task.on_frames(self.sim, frames)
        if self.planner is not None:
            truncated = not terminated and self.planner.clock >= self.time_limit - 1e-9
        else:
            truncated = not terminated and self._steps >= self.task.config.max_steps
        info = self._info()
        if terminated or truncated:
            info["metrics"] = self.task.metrics()
            # Asynchronous: the latency the clock was advanced by (fixed or measured); else as measured.
            used = self.planner.latencies if self.planner is not None else self._latencies
            if used and (self.planner is not None or self.measure_latency):
                info["metrics"]["plan_latency"] = float(np.mean(used))
        return self._observation(frames), float(self.task.reward()), bool(terminated), bool(truncated), info

    def report_plan_latency(self, seconds: float) -> None:
        """The measured duration of the agent's call that produced the next action (the rollout reports it);
        the asynchronous protocol advances the clock by it unless ``plan_latency`` is fixed."""
        self._latencies.append(float(seconds))
        if self.planner is not None:
            self.planner.report_latency(seconds)

    def expert_action(self) -> int | np.ndarray:
        """The expert's action toward the goal, in the environment's action mode (imitation and DAgger
        labels).

        Discrete: the shortest-path follower's action id. Waypoint: the next ``n_waypoints`` points of the
        shortest path every ``forward_step`` metres, (n_waypoints, 3) float32 ``(dx, dy, dyaw)`` in the agent
        frame (:meth:`envs.tasks.base.NavTask.expert_waypoints`).
        """
        if self.sim is None:
            raise RuntimeError("call reset() before expert_action()")
        if self.action_mode == "waypoint":
            return self.task.expert_waypoints(self.sim, self.n_waypoints, self.sim.config.forward_step)
        return self.task.expert_action(self.sim)

    def metrics(self) -> dict[str, float]:
        """The current episode's measures so far."""
        return self.task.metrics()

    def render(self) -> np.ndarray | None:
        """``rgb_array``: RGB | depth | top-down map with the path, the reference and the goal."""
        if self.render_mode is None or self._last_obs is None:
            return None
        return compose_frame(self.sim, self._last_obs, self.task)

    def close(self) -> None:
        """Release every simulator."""
        for sim in self._sims.values():
            sim.close()
        self._sims.clear()
        self.sim = None


def _load_dataset(episodes, scenes_dir, split: str) -> R2RDataset:
    if isinstance(episodes, R2RDataset):
        if scenes_dir is not None:
            episodes.scenes_dir = Path(scenes_dir)
        return episodes
    if episodes is None:
        from envs.datasets.default import default_dataset_dir

        root = default_dataset_dir()
        return load_episodes(root / split, scenes_dir=scenes_dir or root / "scenes")
    path = Path(episodes)
    if scenes_dir is None:
        root = path.parent if path.is_dir() else path.parent.parent
        scenes_dir = root / "scenes"
    return load_episodes(path, scenes_dir=scenes_dir)


def _with_modalities(config: SimConfig, modalities: tuple[str, ...]) -> SimConfig:
    """``config`` with ``modalities`` added to its first camera (a task reads them whatever the agent asked
    for: exploration measures the area it sees in the depth image)."""
    main = config.cameras[0]
    missing = tuple(m for m in modalities if m not in main.modalities)
    if not missing:
        return config
    cameras = (dataclasses.replace(main, modalities=(*main.modalities, *missing)), *config.cameras[1:])
    return dataclasses.replace(config, cameras=cameras)
