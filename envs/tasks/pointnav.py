"""PointGoal navigation with the NavDP System-1 benchmark protocol (Cai et al. 2025), configurable.

Observations: ``pointgoal`` (distance m, angle rad — positive to the left) to the goal in the agent frame,
``gps`` (forward, right) metres from the start in the start frame and ``compass`` (yaw change since the start,
radians, left positive), as Habitat's PointGoal, EpisodicGPS and EpisodicCompass sensors, and, when the first
camera renders depth, ``pixelgoal`` (H, W) uint8: NavDP's pixel goal, 1 on a small box around the goal's
projection into the current image when the goal is in view and not occluded per the current depth, else all
zeros (:func:`envs.tasks.pixel_goal.pixel_goal_mask`).
Termination (NavDP): STOP, arrival within ``arrival_distance`` (1 m, Euclidean), or stuck (moved < 0.1 m over
``stuck_window`` steps); truncation at the step limit. Success = final Euclidean distance <
``success_distance`` (1.5 m) whatever ended the episode; SPL = success · clip(straight-line start→goal /
travelled, 0, 1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

from envs.nav.geometry import wrap_angle, yaw_from_quaternion
from envs.tasks import measures
from envs.tasks.base import NavTask, TaskConfig
from envs.tasks.pixel_goal import pixel_goal_mask

if TYPE_CHECKING:
    from envs.sim import SimConfig, Simulator

SYSTEM1_CONFIG = TaskConfig(
    max_steps=500,
    success_distance=1.5,
    expert_goal_radius=0.5,
    stuck_window=30,
    stuck_distance=0.1,
    arrival_distance=1.0,
)


def agent_frame(offset: np.ndarray, yaw: float) -> tuple[float, float]:
    """World x–z offset -> (forward, left) metres in the frame of an agent with heading ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    forward = -s * offset[0] - c * offset[2]
    left = -c * offset[0] + s * offset[2]
    return float(forward), float(left)


def polar_goal(position, yaw: float, goal) -> np.ndarray:
    """(2,) float32 ``(distance m, angle rad, left positive)`` of ``goal`` seen from the pose (``position``,
    ``yaw``): the ``pointgoal`` observation."""
    fwd, left = agent_frame(np.asarray(goal, np.float64) - np.asarray(position, np.float64), yaw)
    return np.array([math.hypot(fwd, left), math.atan2(left, fwd)], np.float32)


class PointNavTask(NavTask):
    """Point-goal navigation; see the module docstring for the protocol."""

    name = "pointnav"
    default_config = SYSTEM1_CONFIG

    def observation_spaces(self, sim_config: SimConfig) -> dict[str, spaces.Space]:
        """``pointgoal`` (2,), ``gps`` (2,), ``compass`` (1,), all float32, and ``pixelgoal`` (H, W) uint8
        when the first camera renders depth."""
        big = np.float32(1e4)
        cam = sim_config.cameras[0]
        pixel = {"pixelgoal": spaces.Box(0, 1, (cam.height, cam.width), np.uint8)}
        return {
            **(pixel if "depth" in cam.modalities else {}),
            "pointgoal": spaces.Box(
                np.array([0.0, -math.pi], np.float32), np.array([big, math.pi], np.float32)
            ),
            "gps": spaces.Box(-big, big, (2,), np.float32),
            "compass": spaces.Box(-math.pi, math.pi, (1,), np.float32),
        }

    def on_frames(self, sim: Simulator, frames: dict[str, np.ndarray]) -> None:
        """Keep the first camera's depth for the pixel goal."""
        self._depth = frames.get("depth")

    def observe(self, sim: Simulator) -> dict[str, np.ndarray]:
        """Goal polar coordinates, GPS and compass at the current pose (and the pixel goal)."""
        state = sim.get_agent_state()
        yaw = yaw_from_quaternion(state.rotation)
        gf, gl = agent_frame(state.position - self.start_position, self.start_yaw)
        depth = getattr(self, "_depth", None)
        pixel = {}
        if depth is not None:
            cam = sim.config.cameras[0]
            mask, _ = pixel_goal_mask(cam, state.position, state.rotation, self.goal, depth, state.tilt)
            pixel["pixelgoal"] = mask
        return {
            **pixel,
            "pointgoal": polar_goal(state.position, yaw, self.goal),
            "gps": np.array([gf, -gl], np.float32),
            "compass": np.array([wrap_angle(yaw - self.start_yaw)], np.float32),
        }

    def reward(self) -> float:
        """Decrease of geodesic distance to the goal over the last step, in metres."""
        d0, d1 = self.distances[-2], self.distances[-1]
        progress = d0 - d1 if np.isfinite(d0) and np.isfinite(d1) else 0.0
        return float(progress)

    def metrics(self) -> dict[str, float]:
        """System-1 measures: success, spl (Euclidean), navigation_error (Euclidean), geodesic
        distance_to_goal, path_length, steps, collisions."""
        d_end = self.euclidean_to_goal()
        sr = measures.euclidean_success(d_end, self.config.success_distance)
        d0 = self.start_position - self.goal
        out = {
            "success": sr,
            "spl": measures.euclidean_spl(sr, math.hypot(d0[0], d0[2]), measures.path_length(self.positions)),
            "navigation_error": d_end,
            "distance_to_goal": float(self.distances[-1]),
        }
        out.update(self.common_metrics())
        return out
