"""RDP through the unchanged trainers and benchmarks: odometry agrees between acting and training, BC and
DAgger train it from ``trainers/run.py``, and ``benchmarks/run.py`` re-evaluates its checkpoint."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from agents import make_agent
from agents.rdp.labels import trajectory_odometry
from envs.datasets.store import TrajectoryStore
from envs.render import CameraSpec
from envs.rollout import RolloutHook, rollout
from trainers.data.collect import BetaMixing, StoreWriter, make_env
from trainers.data.dataset import TrajectoryDataset, collate_trajectories
from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
#: A tiny RDP for seconds-long runs on one CPU core.
TINY = {
    "rgb_size": 32, "depth_size": 32, "rgb_baseplanes": 4, "depth_baseplanes": 4, "rgb_flat_size": 64,
    "depth_flat_size": 64, "depth_spatial_embedding_size": 4, "depth_feature_size": 16, "embedding_size": 8,
    "token_size": 16, "text_layers": 1, "text_heads": 2, "hidden_size": 32, "action_embedding_size": 8,
    "odometry_embedding_size": 8, "cross_modal_layers": 1, "text_cross_modal_layers": 1,
    "cross_modal_heads": 2, "head_size": 16, "head_layers": 1, "head_heads": 2, "num_inference_steps": 5,
    "max_instruction_length": 40,
}  # fmt: skip
COMMON = [
    *(f"agent.{k}={v}" for k, v in TINY.items()), "agent=rdp", "data.width=32", "data.height=32",
    "data.batch_size=2", "data.max_episode_steps=40", "eval.n_episodes=1", "eval.final_n_episodes=1",
    "eval.max_episode_steps=12", "logger.every_steps=1", "logger.sinks=[jsonl]", "threads=1",
]  # fmt: skip


class RecordOdometry(RolloutHook):
    """Keeps the odometry observation each action was chosen from."""

    def __init__(self) -> None:
        self.odometry: list[np.ndarray] = []

    def on_step(self, env, obs, action, reward, terminated, truncated, info) -> None:
        self.odometry.append(np.asarray(obs["odometry"]).copy())


def test_the_odometry_of_a_stored_episode_equals_the_observations_bit_for_bit(tiny_dataset, tmp_path):
    env = make_env(tiny_dataset, "train", 32, 32, max_episode_steps=40)
    torch.manual_seed(0)
    # an untrained ε head samples plans that move (an untrained sample head predicts about 0: a STOP)
    agent = make_agent("rdp", {**TINY, "prediction_type": "epsilon"}, vocab=env.dataset.vocab)
    store = TrajectoryStore(tmp_path / "store")
    mixing = BetaMixing(0.5, agent, seed=1)  # a DAgger episode: the agent executes some of the actions
    recorders = []
    for slot, episode in enumerate(env.dataset.episodes[:2]):
        writer, recorder = StoreWriter(store, 1, 0.5, mixing), RecordOdometry()
        writer.slot = slot
        rollout(
            env,
            agent,
            episode_ids=[episode.episode_id],
            hooks=[mixing, writer, recorder],
            deterministic=False,
        )
        recorders.append(recorder)
    env.close()
    data = TrajectoryDataset(tmp_path / "store", tiny_dataset / "scenes", CameraSpec(width=32, height=32))
    batch = collate_trajectories([data[0], data[1]])
    odometry = trajectory_odometry(
        batch["positions"].numpy(), batch["yaws"].numpy(), batch["lengths"].numpy()
    )
    for b, recorder in enumerate(recorders):
        n = int(batch["lengths"][b])
        assert n == len(recorder.odometry) > 1
        np.testing.assert_array_equal(odometry[b, :n], np.stack(recorder.odometry))
        np.testing.assert_array_equal(odometry[b, n:], 0.0)


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / script), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_dagger_trains_rdp_with_the_agent_in_the_loop(tiny_dataset, tmp_path):
    done = _run(
        "trainers/run.py", *COMMON, "trainer=dagger", "trainer.rounds=2", "trainer.episodes_per_round=2",
        "trainer.epochs=1", "eval.every_epochs=0", f"data.dir={tiny_dataset}", "run_dir=runs/dagger",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_metrics(tmp_path / "runs" / "dagger")
    assert [r["collect/beta"] for r in rows if "collect/beta" in r] == [1.0, 0.75]
    losses = [r for r in rows if "train/loss" in r]
    assert len(losses) == 3 and all(np.isfinite(r["train/loss"]) for r in losses)
    assert {"train/loss_action", "train/loss_stop_progress", "train/accuracy"} <= set(losses[0])
    assert any("final/success" in r for r in rows)


def test_bc_trains_rdp_and_the_benchmark_re_evaluates_its_checkpoint(tiny_dataset, tmp_path):
    done = _run(
        "trainers/run.py", *COMMON, "trainer=bc", "trainer.n_episodes=2", "trainer.epochs=2",
        "eval.every_epochs=0", f"data.dir={tiny_dataset}", "run_dir=runs/bc", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_metrics(tmp_path / "runs" / "bc")
    final = next(r for r in rows if "final/success" in r)
    assert len([r for r in rows if "train/loss" in r]) == 2
    done = _run(
        "benchmarks/run.py", "checkpoint=runs/bc/checkpoints/last", "benchmark=vln_val_unseen",
        "benchmark.n_episodes=1", "benchmark.max_episode_steps=12", "benchmark.n_videos=0",
        f"data.dir={tiny_dataset}", "out_dir=runs/eval", "progress=false", "report=false", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "eval" / "summary.json").read_text())
    metrics = summary["metrics"] if "metrics" in summary else summary
    assert metrics["steps"] == final["final/steps"] and metrics["ndtw"] == final["final/ndtw"]
    done = _run(
        "scripts/vln_openloop.py", "runs/bc/checkpoints/last", "--data", str(tiny_dataset), "--episodes", "2",
        "--out", "openloop.json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads((tmp_path / "openloop.json").read_text())
    confusion = np.array(probe["confusion"])
    assert confusion.shape == (4, 4) and confusion.sum() == probe["steps"] > 0
    assert probe["agreement"] == np.trace(confusion) / probe["steps"]
    assert confusion[0].sum() == 2  # each expert episode ends on its STOP
    sensitivity = probe["condition_sensitivity"]
    assert [r["timestep"] for r in sensitivity] == [0, 5, 10, 14, 19]
    assert all(r["change"] > 0 and r["magnitude"] > 0 for r in sensitivity)
