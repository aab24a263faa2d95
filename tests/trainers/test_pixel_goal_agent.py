"""An agent declaring ``SampleSpec(kind="pixel_goal")`` (``tests/support/pixel_goal_probe.py``) trains through
``trainers/run.py`` on System-2 queries built from the expert episodes the trainer collects."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = {"NAVGYM_PLUGINS": "tests.support.pixel_goal_probe", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pixel_goal_probe")
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "trainers/run.py"), "agent=pixel_goal_probe", "trainer=bc",
            f"data.dir={tiny_dataset}", "data.width=32", "data.height=32", "data.batch_size=4",
            "data.num_workers=1", "trainer.n_episodes=4", "trainer.epochs=3", "eval.every_epochs=0",
            "eval.final=false", "logger.every_steps=1", "optim.lr=3e-3", "threads=1",
            f"run_dir={tmp / 'run'}",
        ],
        cwd=tmp, env={**os.environ, **PLUGIN}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "run"


def test_it_trains_on_pixel_goal_queries_made_in_the_loader_workers(run):
    log = (run / "train.log").read_text()
    counts = re.search(r"pixel-goal samples of \S+: (\d+) pixel, (\d+) turn, (\d+) stop \(x5\)", log)
    assert counts, log[-2000:]
    n_pixel, n_turn, n_stop = (int(g) for g in counts.groups())
    assert n_pixel > 0 and n_stop == 4 * 5  # 4 expert episodes, each STOP query 5 times
    rows = [r for r in read_metrics(run) if "train/loss" in r]
    assert len(rows) == 3 * ((n_pixel + n_turn + n_stop) // 4)  # 3 epochs of full batches of 4
    assert all(r["train/worker_items"] == 1.0 for r in rows)  # item_transform ran in the worker
    assert max(r["train/max_history"] for r in rows) == 8  # history ragged up to 8 frames, as lists
    share = sum(r["train/pixel_share"] for r in rows) / len(rows)
    assert abs(share - n_pixel / (n_pixel + n_turn + n_stop)) < 0.15
    first = sum(r["train/loss_kind"] for r in rows[:5]) / 5
    last = sum(r["train/loss_kind"] for r in rows[-5:]) / 5
    assert last < first, [r["train/loss_kind"] for r in rows]
