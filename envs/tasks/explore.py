"""Exploration without a goal (NavDP's no-goal task): cover as much floor as possible.

Explored area follows NavDP: floor points seen by the camera (depth back-projected to the world; points within
``floor_band`` metres above the floor) are accumulated in 0.1 m cells; the area is the number of cells ×
0.01 m². Termination: stuck (moved < 0.1 m over ``stuck_window`` steps) or STOP; truncation at the step limit.
Reward: newly explored area (m²) per step.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from envs.tasks import measures
from envs.tasks.base import NavTask, TaskConfig

if TYPE_CHECKING:
    from envs.sim import Simulator

EXPLORE_CONFIG = TaskConfig(max_steps=500, success_distance=0.0, stuck_window=30, stuck_distance=0.1)


class ExploreTask(NavTask):
    """No-goal exploration; ``info["metrics"]["explored_area"]`` in m².

    Args:
        config: task settings.
        cell_size: coverage cell in metres (NavDP: 0.1).
        floor_band: metres above the floor counted as floor when back-projecting depth.
    """

    name = "explore"
    default_config = EXPLORE_CONFIG
    has_goal = False

    def __init__(
        self, config: TaskConfig | None = None, cell_size: float = 0.1, floor_band: float = 0.1
    ) -> None:
        super().__init__(config)
        self.cell_size = cell_size
        self.floor_band = floor_band

    required_modalities = ("depth",)

    def reset(self, sim: Simulator, episode, reference: np.ndarray | None = None) -> None:
        """Start the episode with an empty coverage grid."""
        super().reset(sim, episode, reference)
        cam = sim.config.cameras[0]
        if "depth" not in cam.modalities:
            raise ValueError("Explore needs a depth modality on the first camera (SimConfig.cameras[0])")
        lo, hi = sim.scene.bounds()
        self._origin = lo[[0, 2]]
        shape = np.ceil((hi[[0, 2]] - lo[[0, 2]]) / self.cell_size).astype(int) + 1
        self._seen = np.zeros((shape[1], shape[0]), dtype=bool)
        self._area: list[float] = []

    def on_frames(self, sim: Simulator, frames: dict[str, np.ndarray]) -> None:
        """Add the floor the first camera sees in ``frames`` to the coverage grid."""
        state = sim.get_agent_state()
        cam = sim.config.cameras[0]
        cam = dataclasses.replace(cam, pitch=cam.pitch + state.tilt) if state.tilt else cam
        depth = frames["depth"][..., 0]
        fx, fy, cx, cy = cam.intrinsics()
        v, u = np.nonzero((depth > cam.min_depth) & (depth < cam.max_depth))
        z = depth[v, u]
        # Pinhole back-projection into the camera frame (x right, y up, looking along -z).
        pts = np.stack([(u + 0.5 - cx) * z / fx, -(v + 0.5 - cy) * z / fy, -z, np.ones_like(z)], axis=1)
        world = (cam.pose(state.position, state.rotation) @ pts.T).T[:, :3]
        floor = world[world[:, 1] < state.position[1] + self.floor_band]
        cells = np.floor((floor[:, [0, 2]] - self._origin) / self.cell_size).astype(int)
        ok = (cells >= 0).all(1) & (cells[:, 0] < self._seen.shape[1]) & (cells[:, 1] < self._seen.shape[0])
        self._seen[cells[ok, 1], cells[ok, 0]] = True
        self._area.append(measures.explored_area(self._seen, self.cell_size))

    def reward(self) -> float:
        """Newly explored area over the last step, m²."""
        return float(self._area[-1] - self._area[-2]) if len(self._area) > 1 else 0.0

    def metrics(self) -> dict[str, float]:
        """explored_area (m²), path_length, steps, collisions."""
        out = {"explored_area": float(self._area[-1]) if self._area else 0.0}
        out.update(self.common_metrics())
        return out
