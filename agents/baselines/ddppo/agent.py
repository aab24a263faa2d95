"""The DD-PPO point-goal agent (Wijmans et al. 2020): habitat's ``PointNavResNetPolicy`` acting on depth and
the point goal with discrete actions {STOP, FORWARD, LEFT, RIGHT}, trained by reinforcement learning
(``trainer=ppo``, :mod:`trainers.ppo`) or loaded from the released weights (``weights=``).

**Inputs.** ``depth`` (B, H, W, 1) metres is clipped to [``min_depth``, ``max_depth``] (NaN reads as the far
end), normalised to [0, 1] over that range as vlfm (which trained ``pointnav_weights.pth``) does, and resized
bilinearly to ``image_size`` (NavDP resizes to 224). ``pointgoal`` (B, 2) ``(rho m, theta rad, left
positive)`` — habitat's polar convention, which the network turns into ``[rho, cos(−θ), sin(−θ)]`` — is
converted to its (forward, left) offset, clipped to ±``max_goal_distance`` (NavDP's server: 5 m) and back.

**Memory.** Per environment the agent keeps the LSTM state (4, hidden) and the previous action; ``reset``
(all or ``env_ids``) clears them (the network also ignores both on the first step of an episode through its
``not_done`` input). :meth:`record_actions` replaces the previous action by the executed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from agents.base import AGENTS, NUM_ACTIONS, Agent, VocabLike, as_tensor
from agents.baselines.ddppo.config import DDPPOConfig
from agents.baselines.ddppo.network import PointNavResNetPolicy
from agents.baselines.ddppo.ppo import ppo_loss
from agents.contract import SYSTEM1_CAMERA_HEIGHT, CameraRequest


def depth_input(depth: Any, config: DDPPOConfig, device: torch.device | str | None = None) -> Tensor:
    """(..., H, W, 1) metres -> (N, 1, S, S) in [0, 1]: clipped to [min, max] metres, normalised, resized."""
    x = as_tensor(depth, device=device).float()
    if x.ndim < 3 or x.shape[-1] != 1:
        raise ValueError(f"ddppo: depth must have shape (..., H, W, 1), got {tuple(x.shape)}")
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)  # (N, 1, H, W)
    lo, hi = config.min_depth, config.max_depth
    x = (torch.nan_to_num(x, nan=hi).clamp(lo, hi) - lo) / (hi - lo)
    s = config.image_size
    if x.shape[-2:] != (s, s):
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
    return x.contiguous()


def goal_input(pointgoal: Any, max_distance: float, device: torch.device | str | None = None) -> Tensor:
    """(..., 2) ``(rho, theta)`` -> (N, 2) ``(rho, theta)`` of the goal clipped to ±``max_distance`` metres
    forward and left."""
    g = as_tensor(pointgoal, device=device).float().reshape(-1, 2)
    fwd = (g[:, 0] * torch.cos(g[:, 1])).clamp(-max_distance, max_distance)
    left = (g[:, 0] * torch.sin(g[:, 1])).clamp(-max_distance, max_distance)
    return torch.stack([torch.hypot(fwd, left), torch.atan2(left, fwd)], dim=-1)


@AGENTS.register("ddppo")
class DDPPOAgent(Agent):
    """DD-PPO; see the module docstring.

    Observations: ``depth`` (B, H, W, 1) float32 metres, ``pointgoal`` (B, 2) float32. Actions: (B,) int64.
    Training batches are the PPO trainer's rollouts (:func:`agents.baselines.ddppo.ppo.ppo_loss`), not stored
    episodes.

    Args:
        config: a :class:`DDPPOConfig`.
        vocab, instructions: unused (no instruction); accepted as every agent's.
        load_weights: read ``config.weights`` (False: the weights come from an agent checkpoint).
    """

    name = "ddppo"
    config_class = DDPPOConfig
    action_mode = "discrete"
    tasks = ("pointnav",)
    cameras = (CameraRequest(mount_height=SYSTEM1_CAMERA_HEIGHT),)  # the System-1 benchmark's robot

    def __init__(
        self,
        config: DDPPOConfig,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        load_weights: bool = True,
    ) -> None:
        super().__init__(config, vocab=vocab, instructions=instructions)
        self.policy = PointNavResNetPolicy(
            config.hidden_size,
            NUM_ACTIONS,
            input_size=config.network_input_size,
            backbone=config.backbone,
            baseplanes=config.baseplanes,
        )
        if load_weights and config.weights:
            from agents.baselines.loading import load_into

            load_into(self.policy, config.weights, "ddppo")
        self._init_state(0)

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        return cls(config, vocab=vocab, load_weights=False)

    # ------------------------------------------------------------------------------------------- inputs
    def inputs(self, obs: Mapping[str, Any]) -> dict[str, Tensor]:
        """``depth`` (N, 1, S, S) normalised and ``pointgoal`` (N, 2) clipped network inputs of raw
        observations."""
        c = self.config
        return {
            "depth": depth_input(obs["depth"], c, self.device),
            "pointgoal": goal_input(obs["pointgoal"], c.max_goal_distance, self.device),
        }

    def evaluate_sequence(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Re-run the policy over N sequences of T steps from their initial recurrent state.

        Args:
            batch: network inputs ``depth`` (T, N, 1, S, S), ``pointgoal`` (T, N, 2); ``prev_actions`` (T, N)
                int64 (the action before each step), ``not_done`` (T, N) bool (False on an episode's first
                step), ``state`` (N, 4, hidden) at the first step.

        Returns:
            action logits (T, N, 4) and values (T, N).
        """
        net, policy = self.policy.net, self.policy
        steps, n = batch["depth"].shape[:2]
        not_done = batch["not_done"]
        x = net.embed(  # every step's encoder at once; only the LSTM runs step by step
            batch["depth"].flatten(0, 1), batch["pointgoal"].flatten(0, 1),
            batch["prev_actions"].flatten(0, 1), not_done.flatten(0, 1),
        ).view(steps, n, -1)  # fmt: skip
        state, outputs = batch["state"], []
        for t in range(steps):
            out, state = net.recurrent(x[t], not_done[t], state)
            outputs.append(out)
        features = torch.stack(outputs)  # (T, N, hidden)
        return policy.action_distribution.linear(features), policy.critic.fc(features)[..., 0]

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """PPO with habitat's coefficients (:func:`agents.baselines.ddppo.ppo.ppo_loss`) on a rollout
        minibatch.

        Raises:
            ValueError: ``batch`` is not a rollout minibatch (an imitation trainer's batch).
        """
        if "old_log_probs" not in batch:
            raise ValueError(
                "ddppo trains by reinforcement learning on rollouts (trainer=ppo); got a batch with keys "
                f"{sorted(batch)}, not a rollout minibatch"
            )
        return ppo_loss(self, batch)

    # ------------------------------------------------------------------------------------------- memory
    def _init_state(self, n_envs: int) -> None:
        self.hidden = torch.zeros(n_envs, 4, self.config.hidden_size, device=self.device)
        self.prev_actions = torch.zeros(n_envs, dtype=torch.long, device=self.device)
        self.not_done = torch.zeros(n_envs, dtype=torch.bool, device=self.device)

    def _clear_state(self, env_ids: np.ndarray) -> None:
        ids = torch.as_tensor(env_ids, dtype=torch.long, device=self.hidden.device)
        self.hidden[ids] = 0.0
        self.prev_actions[ids] = 0
        self.not_done[ids] = False

    def record_actions(self, actions: Any) -> None:
        """The executed actions (B,) become the previous actions."""
        self.prev_actions = as_tensor(actions, torch.long, self.prev_actions.device).reshape(-1).clone()

    def memory(self) -> dict[str, Tensor]:
        """Copies of the per-environment memory: ``state`` (B, 4, hidden), ``prev_actions`` (B,),
        ``not_done`` (B,)."""
        return {
            "state": self.hidden.clone(),
            "prev_actions": self.prev_actions.clone(),
            "not_done": self.not_done.clone(),
        }

    def set_memory(self, memory: Mapping[str, Any]) -> None:
        """Restore what :meth:`memory` returned (a resumed rollout)."""
        n = len(memory["prev_actions"])
        self.n_envs = n
        self.hidden = as_tensor(memory["state"], torch.float32, self.device).reshape(n, 4, -1).clone()
        self.prev_actions = as_tensor(memory["prev_actions"], torch.long, self.device).clone()
        self.not_done = as_tensor(memory["not_done"], torch.bool, self.device).clone()

    # ------------------------------------------------------------------------------------------- acting
    @torch.no_grad()
    def step(self, inputs: Mapping[str, Tensor], deterministic: bool = False) -> dict[str, Tensor]:
        """One step from network inputs (:meth:`inputs`), advancing the memory.

        Returns:
            ``actions`` (B,) int64, ``log_probs`` (B,), ``values`` (B,).
        """
        logits, values, self.hidden = self.policy(
            inputs["depth"], inputs["pointgoal"], self.prev_actions, self.not_done, self.hidden
        )
        dist = torch.distributions.Categorical(logits=logits)
        actions = logits.argmax(-1) if deterministic else dist.sample()
        self.prev_actions, self.not_done = actions.clone(), torch.ones_like(self.not_done)
        return {"actions": actions, "log_probs": dist.log_prob(actions), "values": values}

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B,) int64 actions: the argmax when ``deterministic``, else sampled."""
        self._check_batch(obs)
        return self.step(self.inputs(obs), deterministic)["actions"].cpu().numpy().astype(np.int64)
