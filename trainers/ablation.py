"""Input ablations: train and evaluate an agent with its instruction or its vision blanked.

``ablation.blank=[instruction]`` makes every instruction empty (all PAD tokens); ``ablation.blank=[vision]``
zeroes RGB and depth. The trainer blanks training batches with :func:`blank_inputs` and hands rollouts a
:class:`BlankedInputs` policy, so collection and evaluation see the same blanked inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def blank_inputs(obs: dict[str, Any], blank: Sequence[str]) -> dict[str, Any]:
    """A copy of a batch or an observation with inputs blanked for ablations (the input is not modified).

    ``"instruction"`` makes every ``instruction_text`` empty (all PAD tokens) and zeroes ``instruction`` token
    ids; ``"vision"`` zeroes ``rgb`` and ``depth``. Works on numpy arrays and tensors.
    """
    out = dict(obs)
    if "instruction" in blank:
        texts = obs.get("instruction_text", [])
        out["instruction_text"] = "" if isinstance(texts, str) else [""] * len(texts)
        if "instruction" in obs:
            out["instruction"] = _zeros_like(obs["instruction"])
    if "vision" in blank:
        for key in ("rgb", "depth"):
            if key in obs:
                out[key] = _zeros_like(obs[key])
    return out


def _zeros_like(x: Any) -> Any:
    return torch.zeros_like(x) if isinstance(x, torch.Tensor) else np.zeros_like(np.asarray(x))


class BlankedInputs:
    """A policy handing the agent blanked observations (ablations; see :func:`blank_inputs`).

    Exposes what the rollout loop and the benchmarks use: ``name``, ``config``, ``training``, ``train``,
    ``eval``, ``reset``, ``act`` and ``record_actions``, all delegated to the agent.

    Args:
        agent: the agent.
        blank: what to blank, a subset of ``("instruction", "vision")``.
    """

    def __init__(self, agent: Any, blank: Sequence[str]) -> None:
        self.agent, self.blank = agent, tuple(blank)
        self.name, self.config = agent.name, agent.config

    @property
    def training(self) -> bool:
        """Whether the agent is in train mode."""
        return self.agent.training

    def train(self, mode: bool = True) -> BlankedInputs:
        """Set the agent's mode."""
        self.agent.train(mode)
        return self

    def eval(self) -> BlankedInputs:
        """Eval mode."""
        return self.train(False)

    def reset(self, n_envs: int, env_ids: Sequence[int] | None = None) -> None:
        """Reset the agent."""
        self.agent.reset(n_envs, env_ids)

    def act(self, obs: dict[str, Any], deterministic: bool = True) -> np.ndarray:
        """The agent's actions on the blanked observations."""
        return self.agent.act(blank_inputs(obs, self.blank), deterministic)

    def record_actions(self, actions: Any) -> None:
        """Forward the executed actions."""
        self.agent.record_actions(actions)
