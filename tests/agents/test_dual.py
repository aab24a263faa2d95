"""The dual systems: a tiny System 2 trained and saved here, then the dual agent on it (both heads)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the environment ids)
from agents import make_agent
from agents.base import Agent
from agents.contract import agent_sim_config, interface_of
from agents.dual.agent import DualAgent
from agents.dual.config import DualConfig
from agents.dual.targets import path_targets, resample_path, steps_to_waypoints
from benchmarks.vln import VLNBenchmark
from envs.rollout import rollout
from trainers.data.pixel_goals import collate_pixel_goals

SIZE = 48
ANSWER = "30 24"
TEXTS = ["walk to the sofa", "go into the kitchen", "pass the table", "wait by the door"]


def items(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k, text in enumerate(TEXTS):
        bend = 0.3 * (k - 1.5)
        s = np.linspace(0.0, 3.0, 13)
        path = np.stack([s, bend * s**2 / 3.0, np.arctan(2 * bend * s / 3.0)], axis=1).astype(np.float32)
        out.append({
            "episode_id": str(k), "step": 4 * k, "instruction_text": text,
            "history": rng.integers(0, 256, (k, SIZE, SIZE, 3), dtype=np.uint8),
            "current": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
            "lookdown": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
            "lookdown_depth": np.full((SIZE, SIZE, 1), 2.0, np.float32), "kind": "pixel", "answer": ANSWER,
            "pixel": np.array([30, 24]), "system1_step": 4 * k + 2,
            "system1_goal_rgb": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
            "system1_rgb": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
            "system1_goal_depth": rng.uniform(0.5, 4.0, (SIZE, SIZE, 1)).astype(np.float32),
            "system1_depth": rng.uniform(0.5, 4.0, (SIZE, SIZE, 1)).astype(np.float32),
            "system1_path": path,
        })  # fmt: skip
    return out


@pytest.fixture(scope="module")
def system2_dir(tmp_path_factory):
    """A tiny System 2 taught to look down and answer one pixel goal, saved like a run's agent folder."""
    torch.manual_seed(0)
    s2 = make_agent("system2", instructions=TEXTS, config={"text_layers": 2, "max_new_tokens": 6})
    transform = s2.item_transform()
    batch = collate_pixel_goals([transform(it) for it in items()])
    optim = torch.optim.Adam(s2.parameters(), lr=3e-3)
    s2.train()
    for _ in range(40):
        loss, info = s2.loss(batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert info["accuracy"] == 1.0, info
    folder = tmp_path_factory.mktemp("system2") / "agent"
    s2.save(folder)
    return folder


def dual(system2_dir, system1, **overrides):
    torch.manual_seed(0)
    return make_agent("dual", {"system1": system1, "system2": str(system2_dir), **overrides})


def encoded_batch(agent):
    transform = agent.item_transform()
    return collate_pixel_goals([transform(it) for it in items()])


def test_targets_of_a_hand_made_path():
    straight = np.stack([np.arange(9) * 0.25, np.zeros(9), np.zeros(9)], axis=1)  # 2 m ahead
    points = resample_path(straight)
    assert points.shape == (33, 3)
    np.testing.assert_allclose(points[:21, 0], 0.1 * np.arange(21), atol=1e-9)
    np.testing.assert_allclose(points[21:, 0], 2.0)  # past the end: the end repeated
    targets = path_targets(straight)
    assert targets.shape == (32, 3) and targets.dtype == np.float32
    np.testing.assert_allclose(targets[:20, 0], 0.4, atol=1e-6)  # 0.1 m steps, xy x 4
    np.testing.assert_allclose(targets[20:], 0.0, atol=1e-6)
    cumulative = steps_to_waypoints(torch.as_tensor(targets)).numpy()
    np.testing.assert_allclose(cumulative, points[1:], atol=1e-6)
    # a turn in place at the start, then a quarter circle of radius 1 m: points stay 0.1 m apart (arc)
    a = np.linspace(0.0, np.pi / 2, 12)
    arc = np.stack([np.sin(a), 1.0 - np.cos(a), a], axis=1)
    turned = np.vstack([[0.0, 0.0, 0.0], [0.0, 0.0, 0.2], arc])
    pts = resample_path(turned)
    gaps = np.hypot(*np.diff(pts[:15, :2], axis=0).T)
    np.testing.assert_allclose(gaps, 0.1, rtol=0.02)
    assert pts[0, 2] == 0.0 and pts[14, 2] > 0.5  # the start keeps its own heading


def test_latents_shape_and_frozen_system2(system2_dir):
    agent = dual(system2_dir, "navdp_async")
    batch = encoded_batch(agent)
    agent.train()
    assert not agent.system2.training  # frozen: kept in eval mode
    ids = list(batch["input_ids"])
    latents = agent.latents(
        ids, torch.cat(list(batch["pixel_values"])), torch.cat(list(batch["image_grid_thw"]))
    )
    assert latents.shape == (4, 4, agent.hidden)
    loss, info = agent.loss(batch)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in agent.system2.parameters())
    assert agent.latent.queries.grad is not None and agent.latent.queries.grad.abs().sum() > 0
    assert {id(p) for g in agent.param_groups() for p in g["params"]}.isdisjoint(
        {id(p) for p in agent.system2.parameters()}
    )
    unfrozen = dual(system2_dir, "navdp_async", freeze_system2=False)
    assert all(p.requires_grad for p in unfrozen.system2.parameters())


@pytest.mark.parametrize("system1", ["navdp_async", "nextdit_async"])
def test_head_loss_falls_and_save_load_is_exact(system2_dir, system1, tmp_path):
    agent = dual(system2_dir, system1)
    batch = encoded_batch(agent)

    def fixed_loss():
        torch.manual_seed(123)
        with torch.no_grad():
            return float(agent.loss(batch)[0])

    agent.train()
    before = fixed_loss()
    optim = torch.optim.Adam([p for g in agent.param_groups() for p in g["params"]], lr=2e-3)
    for _ in range(15):
        loss, info = agent.loss(batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
        assert np.isfinite(info["loss/action"])
    after = fixed_loss()
    assert after < 0.7 * before, (before, after)
    agent.save(tmp_path / "dual")
    loaded = Agent.load(tmp_path / "dual")
    assert isinstance(loaded, DualAgent) and loaded.config.system1 == system1
    mine, theirs = agent.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    loaded.train()
    assert fixed_loss() == pytest.approx(after, abs=0)
    torch.manual_seed(123)
    with torch.no_grad():
        assert float(loaded.loss(batch)[0]) == after


def test_flow_matching_euler_sampling(system2_dir):
    agent = dual(system2_dir, "nextdit_async", num_samples=5, guidance_scale=1.5)
    agent.eval()
    head = agent.system1
    latents = torch.randn(2, 4, agent.hidden)
    rgb = torch.randint(0, 256, (2, 2, SIZE, SIZE, 3), dtype=torch.uint8)
    cond = head.encode(latents, rgb)
    assert cond["cond"].shape == (2, 32 + 4, agent.config.cond_dim)
    calls = []
    head.model.register_forward_hook(lambda m, i, o: calls.append(i[1].clone()))
    out = head.sample(cond, 5, torch.Generator().manual_seed(0))
    assert out.shape == (2, 5, 32, 3) and torch.isfinite(out).all()
    assert len(calls) == 2 * 10  # 10 Euler steps, each with and without conditioning (guidance)
    np.testing.assert_allclose(calls[0][0].item(), 1000.0, rtol=1e-5)  # sigma 1 first
    np.testing.assert_allclose(calls[-1][0].item(), 100.0, rtol=1e-4)  # sigma 0.1 last
    again = head.sample(cond, 5, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_bad_inputs_name_the_value(system2_dir, tmp_path):
    with pytest.raises(ValueError, match="system1 must be one of"):
        DualConfig(system1="nextdit")
    with pytest.raises(ValueError, match="system2 must be the folder"):
        make_agent("dual", {"system1": "navdp_async"})
    with pytest.raises(FileNotFoundError, match="not an agent folder"):
        make_agent("dual", {"system2": str(tmp_path / "nowhere")})
    agent = dual(system2_dir, "navdp_async")
    agent.save(tmp_path / "dual")
    with pytest.raises(ValueError, match="expected a 'system2' agent"):
        make_agent("dual", {"system2": str(tmp_path / "dual")})
    state = agent.state_dict()
    state["latent.queries"] = torch.zeros(4, agent.hidden + 8)
    with pytest.raises(ValueError, match="hidden size"):
        agent.load_state_dict(state)


@pytest.fixture(scope="module")
def env(tiny_dataset):
    sim_config = agent_sim_config(interface_of(DualAgent), SIZE, SIZE, 90.0)
    env = gym.make(
        "NavGym/VLN-v0", episodes=tiny_dataset / "train", width=SIZE, height=SIZE, sim_config=sim_config,
        action_mode="waypoint", n_waypoints=DualConfig.n_waypoints, max_episode_steps=12,
    )  # fmt: skip
    yield env
    env.close()


def test_sync_and_partial_async_on_a_fixed_episode(system2_dir, env):
    env.reset(seed=0)
    episode = env.unwrapped.episode.episode_id
    runs = {}
    for mode in ("sync", "partial_async"):
        agent = dual(system2_dir, "navdp_async", infer_mode=mode, num_samples=4, sys2_max_forward_step=4)
        (result,) = rollout(env, agent, episode_ids=[episode])
        runs[mode] = (agent.runtime.stats, result)
        agent.runtime.close()
    sync, partial = runs["sync"][0], runs["partial_async"][0]
    for stats, result in runs.values():  # the episode's record carries the runtime's counts
        assert result.agent_stats == {
            "s2_calls": stats["s2_calls"], "s1_plans": stats["s1_plans"],
            "s2_seconds": pytest.approx(sum(stats["s2_latency"])),
            "s1_seconds": pytest.approx(sum(stats["s1_latency"])),
        }  # fmt: skip
    steps = len(runs["sync"][1].actions)
    assert steps == 12 and len(runs["partial_async"][1].actions) == 12
    assert sync["s2_calls"] == steps and sync["s1_plans"] == steps  # S2 then S1 every step
    assert partial["s2_calls"] < sync["s2_calls"] and partial["s1_plans"] < steps
    for _, result in runs.values():
        acts = np.asarray(result.actions, np.float32)
        assert acts.shape == (12, DualConfig.n_waypoints, 3) and np.isfinite(acts).all()
        travelled = np.linalg.norm(np.diff(result.positions[:, [0, 2]], axis=0), axis=1).sum()
        assert travelled > 0.5  # the plans move the agent
    # sync mode is deterministic
    agent = dual(system2_dir, "navdp_async", infer_mode="sync", num_samples=4)
    (again,) = rollout(env, agent, episode_ids=[episode])
    assert again.actions == runs["sync"][1].actions
    (replay,) = rollout(env, agent, episode_ids=[episode])  # the same agent: the episode's noise restarts
    assert replay.actions == again.actions


def test_a_benchmark_sums_the_system_calls_and_seconds_of_its_episodes(system2_dir, tiny_dataset, tmp_path):
    agent = dual(system2_dir, "navdp_async", num_samples=4, sys2_max_forward_step=4)
    bench = VLNBenchmark(
        tiny_dataset / "val_unseen", width=SIZE, height=SIZE, n_episodes=2, max_episode_steps=8
    )
    summary, records = bench.run(agent, tmp_path)
    per_episode = [r["agent_stats"] for r in records]
    assert all(e["s1_plans"] > 0 and e["s2_calls"] > 0 and e["s1_seconds"] > 0 for e in per_episode)
    totals = summary["agent_stats"]
    assert totals["s1_plans"] == sum(e["s1_plans"] for e in per_episode)
    assert totals["s2_seconds"] == pytest.approx(sum(e["s2_seconds"] for e in per_episode))
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["agent_stats"] == pytest.approx(totals)
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(line)["agent_stats"] for line in lines] == per_episode
