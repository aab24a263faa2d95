"""Teacher forcing: a few updates and evaluations on a tiny generated dataset, determinism, ablations."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.datasets.store import TrajectoryStore
from trainers.base import make_trainer
from trainers.checkpoint import latest_checkpoint, list_checkpoints
from trainers.config import register_configs, to_config
from trainers.metrics import read_metrics

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
register_configs()


def tiny_config(data: Path, run_dir: Path, *overrides: str):
    """The smoke experiment (tiny agent, 32 px) on ``data``: teacher forcing on 3 expert episodes."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=smoke", "trainer=bc", "trainer.n_episodes=3", "trainer.epochs=2",
                f"data.dir={data}", f"run_dir={run_dir}", *overrides,
            ],
        )  # fmt: skip
    return to_config(cfg)


@pytest.fixture(scope="module")
def bc_run(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("bc") / "run"
    trainer = make_trainer(tiny_config(tiny_dataset, run_dir, "agent=seq2seq"))
    final = trainer.learn()
    return trainer, final, run_dir


def test_bc_trains_evaluates_and_checkpoints(bc_run):
    trainer, final, run_dir = bc_run
    store = TrajectoryStore(run_dir / "store", readonly=True)
    assert len(store) == 3 and store.rounds() == [0]
    assert all(np.array_equal(ep.actions, ep.executed) for ep in store)  # expert data only
    rows = read_metrics(run_dir)
    train = [r for r in rows if "train/loss" in r]
    assert len(train) == trainer.state.step == 2  # 3 episodes, batches of 2 (drop_last): 1 batch x 2 epochs
    assert all(np.isfinite(r["train/loss"]) and 0 <= r["train/accuracy"] <= 1 for r in train)
    assert all("time/samples_per_s" in r for r in train)
    evals = [r for r in rows if "eval/success" in r]
    assert len(evals) == 2 and all(0.0 <= r["eval/spl"] <= r["eval/success"] + 1e-9 for r in evals)
    assert final["final/episodes"] == 2 and "final/success" in final
    assert (run_dir / "eval" / "final" / "episodes.jsonl").is_file()
    assert [int(p.name) for p in list_checkpoints(run_dir)] == [0, 1, 2]
    saved = json.loads((latest_checkpoint(run_dir) / "training_state" / "config.json").read_text())
    assert saved["trainer"]["name"] == "bc" and saved["agent"]["name"] == "seq2seq"
    assert (run_dir / "config.yaml").read_text().count("name: seq2seq") == 1


def test_train_mode_is_restored_after_evaluation(bc_run, tiny_dataset, tmp_path):
    _, _, first = bc_run
    shutil.copytree(first, tmp_path / "copy", symlinks=True)
    trainer = make_trainer(tiny_config(tiny_dataset, tmp_path / "copy", "agent=seq2seq", "resume=true"))
    trainer.setup()
    assert trainer.state.step == 2 and trainer.state.round == 1  # resumed at the end of the finished run
    trainer.agent.train()
    trainer.evaluate(1, tag="check")
    assert trainer.agent.training
    trainer.agent.eval()
    trainer.evaluate(1, tag="check")
    assert not trainer.agent.training
    trainer.close()


def test_two_runs_with_one_seed_give_the_same_losses(bc_run, tiny_dataset, tmp_path):
    _, _, first = bc_run
    trainer = make_trainer(
        tiny_config(tiny_dataset, tmp_path / "again", "agent=seq2seq", f"data.init_store={first / 'store'}")
    )
    trainer.learn()
    losses = [
        [r["train/loss"] for r in read_metrics(d) if "train/loss" in r] for d in (first, tmp_path / "again")
    ]
    assert losses[0] == losses[1]


def test_ablation_blanks_inputs_for_training_and_evaluation(bc_run, tiny_dataset, tmp_path):
    _, _, first = bc_run
    overrides = ["agent=cma", "ablation.blank=[instruction,vision]", f"data.init_store={first / 'store'}"]
    trainer = make_trainer(tiny_config(tiny_dataset, tmp_path / "abl", *overrides))
    trainer.setup()
    seen, act, loss = [], trainer.agent.act, trainer.agent.loss

    def spy_act(obs, deterministic=True):
        seen.append(
            (list(obs["instruction_text"]), float(np.abs(obs["rgb"]).sum() + np.abs(obs["depth"]).sum()))
        )
        return act(obs, deterministic)

    def spy_loss(batch):
        seen.append((list(batch["instruction_text"]), float(batch["rgb"].sum() + batch["depth"].sum())))
        return loss(batch)

    trainer.agent.act, trainer.agent.loss = spy_act, spy_loss
    trainer.evaluate(1)
    batch = next(iter(trainer.loader()[0]))
    assert any(batch["instruction_text"]) and float(batch["rgb"].sum()) > 0
    trainer.train_step(batch)
    assert len(seen) > 1 and all(set(texts) == {""} and total == 0.0 for texts, total in seen)
    trainer.close()
