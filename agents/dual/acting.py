"""Acting of the dual systems: System 2 in a background thread, System 1 in the caller's, per environment.

- ``sync``: every step System 2 answers (the caller waits), then System 1 plans on its fresh latent.
- ``partial_async``: System 2 is asked (and waited for) only when there is no latent (an episode's start,
  after turns); afterwards it is re-queried in the background every ``sys2_max_forward_step`` System-1
  steps while System 1 keeps acting on the latest latent, re-planning every ``s1_replan_every`` steps and
  following its last plan (moved into the current frame by the ``odometry`` observation) in between.

A System-2 answer of STOP makes the action all-NaN (STOP in waypoint mode), arrows rotate in place, an
unusable answer rotates left once; a pixel goal gives the latent goal and the pixel-goal frame System 1 is
conditioned on. Plans are ``(dx, dy, dyaw)`` waypoints every 0.1 m, the first ``n_waypoints`` of which go to
the environment's waypoint controller.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.diffusion import EpisodeNoise
from agents.system2.acting import EnvMemory

#: Degrees of one turn arrow (System 2's discrete turn).
TURN_DEGREES = 15.0


@dataclass
class System2Result:
    """What System 2 answered about one frame.

    Attributes:
        kind: ``pixel``, ``turn``, ``stop``, or ``unknown``.
        latent: (Q, h) float32 latent goal (``pixel``), else None.
        goal_rgb, goal_depth: the frame the answer is about ((H, W, 3) uint8, (H, W, 1) metres).
        turns: signed turn count (left positive) for ``turn``.
        text: the generated answer; latency: seconds the query took.
    """

    kind: str
    latent: Any = None
    goal_rgb: np.ndarray | None = None
    goal_depth: np.ndarray | None = None
    turns: int = 0
    text: str = ""
    latency: float = 0.0


@dataclass
class EnvSlot:
    """Per-environment acting state (touched by the caller's thread only)."""

    frames: list[np.ndarray] = field(default_factory=list)
    result: System2Result | None = None
    pending: Future | None = None
    plan: np.ndarray | None = None  # (T, 3) waypoints in the odometry frame
    steps_since_s2: int = 0
    steps_since_plan: int = 0


def compose(odometry: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(T, 3) agent-frame ``(x, y, yaw)`` at odometry pose (3,) -> the same points in the odometry frame."""
    c, s = math.cos(odometry[2]), math.sin(odometry[2])
    x = odometry[0] + c * points[:, 0] - s * points[:, 1]
    y = odometry[1] + s * points[:, 0] + c * points[:, 1]
    return np.stack([x, y, points[:, 2] + odometry[2]], axis=1)


def relative(odometry: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`compose`: odometry-frame points (T, 3) -> the frame of the pose (3,)."""
    c, s = math.cos(odometry[2]), math.sin(odometry[2])
    dx, dy = points[:, 0] - odometry[0], points[:, 1] - odometry[1]
    yaw = (points[:, 2] - odometry[2] + math.pi) % (2 * math.pi) - math.pi
    return np.stack([c * dx + s * dy, -s * dx + c * dy, yaw], axis=1)


def remaining(points: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` waypoints after the one nearest the agent (the origin) of a plan (T, 3), last repeated."""
    nearest = int(np.argmin(np.hypot(points[:, 0], points[:, 1])))
    ahead = points[nearest + 1 :] if nearest + 1 < len(points) else points[-1:]
    return np.concatenate([ahead, np.repeat(ahead[-1:], max(0, n - len(ahead)), axis=0)])[:n]


def rotation(turns: int, n: int) -> np.ndarray:
    """(n, 3) waypoints rotating in place by ``turns`` × 15° (left positive)."""
    angle = math.radians(TURN_DEGREES) * turns
    return np.stack([np.zeros(n), np.zeros(n), angle * np.arange(1, n + 1) / n], axis=1)


class DualRuntime:
    """Schedules System 2 (one background thread) and System 1 for each environment; see the module
    docstring. ``agent`` provides ``query_system2(instruction, frames, depth, lookdown_rgb) ->
    System2Result`` (run in the thread) and ``plan_system1(result, rgb, depth, generator) -> (T, 3)``
    (``generator``: the environment's episode noise when acting deterministically, else None).

    Attributes:
        stats: ``s2_calls``, ``s1_plans`` and the lists ``s2_latency`` / ``s1_latency`` (s) since creation.
    """

    def __init__(self, agent: Any, n_envs: int) -> None:
        self.agent, self.config = agent, agent.config
        self.slots = [EnvSlot() for _ in range(n_envs)]
        self.noise = EpisodeNoise(self.config.sample_seed, n_envs)  # System 1's, in deterministic acting
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="system2")
        self.stats: dict[str, Any] = {"s2_calls": 0, "s1_plans": 0, "s2_latency": [], "s1_latency": []}

    def clear(self, env_ids: Any) -> None:
        """Forget the listed environments' episodes (a pending answer is dropped)."""
        for i in env_ids:
            self.slots[int(i)] = EnvSlot()
        self.noise.clear(env_ids)

    def close(self) -> None:
        """Stop the background thread (after its current query)."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, slot: EnvSlot, instruction: str, depth: np.ndarray, look: np.ndarray) -> Future:
        frames = list(slot.frames)  # a snapshot: the thread never sees later frames
        self.stats["s2_calls"] += 1
        slot.steps_since_s2 = 0
        return self.executor.submit(self.agent.query_system2, instruction, frames, depth, look)

    def _take(self, slot: EnvSlot, result: System2Result) -> None:
        slot.result, slot.pending, slot.plan = result, None, None
        self.stats["s2_latency"].append(result.latency)

    def step(self, i: int, obs: dict[str, Any], deterministic: bool) -> np.ndarray:
        """(n_waypoints, 3) float32 action of environment ``i`` from its single observation ``obs``
        (``rgb``, ``depth``, ``lookdown_rgb``, ``instruction_text``, optionally ``odometry``)."""
        c, slot, n = self.config, self.slots[i], self.agent.n_waypoints
        slot.frames.append(obs["rgb"])
        args = (str(obs["instruction_text"]), obs["depth"], obs["lookdown_rgb"])
        if c.infer_mode == "sync" or slot.result is None or slot.result.kind != "pixel":
            if slot.pending is not None:  # a query in flight answers about a recent frame: use it
                self._take(slot, slot.pending.result())
            else:
                self._take(slot, self._submit(slot, *args).result())
        elif slot.pending is not None and slot.pending.done():
            self._take(slot, slot.pending.result())
        elif slot.pending is None and slot.steps_since_s2 >= c.sys2_max_forward_step:
            slot.pending = self._submit(slot, *args)
        result = slot.result
        slot.steps_since_s2 += 1
        if result.kind == "stop":
            return np.full((n, 3), np.nan, np.float32)
        if result.kind != "pixel":
            slot.result = None  # ask again at the next step
            return rotation(result.turns if result.kind == "turn" else 1, n).astype(np.float32)
        generator = self.noise.generators([i])[0] if deterministic else None
        return self._follow(slot, obs, result, generator)

    def _follow(
        self, slot: EnvSlot, obs: dict[str, Any], result: System2Result, generator: torch.Generator | None
    ) -> np.ndarray:
        c, n = self.config, self.agent.n_waypoints
        odometry = obs.get("odometry")
        replan = (
            slot.plan is None or odometry is None or c.infer_mode == "sync"
            or slot.steps_since_plan >= c.s1_replan_every
        )  # fmt: skip
        if replan:
            start = time.perf_counter()
            points = self.agent.plan_system1(result, obs["rgb"], obs["depth"], generator)
            self.stats["s1_latency"].append(time.perf_counter() - start)
            self.stats["s1_plans"] += 1
            slot.steps_since_plan = 0
            slot.plan = None if odometry is None else compose(np.asarray(odometry, np.float64), points)
            action = points[:n]
        else:
            action = remaining(relative(np.asarray(odometry, np.float64), slot.plan), n)
        slot.steps_since_plan += 1
        reach = max(1.0, 0.5 * n)  # the environment's waypoint box (envs.env)
        return np.clip(action, [-reach, -reach, -math.pi], [reach, reach, math.pi]).astype(np.float32)


def new_memory(frames: list[np.ndarray]) -> EnvMemory:
    """System 2's per-query memory over a snapshot of an episode's frames."""
    return EnvMemory(frames=list(frames))
