"""The task contract: what a navigation task adds to the simulator (observations, termination, measures,
expert).

A task is stateless across episodes except for what :meth:`NavTask.reset` sets. The environment owns the step
counter and truncation (the step limit); the task says when an episode is *terminated* (the agent called
STOP, or a System-1 arrival/stuck condition) and computes the episode's measures with the pure functions of
:mod:`envs.tasks.measures`.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from gymnasium import spaces

from envs.nav.geometry import agent_frame_deltas, resample_path, yaw_from_quaternion
from envs.tasks import measures

if TYPE_CHECKING:
    from envs.datasets.r2r import VLNEpisode
    from envs.sim import SimConfig, Simulator


@dataclass
class TaskConfig:
    """Settings shared by every task.

    Attributes:
        max_steps: actions per episode before truncation (500 in R2R-CE).
        success_distance: metres; success radius (VLN-CE: 3.0 geodesic; NavDP System-1: 1.5 Euclidean).
        expert_goal_radius: metres; the expert STOPs inside this geodesic radius (VLN-CE: 0.5).
        stuck_window: System-1 tasks terminate when the agent moved less than ``stuck_distance`` over this
        many
            steps (NavDP protocol); 0 disables.
        stuck_distance: metres, see ``stuck_window``.
        arrival_distance: metres; System-1 tasks terminate when the agent is this close (Euclidean) to the
        goal
            (NavDP: 1.0 m); 0 disables.
    """

    max_steps: int = 500
    success_distance: float = 3.0
    expert_goal_radius: float = 0.5
    stuck_window: int = 0
    stuck_distance: float = 0.1
    arrival_distance: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"TaskConfig.max_steps must be a positive int, got {self.max_steps!r}")
        for name in ("success_distance", "expert_goal_radius", "stuck_distance", "arrival_distance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"TaskConfig.{name} must be a non-negative number, got {value!r}")
        if not isinstance(self.stuck_window, int) or self.stuck_window < 0:
            raise ValueError(f"TaskConfig.stuck_window must be a non-negative int, got {self.stuck_window!r}")


class NavTask(abc.ABC):
    """Base class: tracks the path, goal distances and collisions of one episode.

    Subclasses set ``name``, add observations in :meth:`observation_spaces` / :meth:`observe`, and define
    :meth:`metrics`. ``info["metrics"]`` at the end of an episode is :meth:`metrics`.
    """

    name: ClassVar[str] = ""
    default_config: ClassVar[TaskConfig] = TaskConfig()
    has_goal: ClassVar[bool] = True
    #: Modalities the task reads from the first camera; the environment adds any the agent did not ask for.
    required_modalities: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TaskConfig | None = None) -> None:
        self.config = config or type(self).default_config
        self.episode: VLNEpisode | None = None

    # ------------------------------------------------------------------ contract
    def observation_spaces(self, sim_config: SimConfig) -> dict[str, spaces.Space]:
        """Spaces of the task's own observations (beside the cameras')."""
        return {}

    def observe(self, sim: Simulator) -> dict[str, np.ndarray | str]:
        """The task's observations at the current state."""
        return {}

    def on_frames(self, sim: Simulator, frames: dict[str, np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Called with the camera observations after every reset and step (coverage for exploration)."""

    @abc.abstractmethod
    def metrics(self) -> dict[str, float]:
        """The episode's measures so far (final once the episode ended)."""

    # ------------------------------------------------------------------ episode bookkeeping
    def reset(self, sim: Simulator, episode: VLNEpisode, reference: np.ndarray | None = None) -> None:
        """Start ``episode`` (the simulator is already placed at its start)."""
        self.episode = episode
        self.reference = episode.reference_path if reference is None else np.asarray(reference)
        state = sim.get_agent_state()
        self.start_yaw = yaw_from_quaternion(state.rotation)
        self.start_position = state.position.astype(np.float64)
        self.positions = [self.start_position.copy()]
        self.collisions: list[bool] = []
        self.actions: list[int] = []
        self.stopped = False
        self.goal = episode.goal_position if self.has_goal and episode.goals else None
        self.start_geodesic = (
            sim.geodesic_distance(self.start_position, self.goal) if self.goal is not None else 0.0
        )
        self.distances = [self.start_geodesic]

    def update(self, sim: Simulator, action: int | None) -> bool:
        """Record one step; returns whether the episode is terminated.

        Args:
            sim: the simulator after the step.
            action: the discrete action taken, or None for a waypoint action.
        """
        pos = sim.get_agent_state().position.astype(np.float64)
        self.positions.append(pos)
        self.collisions.append(bool(sim.collided))
        self.actions.append(-1 if action is None else int(action))
        if self.goal is not None:
            self.distances.append(sim.geodesic_distance(pos, self.goal))
        self.stopped = action == 0
        return self.stopped or self._arrived() or self._stuck()

    def _arrived(self) -> bool:
        d = self.config.arrival_distance
        return bool(d > 0 and self.goal is not None and self.euclidean_to_goal() < d)

    def _stuck(self) -> bool:
        w = self.config.stuck_window
        if w <= 0 or len(self.positions) <= w:
            return False
        return bool(np.linalg.norm(self.positions[-1] - self.positions[-1 - w]) < self.config.stuck_distance)

    def euclidean_to_goal(self) -> float:
        """Straight-line x–z distance from the agent to the goal (System-1 protocol)."""
        d = self.positions[-1] - self.goal
        return float(math.hypot(d[0], d[2]))

    def expert_action(self, sim: Simulator) -> int:
        """The shortest-path follower's action toward the goal (STOP inside ``expert_goal_radius``)."""
        if self.goal is None:
            raise ValueError(f"task {self.name!r} has no goal, so it has no expert")
        return sim.expert_action(self.goal, self.config.expert_goal_radius)

    def expert_waypoints(self, sim: Simulator, n_waypoints: int, spacing: float) -> np.ndarray:
        """The expert in waypoint form: the next ``n_waypoints`` points of the shortest path, every
        ``spacing``
        metres, as (n_waypoints, 3) float32 ``(dx, dy, dyaw)`` in the agent frame (the waypoint action).

        Each point's yaw is the heading of the path where it lies; points past the goal repeat it, so the
        label of an agent inside ``expert_goal_radius`` (or with an unreachable goal) is to stay put.
        """
        if self.goal is None:
            raise ValueError(f"task {self.name!r} has no goal, so it has no expert")
        state = sim.get_agent_state()
        yaw = yaw_from_quaternion(state.rotation)
        path = sim.shortest_path(state.position, self.goal)
        geodesic = self.distances[-1] if self.distances else float("inf")
        if len(path) < 2 or not geodesic > self.config.expert_goal_radius:
            return np.zeros((n_waypoints, 3), np.float32)
        points = resample_path(path, spacing, n_waypoints + 1)
        previous = np.vstack([path[0], points[:-1]])
        step = points - previous
        moving = np.hypot(step[:, 0], step[:, 2]) > 1e-6
        yaws = np.where(moving, np.arctan2(-step[:, 0], -step[:, 2]), np.nan)
        yaws = _carry_forward(yaws, yaw)
        return agent_frame_deltas(points[:n_waypoints], yaws[:n_waypoints], state.position, yaw)

    def common_metrics(self) -> dict[str, float]:
        """Path length, steps and collisions."""
        path = np.asarray(self.positions)
        return {
            "path_length": measures.path_length(path),
            "steps": float(len(self.actions)),
            "collisions": float(measures.collision_count(self.collisions)),
        }


def _carry_forward(values: np.ndarray, first: float) -> np.ndarray:
    """``values`` with each NaN replaced by the last finite value before it (``first`` at the start)."""
    out, last = values.copy(), first
    for i, v in enumerate(out):
        last = last if np.isnan(v) else v
        out[i] = last
    return out
