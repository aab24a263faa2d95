"""THE rollout loop: the only place where ``env.step`` is called.

Evaluation, DAgger collection (through hooks that relabel with the expert and mix actions) and the
benchmarks all run episodes through :func:`rollout`; the interactive viewer steps one episode at a time
through :class:`EpisodeRunner`, whose ``step`` is the loop body of :func:`rollout`. A policy is either an
agent (an object with ``reset(n_envs)`` and ``act(obs, deterministic) -> (B,) actions`` on batched
observations; a ``torch.nn.Module`` is put in eval mode and run under ``torch.inference_mode()``) or a plain
callable ``policy(obs) -> action`` on one observation. An agent that declares ``requires_expert`` gets
``obs["expert_action"]``; one that declares ``requires_navigator`` gets ``obs["navigator"]``, a list of one
:class:`envs.navigator.Navigator` per environment (map queries for a planner + follower).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from envs.fileio import atomic_path
from envs.navigator import NAVIGATOR_KEY, Navigator
from envs.visualize import compose_frame

logger = logging.getLogger(__name__)


@dataclass
class EpisodeResult:
    """What one episode did.

    Attributes:
        episode_id, scene_id: the episode.
        instruction: the instruction text ("" without one).
        actions: actions taken (discrete ids; waypoint actions as nested lists).
        positions: (T+1, 3) agent positions from the reset on; rotations (T+1, 4) [x, y, z, w].
        expert_actions: the expert's label at each step when a hook recorded them (ids, or (N, 3) waypoint
            arrays in waypoint mode), else empty.
        metrics: the task's measures at the end (``info["metrics"]``).
        total_reward: sum of rewards.
        video: path of the recorded video, or None.
        agent_stats: what the agent counted about its own acting in the episode (its ``episode_stats()``,
            e.g. the dual systems' System-1 plans and System-2 calls and their seconds); empty for agents
            without it.
    """

    episode_id: str
    scene_id: str
    instruction: str
    actions: list = field(default_factory=list)
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    rotations: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    expert_actions: list = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    total_reward: float = 0.0
    video: str | None = None
    agent_stats: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able record (the per-episode line of benchmark files; ``agent_stats`` only when there are
        any)."""
        out = {
            "episode_id": self.episode_id,
            "scene_id": self.scene_id,
            "instruction": self.instruction,
            "actions": self.actions,
            "metrics": self.metrics,
            "total_reward": self.total_reward,
            "positions": np.round(self.positions, 4).tolist(),
            "video": self.video,
        }
        if self.agent_stats:
            out["agent_stats"] = self.agent_stats
        return out


class RolloutHook:
    """Callbacks of :func:`rollout`; override what you need."""

    def on_episode_start(self, env: gym.Env, obs: dict, info: dict) -> None:
        """After ``env.reset``."""

    def choose_action(self, env: gym.Env, obs: dict, action: Any) -> Any:
        """Return the action to execute given the policy's ``action`` (DAgger mixes in the expert here)."""
        return action

    def on_step(
        self,
        env: gym.Env,
        obs: dict,
        action: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict,
    ) -> None:
        """After ``env.step``; ``obs`` is the observation the action was chosen from."""

    def on_episode_end(self, env: gym.Env, result: EpisodeResult) -> None:
        """When the episode is over."""


def batch_observation(obs: dict) -> dict:
    """One observation -> a batch of one: arrays get a leading axis, strings become one-element lists."""
    return {k: [v] if isinstance(v, str) else np.asarray(v)[None] for k, v in obs.items()}


class _Policy:
    """Adapts an agent or a callable to ``act(obs) -> action`` on one observation."""

    def __init__(self, policy: Any, deterministic: bool) -> None:
        self.policy, self.deterministic = policy, deterministic
        self.is_agent = hasattr(policy, "act")
        self.wants_expert = bool(getattr(policy, "requires_expert", False))
        self.wants_navigator = bool(getattr(policy, "requires_navigator", False))
        self.last_latency: float | None = None

    def reset(self) -> None:
        if self.is_agent and hasattr(self.policy, "reset"):
            self.policy.reset(1)

    def episode_stats(self) -> dict[str, float]:
        """The agent's ``episode_stats()`` (its counts since :meth:`reset`), {} without one."""
        stats = getattr(self.policy, "episode_stats", None) if self.is_agent else None
        return {k: float(v) for k, v in stats().items()} if stats is not None else {}

    def __call__(self, env: gym.Env, obs: dict) -> Any:
        if not self.is_agent:
            start = time.perf_counter()
            action = self.policy(obs)
            self.last_latency = time.perf_counter() - start
            return action
        batch = batch_observation(obs)
        if self.wants_expert:
            batch["expert_action"] = np.asarray(env.unwrapped.expert_action())[None]  # (1,) or (1, N, 3)
        if self.wants_navigator:
            batch[NAVIGATOR_KEY] = [Navigator(env.unwrapped.sim)]
        start = time.perf_counter()
        actions = self.policy.act(batch, deterministic=self.deterministic)
        self.last_latency = time.perf_counter() - start
        action = np.asarray(actions)[0]
        return int(action) if action.ndim == 0 else action

    @contextlib.contextmanager
    def evaluating(self):
        """Eval mode and inference mode for torch modules; restores the previous mode afterwards."""
        module = self.policy if hasattr(self.policy, "train") and hasattr(self.policy, "training") else None
        if module is None:
            yield
            return
        import torch

        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            module.train(was_training)


class EpisodeRunner:
    """One episode at a time, one step at a time: the loop body of :func:`rollout`, for callers that decide
    when to step (the interactive viewer).

    :meth:`step` takes the policy's action (or the one given), lets every hook's ``choose_action`` change it,
    calls ``env.step`` and the hooks' ``on_step``, and records the action, reward and pose; :meth:`finish`
    fills in the metrics, poses and video and calls ``on_episode_end``.

    Args:
        env: a NavGym environment (possibly wrapped).
        policy: an agent or a callable (see the module docstring), or None when every :meth:`step` is given
            its action.
        hooks: callbacks, run exactly as in :func:`rollout`.
        deterministic: passed to ``agent.act``.
    """

    def __init__(
        self, env: gym.Env, policy: Any = None, hooks: Sequence[RolloutHook] = (), deterministic: bool = True
    ) -> None:
        self.env, self.hooks = env, tuple(hooks)
        self.policy = None if policy is None else _Policy(policy, deterministic)
        self.result: EpisodeResult | None = None
        self.obs: dict = {}
        self.info: dict = {}
        self.terminated = self.truncated = False
        self._poses: list[tuple[np.ndarray, np.ndarray]] = []
        self._frames: list[np.ndarray] | None = None

    @property
    def done(self) -> bool:
        """Whether the episode ended (``terminated``: STOP or the goal; ``truncated``: the step limit)."""
        return self.terminated or self.truncated

    def reset(
        self, seed: int | None = None, options: dict | None = None, record_video: bool = False
    ) -> tuple[dict, dict]:
        """``env.reset(seed, options)``, then the policy's ``reset`` and the hooks' ``on_episode_start``;
        returns ``(obs, info)``. ``record_video`` keeps a frame per step for :meth:`finish`."""
        obs, info = self.env.reset(seed=seed, options=options)
        if self.policy is not None:
            self.policy.reset()
        base = self.env.unwrapped
        self.result = EpisodeResult(
            info["episode_id"], info["scene_id"], str(obs.get("instruction_text", ""))
        )
        for hook in self.hooks:
            hook.on_episode_start(self.env, obs, info)
        self.obs, self.info, self.terminated, self.truncated = obs, info, False, False
        self._poses = [_pose(base)]
        self._frames = [_frame(base, obs)] if record_video else None
        return obs, info

    def step(self, action: Any = None) -> tuple[dict, float, bool, bool, dict]:
        """One step with ``action`` (None: the policy's); returns what ``env.step`` returned.

        Raises:
            RuntimeError: before :meth:`reset` or after the episode ended.
            ValueError: no ``action`` and no policy.
        """
        if self.result is None or self.done:
            raise RuntimeError("EpisodeRunner.step: no episode running; call reset() first")
        if action is None:
            if self.policy is None:
                raise ValueError("EpisodeRunner.step: give an action (this runner has no policy)")
            action = self.policy(self.env, self.obs)
            report = getattr(self.env.unwrapped, "report_plan_latency", None)
            if report is not None and self.policy.last_latency is not None:
                report(self.policy.last_latency)  # the planner's time (asynchronous planning)
        for hook in self.hooks:
            action = hook.choose_action(self.env, self.obs, action)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        for hook in self.hooks:
            hook.on_step(self.env, self.obs, action, reward, terminated, truncated, info)
        self.result.actions.append(action.tolist() if isinstance(action, np.ndarray) else int(action))
        self.result.total_reward += float(reward)
        self._poses.append(_pose(self.env.unwrapped))
        self.obs, self.info, self.terminated, self.truncated = next_obs, info, terminated, truncated
        if self._frames is not None:
            self._frames.append(_frame(self.env.unwrapped, next_obs))
        return next_obs, reward, terminated, truncated, info

    def finish(self, video_dir: Path | None = None) -> EpisodeResult:
        """The episode's result: final metrics, poses, the video (into ``video_dir`` when frames were
        recorded); calls the hooks' ``on_episode_end``."""
        result = self.result
        if result is None:
            raise RuntimeError("EpisodeRunner.finish: no episode; call reset() first")
        result.metrics = dict(self.info.get("metrics", {}))
        result.positions = np.array([p for p, _ in self._poses], np.float32)
        result.rotations = np.array([r for _, r in self._poses], np.float32)
        if self.policy is not None:
            result.agent_stats = self.policy.episode_stats()
        if video_dir is not None and self._frames is not None:
            result.video = str(write_video(self._frames, video_dir / f"episode_{result.episode_id}.mp4"))
        for hook in self.hooks:
            hook.on_episode_end(self.env, result)
        return result


def rollout(
    env: gym.Env,
    policy: Any,
    n_episodes: int | None = None,
    *,
    seed: int | None = None,
    episode_ids: Sequence[str] | None = None,
    hooks: Sequence[RolloutHook] = (),
    deterministic: bool = True,
    video_dir: str | Path | None = None,
    n_videos: int = 0,
    progress: bool = False,
    desc: str = "rollout",
) -> list[EpisodeResult]:
    """Run whole episodes.

    Args:
        env: a NavGym environment (possibly wrapped).
        policy: an agent or a callable, see the module docstring.
        n_episodes: number of episodes (when ``episode_ids`` is None).
        seed: seeds the first ``env.reset`` (the episode order and any randomness of the env).
        episode_ids: run exactly these episodes, in order.
        hooks: callbacks (expert labels, DAgger mixing, recording).
        deterministic: passed to ``agent.act``.
        video_dir: where to write MP4 videos (RGB | depth | top-down map + instruction caption).
        n_videos: how many of the first episodes to record.
        progress: show a progress bar.
        desc: progress bar label.

    Returns:
        One :class:`EpisodeResult` per episode, in order.
    """
    if episode_ids is None and n_episodes is None:
        raise ValueError("rollout needs n_episodes or episode_ids")
    plan: list[dict | None] = (
        [{"episode_id": e} for e in episode_ids] if episode_ids is not None else [None] * int(n_episodes)
    )
    runner = EpisodeRunner(env, policy, hooks, deterministic)
    results = []
    with runner.policy.evaluating():
        for k, options in enumerate(tqdm(plan, desc=desc, disable=not progress, leave=False)):
            record = video_dir is not None and k < n_videos
            runner.reset(seed if k == 0 else None, options, record_video=record)
            while not runner.done:
                runner.step()
            results.append(runner.finish(Path(video_dir) if record else None))
    return results


def _pose(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    state = env.sim.get_agent_state()
    return state.position.copy(), state.rotation.copy()


def _frame(env: gym.Env, obs: dict) -> np.ndarray:
    return compose_frame(env.sim, obs, env.task)


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: int = 8) -> Path:
    """Write frames as an H.264 MP4 atomically (a temporary file renamed into place).

    Frames are padded to even sizes (H.264 needs them).
    """
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h = max(f.shape[0] for f in frames) + max(f.shape[0] for f in frames) % 2
    w = max(f.shape[1] for f in frames) + max(f.shape[1] for f in frames) % 2
    with atomic_path(path, keep_suffix=True) as tmp:
        with imageio.get_writer(
            tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1, quality=7
        ) as writer:
            for f in frames:
                canvas = np.full((h, w, 3), 255, np.uint8)
                canvas[: f.shape[0], : f.shape[1]] = f
                writer.append_data(canvas)
    return path
