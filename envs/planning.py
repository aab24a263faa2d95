"""Asynchronous planning, as NavDP's System-1 benchmark measures planners: the robot keeps moving while the
planner thinks.

In NavDP's benchmark a planner thread calls the method's server continuously while the control loop tracks the
latest plan; a slow planner therefore acts on old observations and leaves the robot on stale plans for longer.
:class:`AsyncPlanner` reproduces this on the simulated clock, one planner call per environment step:

1. the observation the planner sees is taken at the pose ``P`` at time ``t``;
2. the planner takes ``latency`` seconds (measured by the rollout, or fixed for reproducible runs); meanwhile
   the robot keeps tracking the previous plan, so the clock advances to ``t + latency``;
3. the new plan, expressed in the frame of ``P``, is anchored in the world at ``P`` and replaces the old one;
4. the robot tracks it for ``period`` seconds (NavDP's planner loop sleeps 0.1 s between calls) and the next
   observation is taken.

**Tracker**: pure pursuit over the plan's waypoints at the simulator's control period and speed limits
(``SimConfig.max_linear_speed`` / ``max_angular_speed``): each tick turns toward the first waypoint not yet
reached (within ``waypoint_tolerance``) and drives when the heading error is below 30°, sliding along
obstacles (:meth:`envs.sim.Simulator.control_tick`). NavDP tracks with an MPC (horizon 15, 0.1 s); pure
pursuit needs no solver and follows the same plans within the same limits. When the plan is exhausted the
robot stands still.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.sim import Simulator


@dataclass
class TrackResult:
    """What tracking did over a span of simulated time: seconds, ticks, metres driven, any collision."""

    seconds: float = 0.0
    ticks: int = 0
    distance: float = 0.0
    collided: bool = False

    def add(self, other: TrackResult) -> None:
        """Accumulate ``other`` into this result."""
        self.seconds += other.seconds
        self.ticks += other.ticks
        self.distance += other.distance
        self.collided |= other.collided


class PlanTracker:
    """Follows a plan anchored in the world, one control tick at a time.

    Args:
        sim: the simulator whose agent moves.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.targets: list[tuple[np.ndarray, float]] = []

    def set_plan(self, waypoints, position, yaw: float) -> None:
        """Replace the plan by ``waypoints`` (N, 3) ``(dx forward m, dy left m, dyaw rad)`` given in the frame
        of the pose (``position``, ``yaw``) where the planner's observation was taken."""
        wps = np.asarray(waypoints, dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(wps)):
            raise ValueError("PlanTracker.set_plan: waypoints must be finite (N, 3) (dx, dy, dyaw)")
        c, s = math.cos(yaw), math.sin(yaw)
        forward, left = np.array([-s, 0.0, -c]), np.array([-c, 0.0, s])
        origin = np.asarray(position, dtype=np.float64)
        self.targets = [(origin + dx * forward + dy * left, yaw + dyaw) for dx, dy, dyaw in wps]

    def advance(self, seconds: float) -> TrackResult:
        """Track the plan for ``seconds`` of simulated time (whole control ticks, at least one when > 0)."""
        period = self.sim.config.control_period
        n_ticks = math.ceil(seconds / period - 1e-9) if seconds > 0 else 0
        out = TrackResult(seconds=n_ticks * period, ticks=n_ticks)
        for _ in range(n_ticks):
            if not self.targets:
                continue
            before = self.sim.get_agent_state().position
            target, target_yaw = self.targets[0]
            reached, _ = self.sim.control_tick(target, target_yaw if len(self.targets) == 1 else None)
            out.collided |= self.sim.collided
            out.distance += float(np.linalg.norm(self.sim.get_agent_state().position - before))
            if reached:
                self.targets.pop(0)
        return out


class AsyncPlanner:
    """The asynchronous protocol for one environment (see the module docstring).

    Args:
        sim: the simulator.
        latency: fixed planner latency in seconds, or None to use the latency reported for each call
            (:meth:`report_latency`, measured by the rollout around the agent's ``act``).
        period: seconds of tracking between the arrival of a plan and the next observation (NavDP: 0.1).
    """

    def __init__(self, sim: Simulator, latency: float | None = None, period: float = 0.1) -> None:
        if latency is not None and not (math.isfinite(latency) and latency >= 0):
            raise ValueError(f"plan latency must be None (measured) or seconds >= 0, got {latency!r}")
        if not (math.isfinite(period) and period > 0):
            raise ValueError(f"plan period must be > 0 seconds, got {period!r}")
        self.tracker = PlanTracker(sim)
        self.sim, self.latency, self.period = sim, latency, period
        self.reported: float | None = None
        self.latencies: list[float] = []
        self.clock = 0.0
        self._observed_at = self._pose()

    def _pose(self) -> tuple[np.ndarray, float]:
        state = self.sim.get_agent_state()
        return state.position.astype(np.float64), state.yaw

    def reset(self) -> None:
        """A new episode: no plan, clock at 0, the observation pose is the start pose."""
        self.tracker.targets = []
        self.reported, self.latencies, self.clock = None, [], 0.0
        self._observed_at = self._pose()

    def report_latency(self, seconds: float) -> None:
        """The measured duration of the planner call whose plan arrives next."""
        self.reported = float(seconds)

    def step(self, waypoints) -> TrackResult:
        """A plan arrives: track the old plan for the latency, switch, track the new one for ``period``."""
        latency = self.latency if self.latency is not None else (self.reported or 0.0)
        self.reported = None
        self.latencies.append(latency)
        result = self.tracker.advance(latency)
        self.tracker.set_plan(waypoints, *self._observed_at)
        result.add(self.tracker.advance(self.period))
        self.clock += result.seconds
        self._observed_at = self._pose()
        return result
