"""A trainer's schedule and its resumable position: the rounds to run (:class:`Round`), how far a run got
(:class:`TrainerState`, saved in every checkpoint), and how a finished run resumed with more epochs goes on
(:func:`reopen_finished`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Round:
    """One round of a schedule: collect ``n_episodes`` with expert probability ``beta``, train ``epochs``."""

    index: int
    beta: float
    n_episodes: int | None
    epochs: int


@dataclass
class TrainerState:
    """The trainer's resumable position (saved as the checkpoint's ``extra_state``).

    Attributes:
        round: current round index. collected: its collection is complete.
        epoch: epochs finished in the current round. batch: batches finished in the current epoch.
        step: optimiser steps so far. epochs_total: epochs finished overall (seeds the batch order).
        samples: valid trajectory steps trained on so far.
    """

    round: int = 0
    collected: bool = False
    epoch: int = 0
    batch: int = 0
    step: int = 0
    epochs_total: int = 0
    samples: int = 0


def reopen_finished(state: TrainerState, round_epochs: list[int]) -> bool:
    """Reopen a finished single-round run (BC) resumed with more epochs (``trainer.epochs`` raised).

    A finished run's state points past its last round. When today's schedule (``round_epochs``, the epochs
    of each round) is one round with more epochs than the run trained, ``state`` is moved back into it
    (collected, at the first missing epoch) and True is returned: the extra epochs train with the batch
    order an uninterrupted longer run would have used (it follows ``epochs_total``). Returns False and leaves
    ``state`` alone for an unfinished run or one with nothing to add.

    Raises:
        ValueError: a finished run of several rounds (DAgger) whose rounds now hold more epochs than it
            trained: its earlier rounds cannot be trained again; add rounds to extend it.
    """
    if not round_epochs or state.round < len(round_epochs) or sum(round_epochs) <= state.epochs_total:
        return False
    if len(round_epochs) > 1:
        raise ValueError(
            f"resume: the finished run trained {state.epochs_total} epochs over {len(round_epochs)} rounds "
            f"and today's config gives those rounds {sum(round_epochs)}; its earlier rounds cannot be "
            "trained again: keep trainer.epochs and add rounds (trainer.rounds) to extend a DAgger run"
        )
    state.round, state.collected, state.epoch, state.batch = 0, True, state.epochs_total, 0
    return True
