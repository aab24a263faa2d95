"""The PPO objective (Schulman et al. 2017) over recurrent sequences, as habitat-baselines' DD-PPO has it.

``loss = policy_loss + value_coef · value_loss − entropy_coef · entropy`` with the clipped surrogate
``−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A))``, ``r = exp(log π(a|s) − log π_old(a|s))``, and habitat's clipped
value loss ``0.5 · mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²))`` (``clipped_value=False``: the
plain ``0.5 · mean((V − R)²)``). Defaults: habitat's ``ddppo_pointnav.yaml`` (ε 0.2, value 0.5, entropy 0.01).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class PPOCoefficients:
    """ε of the clipped surrogate and value loss, the loss weights, and whether the value loss is clipped."""

    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    clipped_value: bool = True


def ppo_loss(
    agent: Any, batch: Mapping[str, Tensor], coef: PPOCoefficients = PPOCoefficients()
) -> tuple[Tensor, dict[str, float]]:
    """PPO on a minibatch of N whole sequences of T steps (``batch`` is not modified).

    Args:
        agent: has ``evaluate_sequence(batch) -> (logits (T, N, A), values (T, N))`` re-running the policy
            from the sequences' initial recurrent state.
        batch: the agent's inputs (see ``evaluate_sequence``) and ``actions`` (T, N) int64, ``old_log_probs``
            (T, N), ``old_values`` (T, N), ``returns`` (T, N), ``advantages`` (T, N) float32.

    Returns:
        (scalar loss, info floats ``loss/policy``, ``loss/value``, ``entropy``, ``approx_kl``,
        ``clip_fraction``).
    """
    logits, values = agent.evaluate_sequence(batch)
    dist = torch.distributions.Categorical(logits=logits)
    log_probs = dist.log_prob(batch["actions"])
    entropy = dist.entropy().mean()
    ratio = torch.exp(log_probs - batch["old_log_probs"])
    adv = batch["advantages"]
    surrogate = torch.min(ratio * adv, ratio.clamp(1.0 - coef.clip, 1.0 + coef.clip) * adv)
    policy_loss = -surrogate.mean()
    returns, old_values = batch["returns"], batch["old_values"]
    if coef.clipped_value:
        clipped = old_values + (values - old_values).clamp(-coef.clip, coef.clip)
        value_loss = 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
    else:
        value_loss = 0.5 * ((values - returns) ** 2).mean()
    loss = policy_loss + coef.value_coef * value_loss - coef.entropy_coef * entropy
    with torch.no_grad():
        approx_kl = (batch["old_log_probs"] - log_probs).mean()
        clip_fraction = ((ratio - 1.0).abs() > coef.clip).float().mean()
    info = {
        "loss/policy": float(policy_loss.detach()),
        "loss/value": float(value_loss.detach()),
        "entropy": float(entropy.detach()),
        "approx_kl": float(approx_kl),
        "clip_fraction": float(clip_fraction),
    }
    return loss, info
