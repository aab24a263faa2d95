"""The shortest-path expert for discrete actions, with the semantics of Habitat's ``ShortestPathFollower``.

Actions: ``0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT``. The follower stops once the geodesic
distance to the goal is below ``goal_radius``; otherwise it aims at the first waypoint of the string-pulled
shortest path (:meth:`envs.nav.geodesic.GeodesicSolver.next_waypoint`), turns towards it while the heading
error exceeds half a turn, and moves forward once within half a turn. Turning does not move the agent, so the
target stays the same after a turn, and a turn never overshoots by more than half a turn: the follower cannot
oscillate between left and right.
"""

from __future__ import annotations

import math

from envs.nav.geodesic import GeodesicSolver
from envs.nav.geometry import wrap_angle, yaw_of_direction

STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3


class ShortestPathFollower:
    """Greedy geodesic follower over {STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT}.

    Args:
        solver: the geodesic solver of the scene's grid.
        goal_radius: STOP when the geodesic distance to the goal is below this (m).
        forward_step: length (m) of MOVE_FORWARD (part of the action contract; the choice ignores it).
        turn_angle: TURN_LEFT / TURN_RIGHT angle in degrees.
    """

    def __init__(
        self,
        solver: GeodesicSolver,
        goal_radius: float = 0.5,
        forward_step: float = 0.25,
        turn_angle: float = 15.0,
    ):
        for name, value in (
            ("goal_radius", goal_radius),
            ("forward_step", forward_step),
            ("turn_angle", turn_angle),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ShortestPathFollower.{name} must be a positive number, got {value!r}")
        self.solver = solver
        self.goal_radius = float(goal_radius)
        self.forward_step = float(forward_step)
        self.turn_angle = float(turn_angle)

    def next_action(self, position, yaw: float, goal) -> int:
        """The expert's action.

        Args:
            position: (3,) agent position [x, y, z] in metres.
            yaw: agent yaw in radians (0 looks along -z, positive turns left).
            goal: (3,) goal position in metres.

        Returns:
            0 STOP within ``goal_radius`` (geodesic) of the goal, or when the goal is unreachable; 2 TURN_LEFT
            or 3 TURN_RIGHT while the heading error to the next waypoint exceeds ``turn_angle / 2``; else 1
            MOVE_FORWARD.
        """
        if self.solver.geodesic_distance(position, goal) < self.goal_radius:
            return STOP
        here = self.solver.resolve(position)
        target = self.solver.next_waypoint(position, goal)
        if here is None or target is None:
            return STOP
        dx, dz = target - here
        if math.hypot(dx, dz) < 1e-9:
            return MOVE_FORWARD
        error = wrap_angle(yaw_of_direction(dx, dz) - yaw)
        if abs(error) <= math.radians(self.turn_angle) / 2:
            return MOVE_FORWARD
        return TURN_LEFT if error > 0 else TURN_RIGHT
