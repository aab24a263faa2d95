"""VLN benchmark: file schema, metric aggregation, expert vs random, episode lists, sharded evaluation."""

import json
import math

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from agents import make_agent
from agents.expert import ExpertAgent, ExpertConfig
from benchmarks.base import BENCHMARKS, select_episodes
from benchmarks.vln import VLN_METRICS, VLNBenchmark
from envs.datasets.r2r import load_episodes

SIZE = 32


@pytest.fixture(scope="module")
def bench(tiny_dataset):
    b = VLNBenchmark(tiny_dataset / "val_unseen", width=SIZE, height=SIZE, seed=0, n_videos=1)
    yield b
    b.close()


@pytest.fixture(scope="module")
def runs(bench, tmp_path_factory):
    out = {}
    for name in ("expert", "random"):
        d = tmp_path_factory.mktemp(name)
        summary, records = bench.run(make_agent(name), d, checkpoint=None)
        out[name] = (d, summary, records)
    return out


def _read(d):
    summary = json.loads((d / "summary.json").read_text())
    records = [json.loads(line) for line in (d / "episodes.jsonl").read_text().splitlines()]
    return summary, records


def test_files_follow_the_schema(runs, tiny_dataset):
    d, _, _ = runs["expert"]
    summary, records = _read(d)
    episodes = load_episodes(tiny_dataset / "val_unseen").episodes
    assert [r["episode_id"] for r in records] == [ep.episode_id for ep in episodes]
    assert summary["count"] == len(records) == len(episodes)
    assert summary["episode_ids"] == [ep.episode_id for ep in episodes]
    for key in ("benchmark", "task", "agent", "checkpoint", "split", "seed", "wall_time_s", "steps_per_s"):
        assert key in summary
    assert (summary["agent"], summary["split"], summary["task"], summary["seed"]) == (
        "expert",
        "val_unseen",
        "vln",
        0,
    )
    assert summary["camera"]["width"] == SIZE
    assert summary["total_steps"] == sum(len(r["actions"]) for r in records)
    for r in records:
        assert {"episode_id", "scene_id", "instruction", "actions", "metrics", "termination"} <= set(r)
        assert set(VLN_METRICS) <= set(r["metrics"])
        assert r["instruction"] and r["reference_length"] > 0
        assert len(r["positions"]) == len(r["actions"]) + 1
        assert r["metrics"]["steps"] == len(r["actions"])
    for key in VLN_METRICS:
        assert summary["metrics"][key] == pytest.approx(np.mean([r["metrics"][key] for r in records]))
    assert (d / "videos" / f"episode_{records[0]['episode_id']}.mp4").stat().st_size > 0


def test_expert_succeeds_and_random_does_worse(runs):
    _, expert, expert_records = runs["expert"]
    _, random, _ = runs["random"]
    assert expert["metrics"]["success"] == 1.0
    assert expert["metrics"]["spl"] > 0.9
    assert expert["metrics"]["ndtw"] > 0.8
    assert all(r["termination"] == "stop" and r["actions"][-1] == 0 for r in expert_records)
    assert random["metrics"]["success"] < 1.0
    assert random["metrics"]["spl"] < expert["metrics"]["spl"]


def test_episode_list_selection(tiny_dataset):
    dataset = load_episodes(tiny_dataset / "val_seen")
    ids = [ep.episode_id for ep in dataset.episodes]
    assert select_episodes(dataset) == ids
    assert select_episodes(dataset, n_episodes=1) == ids[:1]
    assert select_episodes(dataset, episode_ids=ids[::-1]) == ids[::-1]
    with pytest.raises(ValueError, match=r"val_seen\.json\.gz.*episode_ids.*nope"):
        select_episodes(dataset, episode_ids=["nope"])
    with pytest.raises(ValueError, match="n_episodes"):
        select_episodes(dataset, n_episodes=0)


def test_registry_names_and_unknown_name():
    assert {"vln_val_seen", "vln_val_unseen", "vln_test", "system1_pointnav"} <= set(BENCHMARKS.names())
    with pytest.raises(KeyError, match="vln_val_unseen"):
        BENCHMARKS.get("vln_valunseen")


def evaluate(agent, split_dir, n_episodes=None, **kwargs):
    """One run of the VLN benchmark over a split (the environment is released afterwards)."""
    bench = VLNBenchmark(split_dir, n_episodes=n_episodes, **kwargs)
    try:
        return bench.run(agent)
    finally:
        bench.close()


def test_evaluate_matches_the_benchmark_and_restores_train_mode(runs, tiny_dataset):
    agent = make_agent("forward", {"n_forward": 3})
    agent.train()
    summary, records = evaluate(agent, tiny_dataset / "val_unseen", n_episodes=1, width=SIZE, height=SIZE)
    assert agent.training
    assert summary["count"] == 1 and len(records) == 1
    assert records[0]["actions"] == [1, 1, 1, 0]
    assert math.isclose(summary["metrics"]["steps"], 4.0)


def test_evaluate_under_a_process_group_gathers_every_episode(tiny_dataset, tmp_path):
    expected, _ = evaluate(make_agent("expert"), tiny_dataset / "val_unseen", width=SIZE, height=SIZE)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        summary, records = evaluate(
            make_agent("expert"), tiny_dataset / "val_unseen", width=SIZE, height=SIZE
        )
    finally:
        dist.destroy_process_group()
    assert summary["world_size"] == 1
    assert [r["episode_id"] for r in records] == expected["episode_ids"]
    assert summary["metrics"] == pytest.approx(expected["metrics"])


class CountingExpert(ExpertAgent):
    """The expert, counting the episodes it starts (rollout resets it once per episode)."""

    def __init__(self):
        super().__init__(ExpertConfig())
        self.episodes = 0

    def reset(self, n_envs, env_ids=None):
        self.episodes += 1
        super().reset(n_envs, env_ids)


def _rank(rank, world, init, data, out):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        agent = CountingExpert()
        summary, records = evaluate(agent, data / "val_unseen", width=SIZE, height=SIZE)
        ids = [r["episode_id"] for r in records]
        (out / f"{rank}.json").write_text(json.dumps({"summary": summary, "ids": ids, "ran": agent.episodes}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_share_the_episodes_and_gather_them(tiny_dataset, tmp_path):
    single, _ = evaluate(make_agent("expert"), tiny_dataset / "val_unseen", width=SIZE, height=SIZE)
    mp.spawn(_rank, args=(2, f"file://{tmp_path / 'pg'}", tiny_dataset, tmp_path), nprocs=2)
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    assert [r["ran"] for r in ranks] == [1, 1]  # each rank ran its own half
    for r in ranks:
        assert r["ids"] == single["episode_ids"]
        assert r["summary"]["world_size"] == 2 and r["summary"]["count"] == single["count"]
        assert r["summary"]["metrics"] == pytest.approx(single["metrics"])
