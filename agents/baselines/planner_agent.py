"""The agent class iPlanner and ViPlanner share: declarations, acting and the windowed loss.

Subclasses give ``name``, ``config_class``, ``cameras``, the network (:meth:`KeypointPlannerAgent.build_net`)
and :meth:`KeypointPlannerAgent.forward` from observations or window batches; see
:mod:`agents.baselines.planner` for the inputs, the conversion of keypoints to waypoints, the fear rule and
the loss.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import Agent, VocabLike
from agents.baselines.planner import PlannerConfig, goal_vector, planner_loss, waypoints_from_plan
from agents.contract import SampleSpec
from envs.datasets.critic import FUTURE_STRIDE, HORIZON


class KeypointPlannerAgent(Agent, abstract=True):
    """A point-goal planner predicting keypoints and a fear value (iPlanner, ViPlanner).

    Training batches: windows of the current frame only (``SampleSpec(kind="window", history=0,
    horizon=24, future_stride=2)``, the System-1 data's future path and critic labels).

    Args:
        config: the method's :class:`agents.baselines.planner.PlannerConfig` subclass.
        vocab, instructions: unused; accepted as every agent's.
        load_pretrained: read ``config.weights`` (False: the weights come from a NavGym checkpoint).
    """

    action_mode = "waypoint"
    n_waypoints = PlannerConfig.n_waypoints
    tasks = ("pointnav",)
    sample = SampleSpec(kind="window", history=0, horizon=HORIZON, future_stride=FUTURE_STRIDE)

    def __init__(
        self,
        config: PlannerConfig,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(config, vocab=vocab, instructions=instructions)
        self.n_waypoints = config.n_waypoints
        self.net = self.build_net(config)
        if load_pretrained and config.weights:
            self.load_weights(config.weights)

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        return cls(config, vocab=vocab, load_pretrained=False)

    @abc.abstractmethod
    def build_net(self, config: PlannerConfig) -> nn.Module:
        """The method's network at the config's sizes."""

    @abc.abstractmethod
    def load_weights(self, path: str) -> None:
        """Load released weights into :attr:`net` (checked; see :mod:`agents.baselines.loading`)."""

    @abc.abstractmethod
    def forward(self, data: Mapping[str, Any], window: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Observations (or, with ``window``, a window batch's current frames) -> keypoints (B, K, 3), fear
        (B, 1), goal (B, 3)."""

    def goal(self, data: Mapping[str, Any]) -> Tensor:
        """(B, 3) network goal from ``data["pointgoal"]``."""
        if data.get("pointgoal") is None:
            raise KeyError(
                f"{self.name}: needs 'pointgoal' (B, 2) (distance, angle); got keys {sorted(data)}"
            )
        return goal_vector(data["pointgoal"], self.config, self.device)

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """See :func:`agents.baselines.planner.planner_loss`; ``batch`` is not modified."""
        keypoints, fear, _ = self.forward(batch, window=True)
        return planner_loss(keypoints, fear, batch, self.config)

    @torch.no_grad()
    def plan(self, obs: Mapping[str, Any]) -> dict[str, Tensor]:
        """``keypoints`` (B, K, 3), ``fear`` (B, 1) and the network's ``goal`` (B, 3) for observations."""
        self._check_batch(obs)
        keypoints, fear, goal = self.forward(obs)
        return {"keypoints": keypoints, "fear": fear, "goal": goal}

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B, n_waypoints, 3) float32 cumulative ``(dx, dy, dyaw)`` along the planned path (or the fear
        rule's action); deterministic either way."""
        planned = self.plan(obs)
        return waypoints_from_plan(
            planned["keypoints"], planned["fear"], planned["goal"], self.config, self.n_waypoints
        )
