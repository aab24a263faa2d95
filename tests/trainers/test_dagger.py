"""DAgger: rounds with β = p^i aggregated into one store, training on the aggregate, evaluation."""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.datasets.store import TrajectoryStore
from trainers.base import make_trainer
from trainers.config import register_configs, to_config
from trainers.dagger import DAggerTrainer, beta_schedule
from trainers.metrics import read_metrics

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
register_configs()


def dagger_config(data: Path, run_dir: Path, *overrides: str):
    """The smoke experiment with DAgger: 3 rounds of 3 episodes, p = 0.5, one epoch each."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=smoke", "agent=cma", "trainer=dagger", "trainer.rounds=3",
                "trainer.episodes_per_round=3", "trainer.p=0.5", "trainer.epochs=1", "eval.every_epochs=0",
                "data.max_episode_steps=30", f"data.dir={data}", f"run_dir={run_dir}", *overrides,
            ],
        )  # fmt: skip
    return to_config(cfg)


def test_beta_schedule_is_p_to_the_round():
    assert beta_schedule(4, 0.75) == [1.0, 0.75, 0.5625, 0.421875]
    assert beta_schedule(2, 0.5, offset=1) == [0.5, 0.25]


@pytest.fixture(scope="module")
def dagger_run(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dagger") / "run"
    trainer = make_trainer(dagger_config(tiny_dataset, run_dir))
    assert isinstance(trainer, DAggerTrainer)
    return trainer, trainer.learn(), run_dir


def test_dagger_aggregates_rounds_with_beta_p_to_the_i(dagger_run):
    trainer, final, run_dir = dagger_run
    store = TrajectoryStore(run_dir / "store", readonly=True)
    assert store.rounds() == [0, 1, 2]
    assert [len(store.filter(round=r)) for r in (0, 1, 2)] == [3, 3, 3]
    for ep in store:
        assert ep.extras["beta"] == 0.5**ep.round
        assert ep.n_steps <= 30 and len(ep.actions) == len(ep.executed)
    round0 = [ep for ep in store if ep.round == 0]
    assert all(np.array_equal(ep.actions, ep.executed) for ep in round0)  # round 0: pure expert
    later = np.concatenate([ep.actions != ep.executed for ep in store if ep.round == 2])
    assert later.any()  # β = 0.25: the agent's sampled actions were executed
    rows = read_metrics(run_dir)
    collected = [r for r in rows if "collect/beta" in r]
    assert [r["collect/beta"] for r in collected] == [1.0, 0.5, 0.25]
    assert [r["collect/store_episodes"] for r in collected] == [3, 6, 9]


def test_dagger_trains_on_the_aggregate(dagger_run):
    trainer, final, run_dir = dagger_run
    # Per round: the aggregate of 3, 6, 9 episodes in batches of 2 (drop_last) -> 1 + 3 + 4 updates.
    assert trainer.state.step == 8 and trainer.state.epochs_total == 3 and trainer.state.round == 3
    losses = [r["train/loss"] for r in read_metrics(run_dir) if "train/loss" in r]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert final["final/episodes"] == 2 and 0.0 <= final["final/success"] <= 1.0


def test_dagger_reuses_an_expert_store_as_its_first_round(dagger_run, tiny_dataset, tmp_path):
    from trainers.data.collect import collect_expert

    collect_expert(tiny_dataset, "train", tmp_path / "expert", n_episodes=3, progress=False)
    overrides = ["trainer.rounds=1", "trainer.episodes_per_round=5", "trainer.first_round_episodes=3"]
    overrides += [f"data.init_store={tmp_path / 'expert'}", "eval.final=false"]
    trainer = make_trainer(dagger_config(tiny_dataset, tmp_path / "run", *overrides))
    trainer.learn()
    rows = read_metrics(tmp_path / "run")
    collected = [r for r in rows if "collect/episodes" in r]
    assert [r["collect/episodes"] for r in collected] == [3]  # the round: the expert store's episodes
    assert [r["collect/steps_per_s"] for r in collected] == [0.0]  # nothing re-collected
    assert len(TrajectoryStore(tmp_path / "run" / "store", readonly=True)) == 3
