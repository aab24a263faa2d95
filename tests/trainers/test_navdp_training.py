"""NavDP through the unchanged trainers and benchmarks: behaviour cloning on windows of pointnav expert
episodes from ``trainers/run.py experiment=smoke_navdp``, then ``benchmarks/run.py`` re-evaluates the
checkpoint on the System-1 pointnav and imagenav benchmarks."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / script), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("navdp")
    done = _run(
        "trainers/run.py", "experiment=smoke_navdp", "agent=navdp", "trainer=bc", f"data.dir={tiny_dataset}",
        "trainer.n_episodes=2", "trainer.epochs=1", "eval.every_epochs=0", "eval.final_n_episodes=1",
        "eval.max_episode_steps=4", "agent.n_waypoints=3", "logger.sinks=[jsonl]", f"run_dir={tmp / 'run'}",
        cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "run"


def test_bc_trains_navdp_on_pointnav_windows(run):
    rows = read_metrics(run)
    losses = [r for r in rows if "train/loss" in r]
    assert len(losses) >= 3 and all(np.isfinite(r["train/loss"]) for r in losses)
    first = losses[0]
    # The pointnav store has no critic labels: the critic term is skipped and logged as such.
    assert first["train/critic_skipped"] == 1.0 and first["train/loss_critic"] == 0.0
    # Every window has a point goal and, through the declared goal camera, an image goal.
    assert first["train/goals_point"] == 1.0 and first["train/goals_image"] == 1.0
    assert first["train/loss"] == pytest.approx(
        0.8 * first["train/loss_action"] + 0.5 * first["train/loss_aux"], rel=1e-3
    )
    final = next(r for r in rows if "final/success" in r)
    assert final["final/episodes"] == 1 and "final/collisions" in final
    config = json.loads((run / "checkpoints" / "last" / "agent" / "config.json").read_text())
    assert config["name"] == "navdp" and config["config"]["image_size"] == 32


@pytest.mark.parametrize("benchmark", ["system1_pointnav", "system1_imagenav"])
def test_the_benchmark_re_evaluates_the_checkpoint(run, tiny_dataset, tmp_path, benchmark):
    done = _run(
        "benchmarks/run.py", f"checkpoint={run / 'checkpoints' / 'last'}", f"benchmark={benchmark}",
        "benchmark.n_episodes=1", "benchmark.max_episode_steps=3", "benchmark.n_videos=0",
        f"data.dir={tiny_dataset}", f"out_dir={tmp_path / 'eval'}", "progress=false", "report=false",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["benchmark"] == benchmark and summary["agent"] == "navdp" and summary["count"] == 1
    episodes = [json.loads(line) for line in (tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()]
    actions = episodes[0]["actions"]
    assert 1 <= len(actions) <= 3 and all(np.array(a).shape == (3, 3) for a in actions)  # n_waypoints=3


def test_trajectory_augmentation_is_refused_for_window_samples(tiny_dataset, tmp_path):
    done = _run(
        "trainers/run.py", "experiment=smoke_navdp", "agent=navdp", "trainer=bc", f"data.dir={tiny_dataset}",
        "trainer.n_episodes=1", "trainer.epochs=1", "eval.every_epochs=0", "eval.final=false",
        "data.augment=true", f"run_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0 and "data.augment colours whole trajectories" in done.stderr


def test_the_open_loop_check_replays_the_run_s_own_windows(run, tmp_path):
    spec = importlib.util.spec_from_file_location("navdp_openloop", ROOT / "scripts" / "navdp_openloop.py")
    openloop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(openloop)
    main, window_kind = openloop.main, openloop.window_kind
    assert (
        window_kind(np.array([0.02, 0.0, -0.6])) == "turn"
        and window_kind(np.array([0.3, 0.0, 0.6])) == "move"
    )
    out = tmp_path / "openloop.json"
    result = main([str(run), "--windows", "3", "--waypoint", "2", "--out", str(out)])
    assert json.loads(out.read_text())["move"] == result["move"] and result["move"]["count"] == 3
    assert torch.is_grad_enabled()  # the check leaves the process as it found it
    for kind in ("turn", "move"):
        r = result[kind]
        assert 0 <= r["count"] <= 3
        if r["count"]:
            errors = np.array([r["best"], r["mean"], r["still"]])
            assert errors.shape == (3, 3) and np.isfinite(errors).all() and (errors >= 0).all()
            assert r["depth_sensitivity"] >= 0
    with pytest.raises(SystemExit):
        main([str(run), "--waypoint", "25"])
