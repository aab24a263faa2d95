"""Trainers: how batches are made and models optimised.

- :mod:`trainers.run`: the single training entry point (Hydra, ``configs/train.yaml``).
- :mod:`trainers.base`: the ``Trainer`` template (``learn() = rounds of collect ; train ; evaluate ;
  checkpoint``) and the ``TRAINERS`` registry; :mod:`trainers.bc` (``bc``) and :mod:`trainers.dagger`
  (``dagger``).
- :mod:`trainers.config`: the structured configs.
- :mod:`trainers.data`: the trajectory store, expert / DAgger collection, render-on-read datasets, samplers.
- :mod:`trainers.checkpoint`, :mod:`trainers.metrics`, :mod:`trainers.distributed`: checkpoints with exact
  resume, metric sinks, torchrun helpers.
"""

from trainers import bc, dagger, ppo  # noqa: E402  (registers the trainers)
from trainers.base import TRAINERS, Trainer, make_trainer  # noqa: E402

__all__ = ["TRAINERS", "Trainer", "bc", "dagger", "make_trainer", "ppo"]
