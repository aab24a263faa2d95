"""Image-goal navigation: the goal is an RGB image rendered by the agent's first camera at the goal pose.

The goal pose is the episode goal position with the heading stored in ``goals[0].extra["rotation"]``
([x, y, z, w]); episodes without one face a heading derived from the episode id, so the goal image is fixed
per episode. Termination, success and SPL follow the System-1 protocol of :mod:`envs.tasks.pointnav` (GNM,
ViNT, NoMaD and NavDP are evaluated on it).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

from envs.nav.geometry import quaternion_from_yaw
from envs.tasks.pointnav import SYSTEM1_CONFIG, PointNavTask

if TYPE_CHECKING:
    from envs.sim import SimConfig, Simulator


def goal_rotation(episode) -> np.ndarray:
    """(4,) goal orientation: the stored one, or a fixed heading derived from the episode id."""
    rotation = episode.goals[0].extra.get("rotation") if episode.goals else None
    if rotation is not None:
        return np.asarray(rotation, dtype=np.float64)
    yaw = (zlib.crc32(episode.episode_id.encode()) % 3600) / 3600.0 * 2.0 * np.pi
    return quaternion_from_yaw(yaw)


class ImageNavTask(PointNavTask):
    """Image-goal navigation: ``imagegoal`` (H, W, 3) uint8 from the first camera at the goal pose."""

    name = "imagenav"
    default_config = SYSTEM1_CONFIG

    def observation_spaces(self, sim_config: SimConfig) -> dict[str, spaces.Space]:
        """``imagegoal`` only (no point goal, GPS or compass)."""
        cam = sim_config.cameras[0]
        return {"imagegoal": spaces.Box(0, 255, (cam.height, cam.width, 3), np.uint8)}

    def reset(self, sim: Simulator, episode, reference: np.ndarray | None = None) -> None:
        """Start the episode and render its goal image."""
        super().reset(sim, episode, reference)
        cam = sim.config.cameras[0]
        if "rgb" not in cam.modalities:
            raise ValueError("ImageNav needs an rgb modality on the first camera (SimConfig.cameras[0])")
        self._goal_image = sim.render_at(self.goal, goal_rotation(episode))["rgb"].copy()

    def observe(self, sim: Simulator) -> dict[str, np.ndarray]:
        """The goal image."""
        return {"imagegoal": self._goal_image.copy()}
