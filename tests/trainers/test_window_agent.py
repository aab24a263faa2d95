"""A waypoint agent on windowed samples (``tests/support/window_probe.py``) trains through ``trainers/run.py``
and is evaluated by the System-1 benchmark, with every hook of the contract in play."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = {"NAVGYM_PLUGINS": "tests.support.window_probe", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **PLUGIN}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("window_probe")
    done = _run(
        "trainers/run.py", "agent=window_probe", "trainer=bc", f"data.dir={tiny_dataset}",
        "data.task=pointnav",
        "data.action_mode=discrete", "data.width=32", "data.height=32", "data.batch_size=8",
        "data.num_workers=1", "trainer.n_episodes=4", "trainer.epochs=4", "eval.every_epochs=0",
        "eval.final_n_episodes=2", "eval.max_episode_steps=10", "logger.every_steps=1", "optim.lr=1e-3",
        "threads=1", f"run_dir={tmp / 'run'}", cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "run"


def test_it_trains_on_windows_and_its_loss_falls(run):
    rows = read_metrics(run)
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) >= 8
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, losses
    final = next(r for r in rows if "final/success" in r)
    assert final["final/episodes"] == 2 and "final/collisions" in final  # the System-1 benchmark's measures
    summary = json.loads((run / "eval" / "final" / "summary.json").read_text())
    assert summary["benchmark"] == "system1_pointnav" and summary["task"] == "pointnav"
    episodes = [
        json.loads(line) for line in (run / "eval" / "final" / "episodes.jsonl").read_text().splitlines()
    ]
    assert all(len(a) == 8 and len(a[0]) == 3 for e in episodes for a in e["actions"])  # 8 waypoints per step


def test_parameter_groups_leave_the_frozen_encoder_and_the_ema_follows_the_weights(run):
    checkpoints = sorted(p for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    first = load_file(str(checkpoints[0] / "agent" / "model.safetensors"))
    last = load_file(str(checkpoints[-1] / "agent" / "model.safetensors"))
    assert int(checkpoints[0].name) == 0 and int(checkpoints[-1].name) > 0
    assert json.loads((checkpoints[-1] / "agent" / "window.json").read_text())["horizon"] == 8  # save_extra
    assert (first["net.frozen.weight"] == last["net.frozen.weight"]).all()  # not in any parameter group
    assert not (first["net.head.0.weight"] == last["net.head.0.weight"]).all()
    # The EMA moved from its start toward the trained weights but lags them.
    assert not (first["ema.module.head.0.weight"] == last["ema.module.head.0.weight"]).all()
    assert not (last["ema.module.head.0.weight"] == last["net.head.0.weight"]).all()


def test_the_checkpoint_is_evaluated_by_the_system1_benchmark_and_refused_by_vln(run, tiny_dataset, tmp_path):
    common = [f"checkpoint={run / 'checkpoints' / 'last'}", f"data.dir={tiny_dataset}", "report=false"]
    done = _run(
        "benchmarks/run.py", *common, "benchmark=system1_pointnav", "benchmark.n_episodes=1",
        "benchmark.max_episode_steps=5", f"out_dir={tmp_path / 'pointnav'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "pointnav" / "summary.json").read_text())
    assert summary["count"] == 1 and summary["camera"]["width"] == 32
    done = _run(
        "benchmarks/run.py", *common, "benchmark=vln_val_unseen", f"out_dir={tmp_path / 'vln'}", cwd=tmp_path
    )
    assert done.returncode != 0 and "does not accept task 'vln'" in done.stderr


def test_a_task_the_agent_does_not_declare_is_refused_before_training(tiny_dataset, tmp_path):
    done = _run(
        "trainers/run.py", "experiment=smoke", "agent=cma", "trainer=bc", f"data.dir={tiny_dataset}",
        "data.task=pointnav", f"run_dir={tmp_path / 'r'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0 and "agent 'cma' (data.task) does not accept task 'pointnav'" in done.stderr
