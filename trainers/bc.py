"""Behaviour cloning (teacher forcing): train on the shortest-path expert's episodes.

VLN-CE's teacher-forcing recipe: one pass of the expert over the training split (``n_episodes=None``), then
``epochs`` epochs of inflection-weighted imitation on whole trajectories. The expert episodes come from the
store when they are already there (``data.store`` or ``data.init_store`` filled by
``python -m trainers.data.collect``), else they are collected first. ``n_episodes=0`` collects nothing and
trains on the store's episodes as they are (generated System-1 trajectories, :mod:`envs.datasets.system1`).
"""

from __future__ import annotations

from trainers.base import TRAINERS, Trainer
from trainers.config import BCConfig
from trainers.schedule import Round


@TRAINERS.register("bc")
class BCTrainer(Trainer):
    """Teacher forcing: a single round of pure expert data (β = 1), ``epochs`` epochs on it."""

    name = "bc"
    config_class = BCConfig

    def rounds(self) -> list[Round]:
        """One round: the expert over ``n_episodes`` slots, ``epochs`` epochs."""
        return [Round(index=0, beta=1.0, n_episodes=self.tcfg.n_episodes, epochs=self.tcfg.epochs)]
