"""Drop text observations, for libraries whose checks accept only array spaces (Stable-Baselines3)."""

from __future__ import annotations

import gymnasium as gym
from gymnasium import spaces


class DropText(gym.ObservationWrapper):
    """Remove every ``Text`` entry (``instruction_text``) from a ``Dict`` observation.

    Example (Stable-Baselines3 on PointNav)::

        env = DropText(gymnasium.make("NavGym/PointNav-v0"))
        stable_baselines3.common.env_checker.check_env(env)
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict):
            raise TypeError(f"DropText needs a Dict observation space, got {env.observation_space}")
        self._keys = [k for k, s in env.observation_space.spaces.items() if isinstance(s, spaces.Text)]
        self.observation_space = spaces.Dict(
            {k: s for k, s in env.observation_space.spaces.items() if k not in self._keys}
        )

    def observation(self, observation: dict) -> dict:
        """The observation without its text entries."""
        return {k: v for k, v in observation.items() if k not in self._keys}
