"""Asynchronous planning on the simulated clock: plan tracking, latency, stale plans."""

import math

import numpy as np
import pytest

from envs.nav.geometry import quaternion_from_yaw
from envs.planning import AsyncPlanner, PlanTracker
from envs.render import CameraSpec
from envs.scenes.generate import generate_house
from envs.sim import SimConfig, Simulator

CFG = SimConfig(cameras=(CameraSpec(width=16, height=16),), control_period=0.1, max_linear_speed=0.5)


@pytest.fixture(scope="module")
def sim():
    s = Simulator(generate_house(3), CFG)
    yield s
    s.close()


def open_start(sim) -> np.ndarray:
    """A start facing yaw 0 (−z) with 4 m of open floor ahead."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        p = sim.sample_navigable_point(rng)
        if all(sim.is_navigable(p + np.array([0.0, 0.0, -s])) for s in np.linspace(0, 4.0, 81)):
            sim.set_agent_state(p, quaternion_from_yaw(0.0))
            return p
    raise AssertionError("no start with 4 m of open floor in the test house")


def test_tracker_drives_at_the_speed_limit_and_stops_at_the_end(sim):
    p = open_start(sim)
    tracker = PlanTracker(sim)
    tracker.set_plan([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]], p, 0.0)
    first = tracker.advance(1.0)
    assert first.ticks == 10 and first.seconds == pytest.approx(1.0)
    assert first.distance == pytest.approx(0.5, abs=1e-3)  # 0.5 m/s for 1 s
    rest = tracker.advance(3.0)
    assert rest.distance == pytest.approx(0.5, abs=0.02) and not tracker.targets
    end = sim.get_agent_state().position
    assert end[2] == pytest.approx(p[2] - 1.0, abs=0.06) and end[0] == pytest.approx(p[0], abs=0.02)


def test_plans_are_anchored_where_the_observation_was_taken(sim):
    p = open_start(sim)
    planner = AsyncPlanner(sim, latency=0.4, period=0.1)
    planner.reset()
    planner.step([[1.0, 0.0, 0.0]])  # no old plan: 0.4 s still, then 0.1 s toward 1 m ahead of p
    assert planner.clock == pytest.approx(0.5)
    moved = np.linalg.norm(sim.get_agent_state().position - p)
    assert moved == pytest.approx(0.05, abs=1e-3)
    # The next plan is relative to the pose after that first period, not to the pose when it arrives.
    q = sim.get_agent_state().position.copy()
    planner.step([[0.3, 0.0, 0.0]])
    end = sim.get_agent_state().position
    assert end[2] == pytest.approx(q[2] - 0.25, abs=0.01)  # 0.4 s on the old plan (0.2 m) + 0.05 m
    assert planner.latencies == [0.4, 0.4]


def run(sim, latency: float, seconds: float) -> float:
    """Short plans (0.3 m ahead) for ``seconds`` of simulated time; returns the distance driven."""
    p = open_start(sim)
    planner = AsyncPlanner(sim, latency=latency, period=0.1)
    planner.reset()
    while planner.clock < seconds - 1e-9:
        planner.step([[0.3, 0.0, 0.0]])
    return float(np.linalg.norm(sim.get_agent_state().position - p))


def test_a_slow_planner_covers_less_ground_in_the_same_time(sim):
    fast, slow = run(sim, 0.0, 4.0), run(sim, 0.6, 4.0)
    assert fast == pytest.approx(2.0, abs=0.05)  # never runs out of plan: 0.5 m/s
    assert slow < 0.8 * fast


def test_measured_latency_is_used_when_none_is_fixed(sim):
    open_start(sim)
    planner = AsyncPlanner(sim, latency=None, period=0.1)
    planner.reset()
    planner.report_latency(0.23)
    planner.step([[0.2, 0.0, 0.0]])
    planner.step([[0.2, 0.0, 0.0]])  # nothing reported: no latency
    assert planner.latencies == [0.23, 0.0]
    assert planner.clock == pytest.approx(0.3 + 0.1 + 0.1)  # whole ticks: 0.23 s -> 3 ticks
    with pytest.raises(ValueError, match="plan latency"):
        AsyncPlanner(sim, latency=-1.0)
    with pytest.raises(ValueError, match="finite"):
        PlanTracker(sim).set_plan([[math.nan, 0, 0]], np.zeros(3), 0.0)
