"""Non-learning agents: the shortest-path expert, a random agent and VLN-CE's hand-crafted forward agent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.base import AGENTS, MOVE_FORWARD, NUM_ACTIONS, STOP, Agent, to_numpy
from agents.contract import ACTION_MODES


@dataclass
class ExpertConfig:
    """Config of the ``expert`` agent.

    Attributes:
        action_mode: ``discrete`` (the shortest-path follower's action ids) or ``waypoint`` (the next
            ``n_waypoints`` points of the shortest path, see ``NavEnv.expert_action``).
        n_waypoints: waypoints per action in waypoint mode.
    """

    name: str = "expert"
    action_mode: str = "discrete"
    n_waypoints: int = 8

    def __post_init__(self) -> None:
        if self.action_mode not in ACTION_MODES:
            raise ValueError(
                f"ExpertConfig.action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}"
            )
        if self.n_waypoints < 1:
            raise ValueError(f"ExpertConfig.n_waypoints must be >= 1, got {self.n_waypoints}")


@dataclass
class RandomConfig:
    """Config of the ``random`` agent.

    Attributes:
        seed: seed of the agent's own generator.
        stop_probability: probability of STOP at each step; the other three actions share the rest equally
            (0.25 = uniform over the four actions).
    """

    name: str = "random"
    seed: int = 0
    stop_probability: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.stop_probability <= 1.0:
            raise ValueError(f"RandomConfig.stop_probability must lie in [0, 1], got {self.stop_probability}")


@dataclass
class ForwardConfig:
    """Config of the ``forward`` agent.

    Attributes:
        n_forward: MOVE_FORWARD steps before STOP; 37 = VLN-CE's hand-crafted agent (9.27 m mean R2R path /
            0.25 m).
    """

    name: str = "forward"
    n_forward: int = 37

    def __post_init__(self) -> None:
        if self.n_forward < 0:
            raise ValueError(f"ForwardConfig.n_forward must be >= 0, got {self.n_forward}")


@AGENTS.register("expert")
class ExpertAgent(Agent):
    """Returns the environment's shortest-path expert action ``obs["expert_action"]``: (B,) int64 ids, or
    (B, n_waypoints, 3) float32 waypoints when configured with ``action_mode="waypoint"``."""

    name = "expert"
    config_class = ExpertConfig
    is_trainable = False
    tasks = ("vln", "pointnav", "imagenav")
    #: The rollout loop adds ``obs["expert_action"]`` for policies that set this.
    requires_expert = True

    def __init__(self, config: ExpertConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # The expert acts in either mode: the instance narrows the class's declaration from its config.
        self.action_mode = config.action_mode
        self.n_waypoints = config.n_waypoints if config.action_mode == "waypoint" else 0

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """The expert actions in ``obs``; raises ``KeyError`` when the environment does not provide them."""
        if "expert_action" not in obs:
            raise KeyError(
                "the expert agent needs obs['expert_action'] (B,) int64, which envs.rollout.rollout adds "
                f"for policies with requires_expert=True (got keys {sorted(obs)})"
            )
        n = self._check_batch(obs)
        actions = to_numpy(obs["expert_action"])
        if self.action_mode == "waypoint":
            return actions.astype(np.float32).reshape(n, self.n_waypoints, 3)
        return actions.astype(np.int64).reshape(-1)


@AGENTS.register("random")
class RandomAgent(Agent):
    """Samples actions from its own seeded generator: STOP with ``stop_probability``, the others uniformly."""

    name = "random"
    config_class = RandomConfig
    is_trainable = False
    tasks = ("vln", "pointnav", "imagenav", "explore")

    def __init__(self, config: RandomConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._rng = np.random.default_rng(config.seed)
        p_move = (1.0 - config.stop_probability) / (NUM_ACTIONS - 1)
        self._probabilities = np.array([config.stop_probability] + [p_move] * (NUM_ACTIONS - 1))

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B,) int64 random actions (``deterministic`` is ignored: the generator is seeded)."""
        n = self._check_batch(obs)
        return self._rng.choice(NUM_ACTIONS, size=n, p=self._probabilities).astype(np.int64)


@AGENTS.register("forward")
class ForwardAgent(Agent):
    """MOVE_FORWARD for ``n_forward`` steps of an episode, then STOP."""

    name = "forward"
    config_class = ForwardConfig
    is_trainable = False
    tasks = ("vln", "pointnav", "imagenav", "explore")

    def _init_state(self, n_envs: int) -> None:
        self._steps = np.zeros(n_envs, dtype=np.int64)

    def _clear_state(self, env_ids: np.ndarray) -> None:
        self._steps[env_ids] = 0

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B,) int64: MOVE_FORWARD while fewer than ``n_forward`` steps were taken since reset, else STOP."""
        self._check_batch(obs)
        actions = np.where(self._steps < self.config.n_forward, MOVE_FORWARD, STOP).astype(np.int64)
        self._steps += 1
        return actions
