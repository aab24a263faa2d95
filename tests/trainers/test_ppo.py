"""PPO for DD-PPO: GAE by hand, a PPO update lowers its loss on a real rollout, the preemption counter over
two gloo ranks, a resumed run makes the same next update, and the SB3 client logs a learning curve."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir

from agents import make_agent
from agents.base import Agent
from agents.baselines.ddppo.ppo import ppo_loss
from trainers.base import make_trainer
from trainers.config import register_configs, to_config
from trainers.metrics import read_metrics
from trainers.rl.envs import make_vector_env
from trainers.rl.preemption import PreemptionCounter
from trainers.rl.rollout import RolloutBuffer, compute_gae, recurrent_minibatches

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"baseplanes": 4, "hidden_size": 16, "image_size": 64}

register_configs()


def test_gae_on_a_three_step_example_computed_by_hand():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[False], [True], [False]])
    adv, ret = compute_gae(rewards, values, dones, torch.tensor([0.6]), gamma=0.9, lam=0.8)
    # t=2: 2 + 0.9·0.6 − 0.3 = 2.24; t=1 ends an episode: 0 − 0.4 = −0.4; t=0: 1 + 0.9·0.4 − 0.5 + 0.72·(−0.4)
    assert torch.allclose(adv[:, 0], torch.tensor([0.572, -0.4, 2.24]), atol=1e-6)
    assert torch.allclose(ret[:, 0], torch.tensor([1.072, 0.0, 2.54]), atol=1e-6)


def _rollout(agent, envs, steps):
    obs, _ = envs.reset(seed=0)
    agent.reset(envs.num_envs)
    buffer = RolloutBuffer(agent.memory()["state"])
    for _ in range(steps):
        inputs, memory = agent.inputs(obs), agent.memory()
        out = agent.step(inputs)
        obs, rewards, term, trunc, _ = envs.step(out["actions"].numpy())
        dones = np.logical_or(term, trunc)
        buffer.add(
            **inputs, prev_actions=memory["prev_actions"], not_done=memory["not_done"],
            actions=out["actions"], old_log_probs=out["log_probs"], old_values=out["values"],
            rewards=torch.as_tensor(rewards, dtype=torch.float32), dones=torch.as_tensor(dones),
        )  # fmt: skip
        if dones.any():
            fresh, _ = envs.reset(options={"reset_mask": dones})
            obs = {k: np.where(dones.reshape(-1, *[1] * (v.ndim - 1)), fresh[k], v) for k, v in obs.items()}
            agent.reset(envs.num_envs, np.flatnonzero(dones))
    return buffer.finish(torch.zeros(envs.num_envs), 0.99, 0.95)


def test_ppo_updates_lower_the_loss_of_a_real_rollout(tiny_dataset):
    torch.manual_seed(0)
    agent = make_agent("ddppo", SMALL)
    envs = make_vector_env(tiny_dataset, "train", 2, 32, max_episode_steps=20, vector="sync")
    try:
        data = _rollout(agent, envs, 12)
    finally:
        envs.close()
    assert data["depth"].shape == (12, 2, 1, 64, 64) and data["returns"].shape == (12, 2)
    batches = list(recurrent_minibatches(data, 2, torch.Generator().manual_seed(0)))
    assert [b["state"].shape[0] for b in batches] == [1, 1] and batches[0]["actions"].shape == (12, 1)
    with torch.no_grad():
        before, info = ppo_loss(agent, data)
    assert abs(info["approx_kl"]) < 1e-5  # the rollout's own policy: ratio 1
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3)
    for _ in range(8):
        loss, _ = agent.loss(data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after, _ = ppo_loss(agent, data)
    assert float(after) < float(before) - 1e-3


def _counter_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        half = PreemptionCounter(2, sync_frac=0.5, min_fraction=0.25)
        habitat = PreemptionCounter(2, sync_frac=0.6, min_fraction=0.25)
        result = {"before": half.should_stop(0, 8, 8)}
        torch.distributed.barrier()
        if rank == 0:
            result["count"] = half.finish(0)  # rank 0 is done collecting for update 0
        torch.distributed.barrier()
        result["early"] = half.should_stop(0, 1, 8)  # below the 25 % minimum
        result["stop"] = half.should_stop(0, 2, 8)
        result["habitat"] = habitat.should_stop(0, 2, 8)  # 1 of 2 ranks is not more than 0.6 · 2
        result["next_update"] = half.should_stop(1, 8, 8)  # each update counts afresh
        torch.distributed.barrier()
        Path(out, f"{rank}.json").write_text(json.dumps(result))
    finally:
        torch.distributed.destroy_process_group()


def test_preemption_counter_over_two_gloo_ranks(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_counter_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        r = json.loads((tmp_path / f"{rank}.json").read_text())
        assert r == {
            "before": False,
            "early": False,
            "stop": True,
            "habitat": False,
            "next_update": False,
        } | ({"count": 1} if rank == 0 else {})
    assert not PreemptionCounter(1, sync_frac=0.1).should_stop(0, 8, 8)  # one rank never preempts itself


def _train(data_dir, run_dir, *extra):
    overrides = [
        "agent=ddppo", "trainer=ppo", f"data.dir={data_dir}", "data.task=pointnav", "data.width=32",
        "data.height=32", "data.max_episode_steps=20", *(f"agent.{k}={v}" for k, v in SMALL.items()),
        "trainer.num_envs=2", "trainer.rollout_steps=8", "trainer.num_mini_batch=2", "trainer.total_steps=48",
        "trainer.checkpoint_every=1", "trainer.vector=sync", "eval.final=false", "threads=1",
        f"run_dir={run_dir}", *extra,
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        config = to_config(compose("train", overrides=overrides))
    make_trainer(config).learn()


def test_a_resumed_run_makes_the_same_next_update(tiny_dataset, tmp_path):
    _train(tiny_dataset, tmp_path / "a")
    ckpts = tmp_path / "a" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.name[0].isdigit()) == ["000001", "000002", "000003"]
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    for name in ("000002", "000003"):
        shutil.rmtree(tmp_path / "b" / "checkpoints" / name)
    _train(tiny_dataset, tmp_path / "b", "resume=true")
    for name in ("000002", "000003"):
        a = Agent.load(ckpts / name / "agent").state_dict()
        b = Agent.load(tmp_path / "b" / "checkpoints" / name / "agent").state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    one = Agent.load(ckpts / "000001" / "agent").state_dict()
    assert not all(torch.equal(one[k], a[k]) for k in one)  # updates do change the weights
    rows = [r for r in read_metrics(tmp_path / "b") if "train/loss" in r]
    assert [r["step"] for r in rows] == [16, 32, 48]
    first = [r for r in read_metrics(tmp_path / "a") if "train/loss" in r]
    assert [r["train/loss"] for r in rows] == [r["train/loss"] for r in first]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sb3_client_logs_a_learning_curve(tiny_dataset, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from sb3_pointnav import main
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    final = main([
        "--data-dir", str(tiny_dataset), "--run-dir", str(tmp_path / "sb3"), "--total-steps", "256",
        "--num-envs", "2", "--rollout-steps", "64", "--size", "64", "--max-episode-steps", "20",
        "--eval-episodes", "2",
    ])  # fmt: skip
    rows = read_metrics(tmp_path / "sb3")
    curve = [r for r in rows if "rollout/episodes" in r]
    assert [r["step"] for r in curve] == [128, 256]
    assert all(r["rollout/episodes"] > 0 and 0.0 <= r["rollout/success"] <= 1.0 for r in curve)
    assert final["final/episodes"] == 2 and 0.0 <= final["final/spl"] <= final["final/success"] <= 1.0
    assert (tmp_path / "sb3" / "sb3_ppo.zip").is_file()


@pytest.mark.slow  # two torchrun ranks with two environment processes each: about a minute
def test_two_torchrun_ranks_train_with_preemption(tiny_dataset, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
        str(ROOT / "trainers" / "run.py"), "agent=ddppo", "trainer=ppo", f"data.dir={tiny_dataset}",
        "data.task=pointnav", "data.width=32", "data.height=32", "data.max_episode_steps=20",
        *(f"agent.{k}={v}" for k, v in SMALL.items()), "trainer.num_envs=2", "trainer.rollout_steps=8",
        "trainer.num_mini_batch=2", "trainer.total_steps=64", "trainer.sync_frac=0.5", "eval.final=false",
        "device=cpu", "threads=1", f"run_dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(args, check=True, cwd=ROOT, env=env, capture_output=True, timeout=400)
    rows = [r for r in read_metrics(tmp_path / "run") if "train/loss" in r]
    steps = [r["step"] for r in rows]
    increments = np.diff([0, *steps])
    # Each update adds both ranks' steps: 2 envs × (2..8 steps, preemption allowing ≥ 25 % of 8) per rank.
    assert len(rows) >= 2 and all(2 * 2 * 2 <= d <= 2 * 2 * 8 for d in increments), steps
    assert all(2 <= r["rollout/steps"] <= 8 for r in rows)
    assert steps[-1] >= 64
