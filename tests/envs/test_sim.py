"""The Simulator: placement errors, discrete motion, waypoint control, tilt, collisions, Habitat scenes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.nav.geometry import quaternion_from_yaw
from envs.render import CameraSpec
from envs.scenes.generate import generate_house
from envs.sim import SimConfig, Simulator

CFG = SimConfig(cameras=(CameraSpec(width=48, height=48),))


@pytest.fixture(scope="module")
def sim():
    s = Simulator(generate_house(3), CFG)
    yield s
    s.close()


def _start(sim, seed=0):
    p = sim.sample_navigable_point(np.random.default_rng(seed))
    sim.set_agent_state(p, quaternion_from_yaw(0.0))
    return p


def test_placement_errors_name_the_value(sim):
    with pytest.raises(ValueError, match=r"not on the navigable area of scene 'house_00003'"):
        sim.set_agent_state([400.0, 0.0, 400.0], [0, 0, 0, 1])
    p = sim.sample_navigable_point(np.random.default_rng(0))
    with pytest.raises(ValueError, match="quaternion"):
        sim.set_agent_state(p, [0.0, 0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="finite"):
        sim.set_agent_state([np.nan, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ValueError, match="unknown action 9"):
        sim.step(9)


def test_forward_and_turns(sim):
    for seed in range(20):
        p = _start(sim, seed)
        sim.step(1)
        s = sim.get_agent_state()
        if not sim.collided:  # yaw 0 looks along -z: forward moves 0.25 m toward -z
            np.testing.assert_allclose(s.position[[0, 2]], [p[0], p[2] - 0.25], atol=1e-5)
            break
    else:
        pytest.fail("no free forward step from 20 starts")
    sim.step(2)
    assert math.degrees(sim.get_agent_state().yaw) == pytest.approx(15.0, abs=1e-4)
    sim.step(3)
    sim.step(3)
    assert math.degrees(sim.get_agent_state().yaw) == pytest.approx(-15.0, abs=1e-4)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000), actions=st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=5, max_size=60)
)
def test_random_actions_never_leave_the_navigable_area(sim, seed, actions):
    _start(sim, seed)
    for a in actions:
        before = sim.get_agent_state().position.copy()
        sim.step(a)
        after = sim.get_agent_state().position
        assert sim.is_navigable(after)
        assert after[1] == pytest.approx(sim.grid.height_at(after[0], after[2]), abs=1e-4)
        assert np.linalg.norm((after - before)[[0, 2]]) <= 0.25 + 1e-5
        if a != 1:
            np.testing.assert_array_equal(before, after)


def test_walking_into_a_wall_collides_and_stays_navigable(sim):
    _start(sim, 1)
    hits = 0
    for _ in range(80):
        sim.step(1)
        hits += sim.collided
        assert sim.is_navigable(sim.get_agent_state().position)
    assert hits > 0 and sim.n_collisions >= hits


def test_move_along_follows_waypoints(sim):
    for seed in range(30):
        p = _start(sim, seed)
        ahead = p + np.array([0.0, 0.0, -1.0])
        if sim.is_navigable(ahead) and sim.geodesic_distance(p, ahead) <= 1.0 + 1e-3:
            break
    else:
        pytest.skip("no straight free metre found")
    sim.move_along([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]])
    s = sim.get_agent_state()
    np.testing.assert_allclose(s.position[[0, 2]], [p[0], p[2] - 1.0], atol=0.06)
    assert not sim.collided
    sim.move_along([[0.0, 0.0, math.pi / 2]])
    assert math.degrees(s.yaw) == pytest.approx(0.0, abs=1e-3)
    assert math.degrees(sim.get_agent_state().yaw) == pytest.approx(90.0, abs=0.5)
    with pytest.raises(ValueError, match="finite"):
        sim.move_along([[np.inf, 0.0, 0.0]])


def test_look_up_and_down_change_the_view_and_clamp(sim):
    _start(sim, 2)
    level = sim.observe()["depth"].copy()
    down = sim.step(5)["depth"]
    assert not np.array_equal(level, down)
    for _ in range(10):
        sim.step(5)
    assert sim.get_agent_state().tilt == pytest.approx(-sim.config.max_tilt)


def test_several_cameras_give_prefixed_keys():
    cams = (
        CameraSpec(width=32, height=32, modalities=("rgb",)),
        CameraSpec(uuid="down", width=16, height=16, pitch=-30.0, modalities=("depth", "semantic")),
    )
    s = Simulator(generate_house(1), SimConfig(cameras=cams))
    _start(s)
    obs = s.observe()
    assert set(obs) == {"rgb", "down_depth", "down_semantic"}
    assert obs["rgb"].shape == (32, 32, 3) and obs["down_depth"].shape == (16, 16, 1)
    s.close()
    with pytest.raises(ValueError, match="duplicate observation keys"):
        SimConfig(cameras=(CameraSpec(uuid="a"), CameraSpec(uuid="a"), CameraSpec(uuid="a")))


def test_expert_action_reaches_a_goal(sim):
    rng = np.random.default_rng(5)
    start = _start(sim, 5)
    goal = sim.sample_navigable_point(rng)
    d0 = sim.geodesic_distance(start, goal)
    for _ in range(600):
        a = sim.expert_action(goal, 0.5)
        if a == 0:
            break
        sim.step(a)
    assert sim.geodesic_distance(sim.get_agent_state().position, goal) < 0.5 + 1e-6 or d0 < 0.5


@pytest.mark.parametrize("name", ["simple_room.glb", "stage_floor1.glb"])
def test_habitat_scenes_render_and_navigate(habitat_scenes, name):
    s = Simulator(habitat_scenes / name, SimConfig(cameras=(CameraSpec(width=64, height=64),)))
    assert s.grid.navigable.sum() > 100
    rng = np.random.default_rng(0)
    p = s.sample_navigable_point(rng)
    s.set_agent_state(p, [0, 0, 0, 1])
    obs = s.observe()
    assert obs["rgb"].std() > 5.0
    assert np.isfinite(obs["depth"]).all() and obs["depth"].min() < 10.0
    q = s.sample_navigable_point(rng)
    assert math.isfinite(s.geodesic_distance(p, q))
    s.close()
