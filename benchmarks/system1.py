"""The System-1 (visual navigation) benchmark: PointNav, ImageNav and no-goal exploration, NavDP protocol.

Follows the InternVLA-N1 System-1 benchmark of the NavDP repository (anchors Part A §5, Part B §3.1) on the
embedded simulator:

- **Episodes**: fixed start/goal pairs per scene, here the episodes of a dataset split (``start_position``,
  ``start_rotation``, first goal) in file order, optionally cut to ``n_episodes`` or an ``episode_ids`` list.
  The dataset generator samples them deterministically per scene from its seed, as NavDP's
  ``*_start_goal_pairs.npy`` files fix them. Exploration uses the starts and ignores the goals.
- **Termination** (the task's, :mod:`envs.tasks.pointnav`): STOP, arrival (Euclidean distance < 1 m), stuck
  (moved < 0.1 m over 30 steps) or the step limit (timeout).
- **Metrics** per episode: ``success`` (final Euclidean distance < 1.5 m whatever ended the episode),
  ``spl`` (success · clip(straight-line start-goal / travelled, 0, 1)), ``navigation_error`` (Euclidean, m),
  ``distance_to_goal`` (geodesic, m), ``path_length``, ``steps``, ``collisions`` (steps that slid along an
  obstacle), and from the benchmark ``stuck`` and ``timeout`` (0/1, so their means are the stuck and
  timeout rates); exploration reports ``explored_area`` (m², 0.1 m cells) instead of success and SPL.
- **Planning**: ``planning=sync`` (default, for debugging: one plan executed whole per step) or
  ``planning=async``, NavDP's protocol (:mod:`envs.planning`): the robot tracks the last plan while the
  planner runs, the simulated clock advances by the planner's measured latency (or ``plan_latency`` seconds,
  for reproducible runs), the episode ends after ``time_limit`` simulated seconds; a slow planner scores
  worse. Every run reports the mean ``plan_latency`` (s) of the agent's ``act``.
- **Differences from NavDP**: pure pursuit instead of an MPC tracker; the body and cameras are NavGym's (HFOV
  and size configurable); arrival, stuck and success radii are the task config's.

**Agents.** Anything :func:`envs.rollout.rollout` runs: an agent with ``reset(n_envs)`` and
``act(obs, deterministic)`` on batched observations. Built-in comparison policies that need no weights: the
``expert`` (shortest-path follower on the navigability grid; goal tasks only) and ``random``.

**How the learned System-1 baselines plug in.** Each is an agent in ``agents/baselines/<name>/``
(registered in ``AGENTS``, a config dataclass with ``name``, weights read by the agent from a local file named
in its config, never downloaded) that reads the observation keys of its task and declares its interface
(:mod:`agents.contract`: ``tasks``,
``action_mode``, ``n_waypoints``, ``cameras``):

- discrete agents (``DD-PPO``: depth + ``pointgoal`` (distance, angle)) return (B,) action ids, as VLN
  agents do, and may STOP;
- waypoint agents declare ``action_mode = "waypoint"`` and ``n_waypoints`` and return
  (B, n_waypoints, 3) ``(dx forward m, dy left m, dyaw rad)`` in the agent frame, which the simulator's
  velocity-limited controller follows: ``iPlanner`` / ``ViPlanner`` (depth [+ semantics] + ``pointgoal``,
  keypoints resampled to ``n_waypoints``), ``GNM`` / ``ViNT`` / ``NoMaD`` (``rgb`` context frames kept in
  the agent's per-env state + ``imagegoal``; no goal for exploration) and ``NavDP`` (RGB history + depth,
  any goal). As in NavDP, their episodes end by arrival, stuck or timeout (there is no STOP).

The benchmark then runs them unchanged: ``python benchmarks/run.py agent=<name> checkpoint=<dir>
benchmark=system1_pointnav``.
"""

from __future__ import annotations

from typing import Any

from agents.contract import SYSTEM1_CAMERA_HEIGHT
from benchmarks.base import EpisodeBenchmark, agent_label
from envs.env import NavEnv
from envs.rollout import EpisodeResult

#: Tasks of the System-1 benchmark.
SYSTEM1_TASKS = ("pointnav", "imagenav", "explore")
#: Per-episode measures of the goal tasks (the means of ``stuck`` / ``timeout`` are rates).
GOAL_METRICS = (
    "success",
    "spl",
    "navigation_error",
    "path_length",
    "steps",
    "collisions",
    "stuck",
    "timeout",
)
#: Per-episode measures of exploration.
EXPLORE_METRICS = ("explored_area", "path_length", "steps", "collisions", "stuck", "timeout")


class System1Benchmark(EpisodeBenchmark):
    """The System-1 benchmark on one task; arguments as :class:`benchmarks.base.EpisodeBenchmark`.

    The environment follows the agent's declarations: its action mode (``discrete`` or ``waypoint``), waypoint
    count and cameras; an agent that does not declare this task is refused. An agent that declares no camera
    height (the expert, random) looks from the System-1 robot's
    (:data:`agents.contract.SYSTEM1_CAMERA_HEIGHT`), so that what the camera measures (the explored area)
    compares across the table.
    """

    tasks = SYSTEM1_TASKS
    camera_height = SYSTEM1_CAMERA_HEIGHT

    def env_kwargs(self, agent: Any, camera: dict[str, Any] | None = None) -> dict[str, Any]:
        """The base arguments plus the planning protocol; plan latency is always measured and reported."""
        kwargs = super().env_kwargs(agent, camera)
        kwargs["measure_latency"] = True
        if self.planning == "async":
            if kwargs["action_mode"] != "waypoint":
                raise ValueError(
                    f"benchmark {self.name!r}: asynchronous planning tracks waypoint plans; agent "
                    f"{agent_label(agent)!r} acts with discrete actions"
                )
            kwargs.update(planning="async", plan_latency=self.plan_latency, time_limit=self.time_limit)
        return kwargs

    def env_for(self, agent: Any, camera: dict[str, Any] | None = None) -> NavEnv:
        """The environment; rejects the expert on exploration, which has no goal to follow."""
        if self.task == "explore" and agent_label(agent) == "expert":
            raise ValueError(
                f"benchmark {self.name!r}: the expert follows a shortest path to a goal and the explore "
                "task has none; use random or a learned exploration agent"
            )
        return super().env_for(agent, camera)

    def record(self, result: EpisodeResult, termination: str) -> dict[str, Any]:
        """The VLN record plus ``stuck`` / ``timeout`` flags in the metrics."""
        out = super().record(result, termination)
        out["metrics"]["stuck"] = float(termination == "stuck")
        out["metrics"]["timeout"] = float(termination == "timeout")
        return out
