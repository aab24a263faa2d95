"""Checkpointing a model sharded by FSDP (``distributed=fsdp``) through the ordinary checkpoint functions.

Under FSDP every rank holds a shard of each parameter and of the optimiser state, and gathering them is a
collective that every rank must join, while :func:`trainers.checkpoint.save_checkpoint` runs on rank 0 alone.
So the trainer gathers first, on every rank (:func:`gather_full_states`), and hands rank 0 snapshots that
behave as the agent and optimiser the checkpoint code expects: :class:`AgentSnapshot` (``save(dir)`` writes
the gathered weights) and :class:`OptimizerSnapshot` (``state_dict()`` returns the gathered state). On resume,
:class:`ShardedOptimizer` loads the saved full state back into the shards (every rank calls
``load_checkpoint``). While the agent acts (evaluation, DAgger collection), :func:`gathered` holds its
whole parameters on every rank. The files are those of an unsharded run's checkpoint, except that
``optimizer.pt`` keys parameters by name (``torch.distributed.checkpoint``'s full optimiser state dict)
rather than by index.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from trainers import distributed

#: The prefix of the agent's parameters inside the trainer's loss module.
AGENT_PREFIX = "agent."


def gather_full_states(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The agent's whole state dict (keys without the loss module's ``agent.`` prefix) and the optimiser's
    full state dict, gathered on rank 0 (the other ranks get empty dicts). A collective."""
    weights = distributed.full_state_dict(model)
    agent_state = {k.removeprefix(AGENT_PREFIX): v for k, v in weights.items()}
    return agent_state, distributed.full_optimizer_state_dict(model, optimizer)


class AgentSnapshot:
    """The agent as ``save_checkpoint`` sees it: ``save(directory)`` writes the gathered ``state``."""

    def __init__(self, agent: Any, state: dict[str, torch.Tensor]) -> None:
        self.agent, self.state = agent, state

    def save(self, directory: str | os.PathLike) -> None:
        """``Agent.save`` with the gathered weights."""
        self.agent.save(directory, state=self.state)


class OptimizerSnapshot:
    """The optimiser as ``save_checkpoint`` sees it: ``state_dict()`` is the gathered full state."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def state_dict(self) -> dict[str, Any]:
        """The gathered state."""
        return self.state


class ShardedOptimizer:
    """The optimiser as ``load_checkpoint`` sees it on resume: ``load_state_dict(full)`` reshards ``full``
    onto this rank (every rank loads the file and calls it: a collective)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a full optimiser state written by an FSDP run."""
        groups = state.get("param_groups") or [{"params": [""]}]
        if groups[0]["params"] and isinstance(groups[0]["params"][0], int):
            raise ValueError(
                "optimizer.pt: saved by an unsharded run (parameters by index); resume with distributed=ddp"
            )
        distributed.load_full_optimizer_state_dict(self.model, self.optimizer, state)


@contextlib.contextmanager
def gathered(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Hold every FSDP unit of ``model`` unsharded (whole parameters on every rank) inside the block, so that
    the agent can act outside ``forward``; resharded afterwards. A collective: every rank enters together. A
    no-op when ``enabled`` is False (an unsharded model)."""
    if not enabled:
        yield
        return
    from torch.distributed.fsdp import FSDPModule

    units = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
