"""Vectorised PointNav environments for on-policy training.

Each environment is a :class:`envs.env.NavEnv` (``pointnav``, a depth-only camera) behind
:class:`PointNavRL`, which

- keeps only ``depth`` (H, W, 1) and ``pointgoal`` (2,) in the observations;
- adds habitat's PointNav reward terms to the task's reward (the decrease of the geodesic distance to the
  goal, :meth:`envs.tasks.pointnav.PointNavTask.reward`): ``slack_reward`` every step (habitat: −0.01) and
  ``success_reward`` when an episode ends successfully (habitat: 2.5). Success is the task's: final
  Euclidean distance < 1.5 m however the episode ended (habitat's needs a STOP within 0.2 m);
- picks its episodes itself, the k-th from a generator seeded with ``(seed, slot, k)`` (``slot`` unique
  over every rank's environments), and records the actions since the episode's reset, so that
  :meth:`PointNavRL.restore` puts a resumed run's environments back exactly where the checkpoint left them
  (the simulator is deterministic);
- reports an ended episode's ``ep_success``, ``ep_spl``, ``ep_return`` and ``ep_length`` in ``info``.

:func:`make_vector_env` runs them in gymnasium's ``AsyncVectorEnv`` (one process, hence one EGL context, per
environment, started with ``forkserver``) or ``SyncVectorEnv``, without autoreset: the trainer resets ended
environments with ``reset_mask``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

#: Observation keys the policy reads.
KEYS = ("depth", "pointgoal")


class PointNavRL(gym.Wrapper):
    """See the module docstring.

    Args:
        env: a ``pointnav`` :class:`envs.env.NavEnv`.
        slot: this environment's index over every rank's environments.
        seed: seeds the episode order.
        success_reward, slack_reward: habitat's reward terms.
        order: ``random`` (seeded, see the module docstring) or ``file`` (the k-th episode is the split's
            k-th, cycling: evaluation on the same episodes as a benchmark).
    """

    def __init__(
        self,
        env: gym.Env,
        slot: int,
        seed: int,
        success_reward: float = 2.5,
        slack_reward: float = -0.01,
        order: str = "random",
    ) -> None:
        super().__init__(env)
        self.observation_space = spaces.Dict({k: env.observation_space[k] for k in KEYS})
        if order not in ("random", "file"):
            raise ValueError(f"order must be 'random' or 'file', got {order!r}")
        self.slot, self.seed, self.order = int(slot), int(seed), order
        self.success_reward, self.slack_reward = float(success_reward), float(slack_reward)
        self.count = 0
        self.actions: list[int] = []
        self.ep_return = 0.0

    def _obs(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        return {k: obs[k] for k in KEYS}

    def episode_index(self, k: int) -> int:
        """The dataset index of this environment's k-th episode."""
        n = len(self.env.unwrapped.dataset.episodes)
        if self.order == "file":
            return k % n
        return int(np.random.default_rng([self.seed, self.slot, k]).integers(n))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start this environment's next scheduled episode (``seed`` and ``options`` are not used)."""
        obs, _ = self.env.reset(options={"episode_index": self.episode_index(self.count)})
        self.count += 1
        self.actions, self.ep_return = [], 0.0
        return self._obs(obs), {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        """Step with habitat's reward terms; ``info`` holds the episode's measures when it ends."""
        a = int(action)
        obs, reward, terminated, truncated, info = self.env.step(a)
        self.actions.append(a)
        reward += self.slack_reward
        out: dict[str, float] = {}
        if terminated or truncated:
            m = info["metrics"]
            reward += self.success_reward * float(m["success"])
            out = {"ep_success": float(m["success"]), "ep_spl": float(m["spl"])}
        self.ep_return += reward
        if out:
            out.update(ep_return=self.ep_return, ep_length=float(len(self.actions)))
        return self._obs(obs), float(reward), bool(terminated), bool(truncated), out

    def snapshot(self) -> dict[str, Any]:
        """Where the environment is: episodes started, actions since the reset, return so far."""
        return {"count": self.count, "actions": list(self.actions), "ep_return": self.ep_return}

    def restore(self, snapshots: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Replay ``snapshots[slot_in_rank]`` (a :meth:`snapshot`): reset to the same episode and repeat its
        actions; returns the observation."""
        snap = snapshots[self.local_slot]
        self.count = int(snap["count"]) - 1
        obs, _ = self.reset()
        for a in snap["actions"]:
            obs, *_ = self.step(a)
        self.ep_return = float(snap["ep_return"])
        return obs

    @property
    def local_slot(self) -> int:
        """The index of this environment within its rank's vector."""
        return self.slot % self._per_rank

    _per_rank = 1


def make_pointnav_env(
    data_dir: str,
    split: str,
    size: int,
    hfov: float,
    max_episode_steps: int | None,
    slot: int,
    per_rank: int,
    seed: int,
    success_reward: float,
    slack_reward: float,
    order: str = "random",
    camera_height: float | None = None,
) -> PointNavRL:
    """One :class:`PointNavRL` over ``data_dir/split`` with a ``size``×``size`` depth camera ``camera_height``
    metres above the floor (None: the simulator's default); ``slot`` over every rank's environments,
    ``per_rank`` environments per rank (a module-level function: picklable for worker processes)."""
    from agents.contract import CameraRequest, camera_spec
    from envs.env import NavEnv
    from envs.sim import SimConfig

    request = CameraRequest(modalities=("depth",), mount_height=camera_height)
    sim_config = SimConfig(cameras=(camera_spec(request, size, size, hfov),))
    root = Path(data_dir)
    env = NavEnv(
        "pointnav", episodes=root / split, scenes_dir=root / "scenes", sim_config=sim_config,
        max_episode_steps=max_episode_steps, shuffle=False, scene_cache_size=2,
    )  # fmt: skip
    wrapped = PointNavRL(env, slot, seed, success_reward, slack_reward, order)
    wrapped._per_rank = per_rank
    return wrapped


def make_vector_env(
    data_dir: str | Path,
    split: str,
    num_envs: int,
    size: int,
    hfov: float = 90.0,
    max_episode_steps: int | None = None,
    rank: int = 0,
    seed: int = 0,
    vector: str = "async",
    success_reward: float = 2.5,
    slack_reward: float = -0.01,
    camera_height: float | None = None,
) -> gym.vector.VectorEnv:
    """``num_envs`` :class:`PointNavRL` environments of this rank (slots ``rank·num_envs + i``).

    Args:
        data_dir, split: the dataset (R2R-CE layout; scenes in ``data_dir/scenes``).
        size, hfov: the depth camera's side in pixels and field of view in degrees.
        camera_height: the camera's metres above the floor (None: the simulator's default).
        max_episode_steps: step limit (None: the task's 500).
        vector: ``async`` (a process per environment) or ``sync`` (all in this process).
    """
    if vector not in ("async", "sync"):
        raise ValueError(f"vector must be 'async' or 'sync', got {vector!r}")
    split_dir = Path(data_dir) / split
    if not split_dir.exists():
        raise FileNotFoundError(
            f"{split_dir}: no such split folder (expected the R2R-CE layout DIR/{split}/)"
        )
    fns = [
        functools.partial(
            make_pointnav_env,
            str(data_dir),
            split,
            size,
            hfov,
            max_episode_steps,
            rank * num_envs + i,
            num_envs,
            seed,
            success_reward,
            slack_reward,
            camera_height=camera_height,
        )  # fmt: skip
        for i in range(num_envs)
    ]
    if vector == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    return AsyncVectorEnv(fns, context="forkserver", autoreset_mode=AutoresetMode.DISABLED)


def episode_stats(info: dict[str, Any]) -> list[dict[str, float]]:
    """The ended episodes' measures from a vector step's ``info`` (one dict per ended episode)."""
    if "ep_success" not in info:
        return []
    mask = info["_ep_success"]
    keys = ("ep_success", "ep_spl", "ep_return", "ep_length")
    return [{k: float(info[k][i]) for k in keys} for i in np.flatnonzero(mask)]
