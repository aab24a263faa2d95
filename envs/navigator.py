"""The navigation hook: map queries a planner + follower agent may make about its own environment.

An agent that picks goals and lets a shortest-path follower walk to them (System 2 + ``ShortestPathFollower``,
the dual systems) declares ``requires_navigator = True``; :func:`envs.rollout.rollout` then adds
``obs["navigator"]``, a list of one :class:`Navigator` per environment, to the batch it hands ``act``. The
agent never reaches into the simulator: it asks the navigator for its pose, a camera's mounting, the nearest
navigable point and the follower's next action, all backed by the simulator's navigability grid and
:class:`envs.nav.follower.ShortestPathFollower`.
"""

from __future__ import annotations

import numpy as np

from envs.render import CameraSpec
from envs.sim import Simulator

#: Observation key of the per-environment navigators.
NAVIGATOR_KEY = "navigator"


class Navigator:
    """Navigation queries on one environment's current scene and agent.

    Args:
        sim: the environment's simulator (its current episode's scene).
    """

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def agent_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The agent's (3,) float32 position [x, y, z] (m, on the floor) and (4,) rotation [x, y, z, w]."""
        state = self._sim.get_agent_state()
        return state.position, state.rotation

    def camera(self, uuid: str) -> CameraSpec:
        """The mounted camera ``uuid`` (size, field of view, offset and pitch), e.g. to back-project pixels.

        Raises:
            KeyError: no such camera; the message lists the mounted ones.
        """
        for camera in self._sim.config.cameras:
            if camera.uuid == uuid:
                return camera
        names = [c.uuid for c in self._sim.config.cameras]
        raise KeyError(f"Navigator.camera: no camera {uuid!r} is mounted; mounted cameras: {names}")

    def snap(self, point) -> np.ndarray:
        """The navigable point nearest to ``point`` (3,) in x-z, on the floor: (3,) float32 metres."""
        p = np.asarray(point, np.float64).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f"Navigator.snap: point must be 3 finite numbers [x, y, z], got {p.tolist()}")
        return self._sim.grid.snap(p)

    def is_navigable(self, point) -> bool:
        """Whether the agent may stand at ``point`` (3,)."""
        return self._sim.is_navigable(point)

    def geodesic_distance(self, goal) -> float:
        """Walking distance (m) from the agent to ``goal`` (3,); inf when unreachable."""
        return self._sim.geodesic_distance(self._sim.get_agent_state().position, goal)

    def follower_action(self, goal, goal_radius: float = 0.25) -> int:
        """The shortest-path follower's next discrete action toward ``goal`` (3,): ``0 STOP`` within
        ``goal_radius`` metres (geodesic) or when unreachable, else ``1 MOVE_FORWARD``, ``2 TURN_LEFT`` or
        ``3 TURN_RIGHT`` (Habitat's ``ShortestPathFollower``)."""
        return self._sim.expert_action(np.asarray(goal, np.float64), goal_radius)
