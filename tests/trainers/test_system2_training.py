"""System 2: a tiny model learns a handful of items, the navigator hook in real rollouts, the launcher."""

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs  # noqa: F401  (registers the environment ids)
from agents import make_agent
from agents.base import STOP
from agents.contract import agent_sim_config, interface_of
from agents.system2 import System2Agent
from envs.navigator import Navigator
from envs.rollout import rollout
from trainers.data.windows import collate_windows

SIZE = 48
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train" / "base_train" / "qwenvl_train" / "train_system2.sh"
ITEMS = [
    ("walk to the sofa", "pixel", "40 21"),
    ("turn around and wait", "turn", "←←"),
    ("stop at the door", "stop", "STOP"),
    ("go into the kitchen", "pixel", "7 30"),
]


def items(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k, (text, kind, answer) in enumerate(ITEMS):
        out.append({
            "episode_id": str(k), "step": 4 * k, "instruction_text": text,
            "history": rng.integers(0, 256, (k, SIZE, SIZE, 3), dtype=np.uint8),
            "current": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
            "lookdown": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
            "lookdown_depth": np.full((SIZE, SIZE, 1), 2.0, np.float32), "kind": kind, "answer": answer,
            "pixel": np.array([int(a) for a in answer.split()] if kind == "pixel" else [-1, -1]),
        })  # fmt: skip
    return out


def test_tiny_model_loss_falls_in_a_few_steps():
    torch.manual_seed(0)
    agent = make_agent("system2", instructions=[t for t, _, _ in ITEMS])
    transform = agent.item_transform()
    batch = collate_windows([transform(it) for it in items()])
    before = {k: (v.clone() if isinstance(v, torch.Tensor) else list(v)) for k, v in batch.items()}
    optim = torch.optim.Adam([g for group in agent.param_groups() for g in group["params"]], lr=3e-3)
    losses = []
    agent.train()
    for _ in range(12):
        loss, info = agent.loss(batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
        assert np.isfinite(info["loss/ce"]) and 0.0 <= info["accuracy"] <= 1.0
    assert losses[-1] < 0.5 * losses[0], losses
    for k, v in before.items():  # the batch is not modified
        assert torch.equal(v, batch[k]) if isinstance(v, torch.Tensor) else len(v) == len(batch[k])
    # raw items (no item transform) give the same loss as encoded ones
    agent.eval()
    raw = collate_windows(items())
    with torch.no_grad():
        assert torch.allclose(agent.loss(raw)[0], agent.loss(batch)[0])


class GoalFollower:
    """A planner + follower policy for the navigator hook: walks to a fixed goal through the navigator."""

    requires_navigator = True

    def __init__(self, goal):
        self.goal, self.calls = goal, 0

    def reset(self, n_envs, env_ids=None):
        self.calls = 0

    def act(self, obs, deterministic=True):
        (navigator,) = obs["navigator"]
        assert isinstance(navigator, Navigator)
        self.calls += 1
        return np.array([navigator.follower_action(navigator.snap(self.goal), goal_radius=0.5)])


@pytest.fixture(scope="module")
def env(tiny_dataset):
    sim_config = agent_sim_config(interface_of(System2Agent), SIZE, SIZE, 90.0)
    env = gym.make(
        "NavGym/VLN-v0", episodes=tiny_dataset / "train", width=SIZE, height=SIZE, sim_config=sim_config,
        max_episode_steps=200,
    )  # fmt: skip
    yield env
    env.close()


def test_navigator_hook_walks_a_follower_to_the_goal(env):
    env.reset(seed=0)
    goal = np.asarray(env.unwrapped.episode.goals[0].position, np.float64)
    policy = GoalFollower(goal)
    (result,) = rollout(env, policy, episode_ids=[env.unwrapped.episode.episode_id])
    assert result.actions[-1] == STOP and policy.calls == len(result.actions)
    assert result.metrics["success"] == 1.0 and result.metrics["distance_to_goal"] < 0.5


def test_system2_acts_in_a_real_rollout_with_its_history(env):
    torch.manual_seed(0)
    agent = make_agent("system2", instructions=["walk to the sofa"], config={"max_new_tokens": 4})
    env.reset(seed=0)
    env_id = env.unwrapped.episode.episode_id
    short = gym.wrappers.TimeLimit(env.unwrapped, max_episode_steps=5)
    (result,) = rollout(short, agent, episode_ids=[env_id])
    assert 1 <= len(result.actions) <= 5 and set(result.actions) <= {0, 1, 2, 3}
    memory = agent.memory[0]
    assert len(memory.frames) == len(result.actions) and memory.frames[0].shape == (SIZE, SIZE, 3)
    assert agent.training  # the rollout restores train mode
    agent.reset(1, env_ids=[0])
    assert agent.memory[0].frames == []


def _launch(*args, cwd):
    env = {**os.environ, "PYTHON": sys.executable, "TORCHRUN": "torchrun"}
    env.pop("SLURM_NNODES", None)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_launcher_dry_runs_and_composes(tmp_path):
    done = _launch("--name", "s2", "--dry-run", "data.dir=d", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_py = str(ROOT / "trainers" / "run.py")
    assert done.stdout.split()[1:] == [run_py, "agent=system2", "trainer=bc", "run_dir=runs/s2", "data.dir=d"]
    done = _launch("--gpus", "8", "--model-path", "/models/Qwen2.5-VL-3B", "--dry-run", cwd=tmp_path)
    words = done.stdout.split()
    assert words[:5] == ["torchrun", "--nnodes", "1", "--nproc_per_node", "8"]
    assert {"agent.model_path=/models/Qwen2.5-VL-3B", "distributed=fsdp", "agent.dtype=bfloat16"} <= set(
        words
    )
    done = _launch("--gpus", "0", "--dry-run", cwd=tmp_path)
    assert done.returncode == 2 and "--gpus must be a positive integer" in done.stderr
    done = _launch("--name", "s2", "data.dir=/nonexistent", "--cfg", "job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    config = yaml.safe_load(done.stdout)
    assert config["agent"]["name"] == "system2" and config["agent"]["model_path"] is None
    assert not (tmp_path / "runs").exists()


def test_pixel_goal_accuracy_script_asks_every_query(tiny_dataset, tmp_path):
    """The held-out query evaluation: expert store, queries as in training, one answer per query, metrics."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import pixel_goal_accuracy as accuracy
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    torch.manual_seed(0)
    agent = make_agent("system2", {"corpus_split": str(tiny_dataset / "train")})
    agent.save(tmp_path / "system2")
    store = tmp_path / "store_val_unseen"
    accuracy.collect_store(tiny_dataset, "val_unseen", store, 1)
    result = accuracy.evaluate(tmp_path / "system2", tiny_dataset, "val_unseen", store, 5, size=SIZE)
    assert result["queries"] == 5
    assert result["n_pixel"] + result["n_turn"] + result["n_stop"] == 5
    assert 0 <= result["invalid"] <= 5 and result["latency_ms"] > 0
    assert sum(result["counts"][k] for k in ("pixel", "turn", "stop")) >= 5
    baseline = result["constant_pixel"]
    assert len(baseline["pixel"]) == 2 and baseline["n_pixel"] == result["n_pixel"]
    assert baseline["invalid"] == 0 and baseline["turn/accuracy"] in (0.0, None)
    pixels = [{"kind": "pixel", "pixel": (2, 9)}, {"kind": "pixel", "pixel": (4, 1)}, {"kind": "stop"}]
    assert accuracy.constant_pixel(pixels) == (3, 5)
    with pytest.raises(ValueError, match="does not answer pixel-goal queries"):
        make_agent("cma").save(tmp_path / "cma")
        accuracy.evaluate(tmp_path / "cma", tiny_dataset, "val_unseen", store, 1)


def test_memorise_script_fits_a_few_queries_through_the_images(tiny_dataset, tmp_path):
    """The vision-path check: a fresh model trained on a few pixel queries (one fixed text) answers them."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import system2_memorise as memorise
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    argv = [
        "--data",
        str(tiny_dataset),
        "--split",
        "train",
        "--n-episodes",
        "2",
        "--store",
        str(tmp_path / "s"),
    ]
    result = memorise.main(
        argv + ["--queries", "4", "--updates", "40", f"--size={SIZE}", "agent.vocab_size=300"]
    )
    assert result["queries"] == 4 and result["model"]["n_pixel"] == 4
    assert result["last_loss"] < 0.5 * result["first_loss"]
    assert result["model"]["pixel/answered"] == 1.0 and result["model"]["turn/accuracy"] is None
    with pytest.raises(SystemExit, match="agent.FIELD=VALUE"):
        memorise.main(argv + ["vocab_size=300"])
    with pytest.raises(ValueError, match="only .* pixel queries, asked for 100000"):
        memorise.main(argv + ["--queries", "100000", "--updates", "1"])
