"""Vision-and-language navigation with R2R-CE semantics (Krantz et al. 2020, VLN-CE).

Success = the agent called STOP within ``success_distance`` (3 m) geodesic of the goal; the step limit is 500;
SPL, oracle success, navigation error, nDTW and SDTW follow VLN-CE's measures exactly (see
:mod:`envs.tasks.measures`). The reward is the decrease of geodesic distance to the goal per step, plus
``success_reward`` on success (for reinforcement-learning users; imitation ignores it).
"""

from __future__ import annotations

import math
import string
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

from envs.datasets.vocab import MAX_INSTRUCTION_LENGTH, Vocabulary
from envs.nav.geometry import start_frame_odometry, yaw_from_quaternion
from envs.tasks import measures
from envs.tasks.base import NavTask, TaskConfig

if TYPE_CHECKING:
    from envs.sim import SimConfig, Simulator

#: Characters an instruction may contain (the ``instruction_text`` space's charset).
INSTRUCTION_CHARSET = frozenset(string.printable)
MAX_INSTRUCTION_CHARS = 4096
#: Metres bounding the odometry observation's x and y.
ODOMETRY_LIMIT = 1e4


class VLNTask(NavTask):
    """R2R-CE VLN: observations ``instruction`` (L,) int64 token ids (PAD 0), ``instruction_text`` and
    ``odometry`` (3,) float32 ``(x m forward, y m left, dyaw rad left positive)`` of the agent in the frame of
    the episode's start pose (an ideal wheel odometry / IMU, :func:`envs.nav.geometry.start_frame_odometry`).

    Args:
        config: task settings (R2R-CE defaults).
        vocab: the dataset's vocabulary; token ids come from the episode file when present, else from it.
        success_reward: reward added on success.
    """

    name = "vln"
    default_config = TaskConfig(max_steps=500, success_distance=3.0, expert_goal_radius=0.5)

    def __init__(
        self, config: TaskConfig | None = None, vocab: Vocabulary | None = None, success_reward: float = 2.5
    ) -> None:
        super().__init__(config)
        self.vocab = vocab
        self.success_reward = success_reward

    def observation_spaces(self, sim_config: SimConfig) -> dict[str, spaces.Space]:
        """``instruction``, ``instruction_text`` and ``odometry``."""
        n_vocab = len(self.vocab) if self.vocab is not None else 2**31 - 1
        limit = np.array([ODOMETRY_LIMIT, ODOMETRY_LIMIT, math.pi], np.float32)
        return {
            "instruction": spaces.Box(0, n_vocab - 1, (MAX_INSTRUCTION_LENGTH,), np.int64),
            "instruction_text": spaces.Text(MAX_INSTRUCTION_CHARS, min_length=0, charset=INSTRUCTION_CHARSET),
            "odometry": spaces.Box(-limit, limit, dtype=np.float32),
        }

    def observe(self, sim: Simulator) -> dict[str, np.ndarray | str]:
        """The episode's instruction as tokens (padded/truncated to 200) and text, and the odometry."""
        state = sim.get_agent_state()
        yaw = yaw_from_quaternion(state.rotation)
        odometry = start_frame_odometry(state.position, [yaw], self.start_position, self.start_yaw)[0]
        return {"instruction": self._tokens.copy(), "instruction_text": self._text, "odometry": odometry}

    def reset(self, sim: Simulator, episode, reference: np.ndarray | None = None) -> None:
        """Start the episode and prepare its instruction observations."""
        super().reset(sim, episode, reference)
        text = episode.instruction.instruction_text
        self._text = "".join(ch if ch in INSTRUCTION_CHARSET else " " for ch in text)[:MAX_INSTRUCTION_CHARS]
        tokens = episode.instruction.instruction_tokens
        if tokens is None:
            tokens = self.vocab.encode(text) if self.vocab is not None else []
        tokens = list(tokens)[:MAX_INSTRUCTION_LENGTH]
        self._tokens = np.array(tokens + [0] * (MAX_INSTRUCTION_LENGTH - len(tokens)), dtype=np.int64)

    def reward(self) -> float:
        """Decrease of geodesic distance over the last step, plus the success bonus on a successful STOP."""
        d0, d1 = self.distances[-2], self.distances[-1]
        progress = d0 - d1 if np.isfinite(d0) and np.isfinite(d1) else 0.0
        bonus = self.success_reward if self.stopped and d1 < self.config.success_distance else 0.0
        return float(progress + bonus)

    def metrics(self) -> dict[str, float]:
        """VLN-CE measures: success, spl, oracle_success, navigation_error, oracle_navigation_error, ndtw,
        sdtw, path_length, steps, collisions, distance_to_goal."""
        radius = self.config.success_distance
        d_end = self.distances[-1]
        path = np.asarray(self.positions)
        tl = measures.path_length(path)
        sr = measures.success(self.stopped, d_end, radius)
        out = {
            "success": sr,
            "spl": measures.spl(sr, self.start_geodesic, tl),
            "oracle_success": measures.oracle_success(self.distances, radius),
            "navigation_error": measures.navigation_error(d_end),
            "oracle_navigation_error": measures.oracle_navigation_error(self.distances),
            "ndtw": measures.ndtw(path, self.reference, radius),
            "sdtw": measures.sdtw(sr, path, self.reference, radius),
            "distance_to_goal": float(d_end),
        }
        out.update(self.common_metrics())
        return out
