"""Rollout storage, generalised advantage estimation and recurrent minibatches (habitat's
``RolloutStorage``).

Shapes: T steps, N environments of this rank. ``dones[t]`` is True when the episode ended with step t
(terminated or truncated; a truncated episode is not bootstrapped, as in habitat).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def compute_gae(
    rewards: Tensor, values: Tensor, dones: Tensor, last_values: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """GAE(γ, λ) (Schulman et al. 2016).

    ``δ_t = r_t + γ (1 − d_t) V_{t+1} − V_t``, ``A_t = δ_t + γ λ (1 − d_t) A_{t+1}``, returns ``A_t + V_t``.

    Args:
        rewards, values: (T, N) float. dones: (T, N) bool. last_values: (N,) V of the state after step T−1.

    Returns:
        advantages (T, N) and returns (T, N).
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_value, next_adv = last_values, torch.zeros_like(last_values)
    for t in reversed(range(steps)):
        keep = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * keep * next_value - values[t]
        next_adv = delta + gamma * lam * keep * next_adv
        advantages[t] = next_adv
        next_value = values[t]
    return advantages, advantages + values


class RolloutBuffer:
    """One rollout of this rank: the policy's inputs, memory and outputs per step.

    Args:
        state: (N, 4, hidden) LSTM state before the first step.
    """

    #: Per-step keys, each stacked to (T, N, ...).
    STEP_KEYS = (
        "depth", "pointgoal", "prev_actions", "not_done", "actions", "old_log_probs", "old_values", "rewards",
        "dones",
    )  # fmt: skip

    def __init__(self, state: Tensor) -> None:
        self.state = state.clone()
        self.steps: list[dict[str, Tensor]] = []

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, **step: Tensor) -> None:
        """Append one step: every key of :attr:`STEP_KEYS`, (N, ...) each."""
        missing = set(self.STEP_KEYS) - set(step)
        if missing:
            raise KeyError(f"RolloutBuffer.add: missing {sorted(missing)}")
        self.steps.append({k: step[k].detach() for k in self.STEP_KEYS})

    def finish(self, last_values: Tensor, gamma: float, lam: float) -> dict[str, Tensor]:
        """The stacked rollout with ``advantages``, ``returns`` (T, N) and ``state`` (N, 4, hidden)."""
        data = {k: torch.stack([s[k] for s in self.steps]) for k in self.STEP_KEYS}
        data["advantages"], data["returns"] = compute_gae(
            data["rewards"], data["old_values"], data["dones"], last_values, gamma, lam
        )
        data["state"] = self.state
        return data


def recurrent_minibatches(
    data: dict[str, Tensor], num_mini_batch: int, generator: torch.Generator | None = None
) -> Iterator[dict[str, Tensor]]:
    """Split the N environments into ``num_mini_batch`` random groups; each minibatch holds the whole T-step
    sequences of its group and their initial ``state`` (habitat's ``recurrent_generator``)."""
    n = data["state"].shape[0]
    if not 1 <= num_mini_batch <= n:
        raise ValueError(f"num_mini_batch must be in [1, num_envs={n}], got {num_mini_batch}")
    order = torch.randperm(n, generator=generator)
    for ids in order.chunk(num_mini_batch):
        batch = {k: v[:, ids] for k, v in data.items() if k != "state"}
        batch["state"] = data["state"][ids]
        yield batch
