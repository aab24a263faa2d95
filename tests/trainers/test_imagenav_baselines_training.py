"""GNM, ViNT and NoMaD through the unchanged trainers and benchmarks: behaviour cloning on the windows of a
generated System-1 store (``data.task=imagenav``, no collection) with the final evaluation on
``system1_imagenav``, then ``benchmarks/run.py`` runs the checkpoint on ``system1_explore``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.datasets.system1 import generate_system1
from envs.datasets.system1_work import System1Spec
from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / script), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("s1")
    generate_system1(out, System1Spec(1, 0, 0, 1, n_eval_scenes=1, eval_episodes_per_scene=2), progress=False)
    return out


@pytest.mark.parametrize("name", ["gnm", "vint", "nomad"])
def test_trains_on_the_system1_store_and_runs_both_benchmarks(data, tmp_path, name):
    run = tmp_path / "run"
    done = _run(
        "trainers/run.py", f"experiment=smoke_{name}", f"agent={name}", "trainer=bc", "trainer.n_episodes=0",
        "trainer.epochs=1", f"data.dir={data}", f"data.init_store={data / 'trajectories'}",
        "data.task=imagenav", "data.batch_size=32", "eval.split=cluttered_easy",
        "eval.benchmark=system1_imagenav", "eval.every_epochs=0", "eval.max_episode_steps=3",
        "agent.n_waypoints=2", "logger.sinks=[jsonl]", f"run_dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_metrics(run)
    losses = [r for r in rows if "train/loss" in r]
    assert len(losses) >= 2 and all(np.isfinite(r["train/loss"]) for r in losses)
    assert losses[0]["train/loss_distance"] > 0
    if name == "nomad":
        assert 0.0 <= losses[0]["train/goal_masked"] <= 1.0 and losses[0]["train/loss_diffusion"] > 0
    else:
        assert losses[0]["train/loss_action"] > 0
    final = next(r for r in rows if "final/success" in r)
    assert final["final/episodes"] == 1 and 1 <= final["final/steps"] <= 3
    ckpt = run / "checkpoints" / "last"
    config = json.loads((ckpt / "agent" / "config.json").read_text())
    assert config["name"] == name and config["config"]["n_waypoints"] == 2

    done = _run(
        "benchmarks/run.py", f"checkpoint={ckpt}", "benchmark=system1_explore",
        "benchmark.split=cluttered_easy", "benchmark.n_episodes=1", "benchmark.max_episode_steps=3",
        "benchmark.n_videos=0", f"data.dir={data}",
        f"out_dir={tmp_path / 'explore'}", "progress=false", "report=false", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "explore" / "summary.json").read_text())
    assert summary["benchmark"] == "system1_explore" and summary["agent"] == name and summary["count"] == 1
    episode = json.loads((tmp_path / "explore" / "episodes.jsonl").read_text().splitlines()[0])
    assert 1 <= len(episode["actions"]) <= 3 and all(np.array(a).shape == (2, 3) for a in episode["actions"])
    assert "explored_area" in summary["metrics"]
