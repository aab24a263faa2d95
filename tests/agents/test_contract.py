"""Agent declarations: checked when a class is defined, read by benchmarks; save/load with shards and
extras."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from agents import AGENTS, Agent, load_agent, make_agent
from agents.contract import (
    SYSTEM1_CAMERA_HEIGHT,
    CameraRequest,
    SampleSpec,
    agent_cameras,
    agent_sim_config,
    goal_camera,
    interface_of,
)
from agents.weights import WEIGHTS_FILE, WEIGHTS_INDEX_FILE
from benchmarks.base import BENCHMARKS
from envs.nav.geometry import agent_frame_deltas, resample_path
from trainers.ablation import BlankedInputs


@dataclasses.dataclass
class _Config:
    name: str = "declared"


def _define(**attrs):
    """Define (and so check) an agent class with the given declarations."""
    body = {"name": "declared", "config_class": _Config, "act": lambda self, obs, deterministic=True: None}
    return type("DeclaredAgent", (Agent,), {**body, **attrs})


@pytest.mark.parametrize(
    ("attrs", "attr"),
    [
        ({"action_mode": "teleport"}, "action_mode"),
        ({"action_mode": "waypoint"}, "n_waypoints"),
        ({"tasks": ("vln", "objectnav")}, "tasks"),
        ({"tasks": "vln"}, "tasks"),
        ({"cameras": (CameraRequest("down", pitch=-30.0),)}, "cameras"),
        ({"cameras": (CameraRequest(), CameraRequest())}, "cameras"),
        ({"sample": {"kind": "window"}}, "sample"),
        ({"requires_expert": 1}, "requires_expert"),
    ],
)
def test_bad_declarations_fail_when_the_class_is_defined(attrs, attr):
    with pytest.raises(TypeError, match=rf"DeclaredAgent: `{attr}`"):
        _define(**attrs)


def test_good_declarations_and_what_they_mean():
    cls = _define(
        action_mode="waypoint",
        n_waypoints=8,
        tasks=("pointnav", "imagenav"),
        cameras=(CameraRequest(), CameraRequest("down", pitch=-30.0), CameraRequest("goal", mount="goal")),
        sample=SampleSpec(kind="window", history=4, stride=2, horizon=8),
    )
    interface = interface_of(cls)
    assert interface.goal_kinds == ("point", "image")
    cams = agent_cameras(interface, 48, 32, 79.0)
    assert [(c.uuid, c.width, c.height, c.hfov, c.pitch) for c in cams] == [
        ("camera", 48, 32, 79.0, 0.0),
        ("down", 48, 32, 79.0, -30.0),
    ]  # the goal camera is not carried by the agent
    assert CameraRequest("down").keys() == {"rgb": "down_rgb", "depth": "down_depth"}
    assert CameraRequest("goal", mount="goal", modalities=("rgb",)).keys() == {"rgb": "imagegoal"}
    with pytest.raises(ValueError, match="accepts \\['pointnav', 'imagenav'\\]"):
        interface.check_task("vln", "agent 'declared'")


def test_a_mount_height_raises_every_camera_of_the_agent_and_its_goal_camera():
    low = interface_of(
        _define(
            cameras=(
                CameraRequest(mount_height=0.4),
                CameraRequest("down", pitch=-30.0),
                CameraRequest("goal", mount="goal"),
            )
        )
    )
    assert [c.position for c in agent_cameras(low, 32, 32, 90.0)] == [(0.0, 0.4, 0.0)] * 2
    assert goal_camera(low, 32, 32, 90.0).position == (
        0.0,
        0.4,
        0.0,
    )  # the image goal, seen as the agent would
    assert agent_sim_config(low, 32, 32, 90.0).cameras[0].position == (0.0, 0.4, 0.0)
    plain = interface_of(_define())
    assert agent_sim_config(plain, 32, 32, 90.0) is None  # the environment's default camera, at 1.25 m
    assert agent_cameras(plain, 32, 32, 90.0)[0].position == (0.0, 1.25, 0.0)
    for bad in (0.0, -1.0, 3.5):
        with pytest.raises(ValueError, match="mount_height"):
            CameraRequest(mount_height=bad)


def test_system1_agents_look_from_the_benchmark_robot_s_height_and_vln_agents_from_habitat_s():
    for name in ("navdp", "iplanner", "viplanner", "gnm", "vint", "nomad", "ddppo"):
        assert interface_of(AGENTS.get(name)).cameras[0].mount_height == SYSTEM1_CAMERA_HEIGHT, name
    for name in ("seq2seq", "cma", "rdp", "system2", "dual"):
        assert interface_of(AGENTS.get(name)).cameras[0].mount_height is None, name


def test_the_system1_benchmark_renders_a_low_camera_as_the_agent_declares(tiny_dataset):
    bench = BENCHMARKS.get("system1_pointnav").build(tiny_dataset, width=32, height=32)
    try:
        env = bench.env_for(make_agent("iplanner"))
        obs, _ = env.reset(options={"episode_index": 0})
        sim = env.unwrapped.sim
        pose = (sim.get_agent_state().position, sim.get_agent_state().rotation)
        main = sim.config.cameras[0]
        assert main.position == (0.0, SYSTEM1_CAMERA_HEIGHT, 0.0)
        low = sim.render_at(*pose, dataclasses.replace(main, position=(0.0, SYSTEM1_CAMERA_HEIGHT, 0.0)))
        high = sim.render_at(*pose, dataclasses.replace(main, position=(0.0, 1.25, 0.0)))
        np.testing.assert_array_equal(obs["depth"], low["depth"])
        assert not np.array_equal(obs["depth"], high["depth"])
        # An agent that declares no height (random) is mounted at the benchmark robot's too; VLN keeps 1.25 m.
        env = bench.env_for(make_agent("random"))
        assert env.unwrapped.sim_config.cameras[0].position == (0.0, SYSTEM1_CAMERA_HEIGHT, 0.0)
    finally:
        bench.close()
    vln = BENCHMARKS.get("vln_val_unseen").build(tiny_dataset, width=32, height=32)
    try:
        env = vln.env_for(make_agent("random"))
        assert env.unwrapped.sim_config.cameras[0].position == (0.0, 1.25, 0.0)
    finally:
        vln.close()


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "episode"}, {"history": 2}, {"kind": "window", "stride": 0}, {"kind": "window", "horizon": -1}],
)
def test_sample_spec_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="SampleSpec"):
        SampleSpec(**kwargs)


def test_every_registered_agent_declares_a_valid_interface():
    for name in AGENTS.names():
        interface = interface_of(AGENTS.get(name))
        assert interface.tasks and interface.cameras[0].uuid == "camera"
    assert interface_of(make_agent("cma", instructions=["go"])).tasks == ("vln",)
    expert = make_agent("expert", {"action_mode": "waypoint", "n_waypoints": 6})
    assert (interface_of(expert).action_mode, interface_of(expert).n_waypoints) == ("waypoint", 6)
    blanked = BlankedInputs(make_agent("cma", instructions=["go"]), ["vision"])
    assert interface_of(blanked) == interface_of(blanked.agent)  # wrappers answer for their agent
    plain = interface_of(lambda obs: 0)
    assert plain.action_mode == "discrete" and "pointnav" in plain.tasks


def test_a_benchmark_refuses_an_agent_that_does_not_accept_its_task(tiny_dataset):
    bench = BENCHMARKS.get("system1_pointnav").build(tiny_dataset, width=32, height=32)
    try:
        with pytest.raises(ValueError, match="agent 'cma' on benchmark 'system1_pointnav' does not accept"):
            bench.env_for(make_agent("cma", instructions=["go"]))
    finally:
        bench.close()


def test_agent_frame_deltas_by_hand():
    # Facing -x (yaw +90°): forward is -x, left is +z.
    deltas = agent_frame_deltas(
        [[-1.0, 0, 0], [0, 0, 1.0], [1.0, 0, -2.0]], [math.pi / 2, math.pi, 0], [0, 0, 0], math.pi / 2
    )
    np.testing.assert_allclose(deltas, [[1, 0, 0], [0, 1, math.pi / 2], [-1, -2, -math.pi / 2]], atol=1e-6)


def test_resample_path_by_hand():
    path = [[0, 0, 0], [0, 0, -1.0], [1.0, 0, -1.0]]
    points = resample_path(path, 0.5, 5)
    np.testing.assert_allclose(points, [[0, 0, -0.5], [0, 0, -1], [0.5, 0, -1], [1, 0, -1], [1, 0, -1]])


def test_sharded_weights_and_extra_files_round_trip(tmp_path):
    torch.manual_seed(0)
    agent = make_agent("cma", {"rgb_size": 32, "depth_size": 32, "hidden_size": 32}, instructions=["go left"])
    agent.max_shard_bytes = 64 * 1024
    agent.save(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "config.json").read_text())
    shards = [f for f in meta["weights"] if f != WEIGHTS_INDEX_FILE]
    assert len(shards) > 1 and not (tmp_path / "a" / WEIGHTS_FILE).exists()
    loaded = load_agent(tmp_path / "a")
    for key, value in agent.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    agent.max_shard_bytes = None  # saving again in one file removes the shards
    agent.save(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["config.json", WEIGHTS_FILE]
    (tmp_path / "a" / WEIGHTS_FILE).write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match=rf"a/{WEIGHTS_FILE}: not a readable safetensors file"):
        load_agent(tmp_path / "a")
