"""A training run records its data's digest; evaluating it on other data says so in summary.json and the
report."""

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from agents.base import Agent
from benchmarks.base import BENCHMARKS
from benchmarks.report import write_report
from envs.datasets.digest import dataset_digest
from envs.datasets.r2r import load_episodes, save_episodes
from trainers.base import make_trainer
from trainers.checkpoint import list_checkpoints
from trainers.config import register_configs, to_config

ROOT = Path(__file__).resolve().parents[2]
register_configs()


@pytest.fixture(scope="module")
def run_dir(tiny_dataset, tmp_path_factory):
    """Teacher forcing on 2 expert episodes, one epoch, no evaluation."""
    run = tmp_path_factory.mktemp("provenance") / "run"
    overrides = [
        "experiment=smoke", "agent=seq2seq", "trainer=bc", "trainer.n_episodes=2", "trainer.epochs=1",
        "eval.every_epochs=0", "eval.final=false", f"data.dir={tiny_dataset}", f"run_dir={run}",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        make_trainer(to_config(compose("train", overrides=overrides))).learn()
    return run


def _evaluate(data: Path, checkpoint: Path, out: Path) -> dict:
    bench = BENCHMARKS.get("vln_val_unseen").build(data, n_episodes=1, max_episode_steps=5)
    try:
        summary, _ = bench.run(Agent.load(checkpoint / "agent"), out, checkpoint=checkpoint)
    finally:
        bench.close()
    assert json.loads((out / "summary.json").read_text()) == summary
    return summary


def test_training_records_the_digest_of_its_data(run_dir, tiny_dataset):
    digest = dataset_digest(tiny_dataset)
    assert json.loads((run_dir / "dataset.json").read_text())["digest"] == digest
    checkpoints = list_checkpoints(run_dir)
    assert checkpoints
    for ckpt in checkpoints:
        assert json.loads((ckpt / "training_state" / "dataset.json").read_text())["digest"] == digest


def test_evaluation_on_other_data_says_so(run_dir, tiny_dataset, tmp_path):
    checkpoint = list_checkpoints(run_dir)[-1]
    same = _evaluate(tiny_dataset, checkpoint, tmp_path / "same")
    assert same["dataset_digest"] == dataset_digest(tiny_dataset) and "dataset_mismatch" not in same
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    split = load_episodes(other / "val_unseen")
    split.episodes[-1].instruction.instruction_text += " and stop there"
    save_episodes(split, other, "val_unseen")
    moved = _evaluate(other, checkpoint, tmp_path / "moved")
    assert moved["dataset_digest"] == dataset_digest(other) != same["dataset_digest"]
    expected = {"trained": same["dataset_digest"], "evaluated": moved["dataset_digest"]}
    assert moved["dataset_mismatch"] == expected
    report = write_report([tmp_path / "same", tmp_path / "moved"], out=tmp_path / "report").read_text()
    warnings = [line for line in report.splitlines() if line.startswith("> **Warning, dataset mismatch:**")]
    assert len(warnings) == 2  # the checkpoint on other data, and two datasets in one report
    assert moved["dataset_mismatch"]["trained"][:19] in warnings[0]
