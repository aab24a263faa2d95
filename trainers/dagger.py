"""DAgger for VLN (Ross et al. 2011, as in VLN-CE's ``DaggerTrainer``; anchors Part B §1.7).

Round ``i = 0..R-1`` runs ``episodes_per_round`` episodes in which each step executes the expert's action
with probability β = p^(i + beta_offset) and the agent's *sampled* action otherwise, labels every step with
the expert's action, appends the episodes (tagged with round ``i``) to the same store, and trains ``epochs``
epochs on the aggregate of all rounds so far. Round 0 (β = 1) is pure expert data, so a store of expert
episodes collected beforehand with the same seed and count is reused as is. VLN-CE: 10 rounds × 5,000
episodes, p = 0.75, 4 epochs (``experiment=vlnce_dagger``).
"""

from __future__ import annotations

from trainers.base import TRAINERS, Trainer
from trainers.config import DAggerConfig
from trainers.schedule import Round


def beta_schedule(rounds: int, p: float, offset: int = 0) -> list[float]:
    """β of each round: ``p ** (i + offset)`` for ``i = 0..rounds-1``."""
    return [float(p) ** (i + offset) for i in range(int(rounds))]


@TRAINERS.register("dagger")
class DAggerTrainer(Trainer):
    """DAgger: R rounds of β-mixed collection into an aggregated store, each followed by ``epochs`` epochs."""

    name = "dagger"
    config_class = DAggerConfig

    def rounds(self) -> list[Round]:
        """Round ``i`` collects ``episodes_per_round`` episodes with β = p^(i + beta_offset) (round 0:
        ``first_round_episodes`` when set and β = 1)."""
        c = self.tcfg
        betas = beta_schedule(c.rounds, c.p, c.beta_offset)
        rounds = [Round(i, beta, c.episodes_per_round, c.epochs) for i, beta in enumerate(betas)]
        if c.first_round_episodes is not None and betas[0] == 1.0:
            rounds[0].n_episodes = c.first_round_episodes
        return rounds
