"""DD-PPO's preemption threshold (Wijmans et al. 2020; habitat's ``num_rollouts_done_store``).

Every rank collects its own rollout. A rank that has collected its ``rollout_steps`` adds 1 to a counter in
the process group's key-value store; a rank still collecting stops early once at least ``sync_frac`` of the
ranks have finished (habitat: 0.6) and it has collected at least ``min_fraction`` of its steps (habitat's
``SHORT_ROLLOUT_THRESHOLD``, 0.25), so that stragglers do not hold the synchronous update back. The store's
atomic ``add`` is the counter rather than an all-reduce: an all-reduce after every step would make every
rank wait for the slowest at every step, which is what preemption avoids. Each update uses its own key, so
no reset races with a fast rank's next rollout.
"""

from __future__ import annotations

import torch.distributed as dist


def default_store() -> dist.Store:
    """The key-value store of the running process group, or a process-local one without a group."""
    if dist.is_available() and dist.is_initialized():
        return dist.distributed_c10d._get_default_store()
    return dist.HashStore()


class PreemptionCounter:
    """The per-update count of ranks done collecting.

    Args:
        world_size: ranks in the run.
        sync_frac: fraction of ranks whose finishing preempts the others (1 or more: never preempt early).
        min_fraction: a rank collects at least this fraction of its rollout before it can be preempted.
        store: the key-value store (default: :func:`default_store`).
        prefix: key prefix.
    """

    def __init__(
        self,
        world_size: int,
        sync_frac: float = 0.6,
        min_fraction: float = 0.25,
        store: dist.Store | None = None,
        prefix: str = "ddppo/done",
    ) -> None:
        if not 0.0 < sync_frac:
            raise ValueError(f"sync_frac must be > 0, got {sync_frac}")
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
        self.world_size, self.sync_frac, self.min_fraction = int(world_size), float(sync_frac), min_fraction
        self.store = store if store is not None else default_store()
        self.prefix = prefix

    def _key(self, update: int) -> str:
        return f"{self.prefix}/{int(update)}"

    def finished(self, update: int) -> int:
        """Ranks that finished collecting for ``update`` (the store's atomic add of 0 reads it)."""
        return int(self.store.add(self._key(update), 0))

    def finish(self, update: int) -> int:
        """Count this rank done for ``update``; returns the new count."""
        return int(self.store.add(self._key(update), 1))

    def should_stop(self, update: int, steps: int, rollout_steps: int) -> bool:
        """Whether a rank that has collected ``steps`` of ``rollout_steps`` stops now."""
        if self.world_size <= 1 or self.sync_frac >= 1.0:
            return False
        if steps < self.min_fraction * rollout_steps:
            return False
        return self.finished(update) >= self.sync_frac * self.world_size
