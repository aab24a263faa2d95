"""System-1 benchmark (NavDP protocol): expert and random on PointNav, a waypoint policy, exploration."""

import json

import numpy as np
import pytest

from agents import make_agent
from benchmarks.base import BENCHMARKS
from benchmarks.system1 import EXPLORE_METRICS, GOAL_METRICS, System1Benchmark

SIZE = 32


class StraightAhead:
    """A waypoint policy: always two waypoints 0.5 m and 1 m straight ahead (dx forward, dy left, dyaw)."""

    action_mode = "waypoint"
    n_waypoints = 2

    def __call__(self, obs):
        return np.array([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32)


@pytest.fixture(scope="module")
def pointnav(tiny_dataset):
    bench = BENCHMARKS.get("system1_pointnav").build(tiny_dataset, width=SIZE, height=SIZE)
    yield bench
    bench.close()


@pytest.fixture(scope="module")
def runs(pointnav, tmp_path_factory):
    out = {}
    for name in ("expert", "random"):
        d = tmp_path_factory.mktemp(name)
        pointnav.run(make_agent(name), d)
        summary = json.loads((d / "summary.json").read_text())
        records = [json.loads(line) for line in (d / "episodes.jsonl").read_text().splitlines()]
        out[name] = (summary, records)
    return out


def test_files_follow_the_protocol(runs, tiny_dataset):
    summary, records = runs["expert"]
    assert (summary["benchmark"], summary["task"], summary["split"]) == (
        "system1_pointnav",
        "pointnav",
        "val_unseen",
    )
    assert summary["count"] == len(records) == 2
    for r in records:
        assert set(GOAL_METRICS) <= set(r["metrics"])
        assert r["metrics"]["stuck"] == float(r["termination"] == "stuck")
        assert r["metrics"]["timeout"] == float(r["termination"] == "timeout")
        assert r["metrics"]["collisions"] >= 0
        # NavDP success: final Euclidean (x-z) distance to the goal below 1.5 m.
        assert r["metrics"]["success"] == float(r["metrics"]["navigation_error"] < 1.5)
    for key in GOAL_METRICS:
        assert summary["metrics"][key] == pytest.approx(np.mean([r["metrics"][key] for r in records]))


def test_expert_arrives_and_random_does_worse(runs):
    expert, expert_records = runs["expert"]
    random, _ = runs["random"]
    assert expert["metrics"]["success"] == 1.0
    # Euclidean SPL: the geodesic path the expert follows is longer than the straight line.
    assert 0.3 < expert["metrics"]["spl"] <= 1.0
    assert {r["termination"] for r in expert_records} <= {"arrival", "stop"}
    assert random["metrics"]["success"] < expert["metrics"]["success"]
    assert random["metrics"]["spl"] < expert["metrics"]["spl"]


def test_waypoint_policy_runs_in_waypoint_mode(pointnav):
    policy, everything = StraightAhead(), pointnav.episode_ids
    pointnav.episode_ids = everything[:1]
    try:
        summary, records = pointnav.run(policy)
    finally:
        pointnav.episode_ids = everything
    assert pointnav.env_for(policy).action_mode == "waypoint"
    assert summary["agent"] == "StraightAhead" and summary["count"] == 1
    (record,) = records
    assert np.asarray(record["actions"]).shape == (len(record["actions"]), 2, 3)
    assert record["termination"] in ("arrival", "stuck", "timeout")
    assert record["metrics"]["path_length"] > 0


def test_explore_reports_area_and_rejects_the_expert(tiny_dataset, tmp_path):
    bench = System1Benchmark(
        tiny_dataset / "val_unseen", task="explore", n_episodes=1, width=SIZE, height=SIZE
    )
    try:
        with pytest.raises(ValueError, match="explore"):
            bench.run(make_agent("expert"))
        summary, records = bench.run(make_agent("forward", {"n_forward": 8}), tmp_path)
    finally:
        bench.close()
    assert set(EXPLORE_METRICS) <= set(summary["metrics"])
    assert "success" not in summary["metrics"]
    assert summary["metrics"]["explored_area"] > 0
    assert records[0]["actions"] == [1] * 8 + [0]
    assert (tmp_path / "summary.json").is_file()


def test_system1_task_check(tiny_dataset):
    with pytest.raises(ValueError, match="pointnav"):
        System1Benchmark(tiny_dataset / "val_unseen", task="vln")


class ShortSteps:
    """A slow waypoint planner: sleeps ``delay`` seconds, then plans 0.2 m straight ahead."""

    action_mode = "waypoint"
    n_waypoints = 1

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __call__(self, obs):
        import time

        time.sleep(self.delay)
        return np.array([[0.2, 0.0, 0.0]], np.float32)


def test_asynchronous_planning_spends_simulated_time_on_latency(tiny_dataset):
    common = dict(n_episodes=1, width=SIZE, height=SIZE, planning="async", time_limit=3.0)
    fixed = System1Benchmark(tiny_dataset / "val_unseen", plan_latency=0.5, **common)
    measured = System1Benchmark(tiny_dataset / "val_unseen", **common)
    try:
        summary, (record,) = fixed.run(ShortSteps(0.0))
        assert fixed.env_for(ShortSteps(0.0)).planning == "async"
        # Each plan costs 0.5 s of latency + 0.1 s of tracking: a 3 s episode holds at most 5 plans.
        assert len(record["actions"]) <= 5
        if record["termination"] == "timeout":
            assert len(record["actions"]) == 5
        assert summary["metrics"]["plan_latency"] == pytest.approx(0.5)
        slow, (slow_record,) = measured.run(ShortSteps(0.25))
        assert slow["metrics"]["plan_latency"] >= 0.25
        assert len(slow_record["actions"]) <= 9  # 3 s / (0.3 s latency rounded to ticks + 0.1 s)
    finally:
        fixed.close()
        measured.close()


def test_asynchronous_planning_needs_a_waypoint_agent(tiny_dataset):
    bench = System1Benchmark(
        tiny_dataset / "val_unseen", n_episodes=1, width=SIZE, height=SIZE, planning="async"
    )
    try:
        with pytest.raises(ValueError, match="asynchronous planning tracks waypoint plans"):
            bench.run(make_agent("random"))
    finally:
        bench.close()
    with pytest.raises(ValueError, match="System-1 benchmarks only"):
        BENCHMARKS.get("vln_val_unseen").build(tiny_dataset, planning="async")
