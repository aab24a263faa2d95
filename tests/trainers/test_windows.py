"""Windowed samples: history frames at the right poses, future-pose targets, goals, waypoint labels."""

import numpy as np
import pytest

from agents.contract import SampleSpec
from envs.nav.geometry import agent_frame_deltas, yaws_from_quaternions
from envs.render import CameraSpec
from envs.sim import SimConfig, Simulator
from trainers.data.collect import collect_expert, make_env
from trainers.data.dataset import TrajectoryDataset, collate_trajectories
from trainers.data.frames import FrameSource, future_targets
from trainers.data.windows import WindowBatchSampler, WindowDataset, collate_windows, history_steps

CAMERA = CameraSpec(width=32, height=24)
DOWN = CameraSpec(uuid="down", width=32, height=24, pitch=-30.0, modalities=("rgb",))
GOAL = CameraSpec(uuid="goal", width=32, height=24, modalities=("rgb",))
SPEC = SampleSpec(kind="window", history=4, stride=2, horizon=8)


@pytest.fixture(scope="module")
def stores(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("window_stores")
    common = {"n_episodes": 2, "width": 32, "height": 24, "progress": False, "task": "pointnav"}
    collect_expert(tiny_dataset, "train", root / "poses", **common)
    collect_expert(tiny_dataset, "train", root / "frames", store_frames=True, **common)
    collect_expert(tiny_dataset, "train", root / "waypoints", action_mode="waypoint", n_waypoints=4, **common)
    return root


def test_history_steps_clamp_to_the_first_frame():
    steps, mask = history_steps(3, 4, 2)
    assert steps.tolist() == [0, 0, 0, 1, 3] and mask.tolist() == [False, False, False, True, True]


def test_future_targets_by_hand():
    positions = np.array([[0, 0, 0], [0, 0, -0.25], [0, 0, -0.5], [0, 0, -0.5]], np.float32)
    yaws = np.array([0.0, 0.0, 0.0, np.pi / 2])
    future, mask = future_targets(positions, yaws, 1, 3)
    np.testing.assert_allclose(future, [[0.25, 0, 0], [0.25, 0, np.pi / 2], [0.25, 0, np.pi / 2]], atol=1e-6)
    assert mask.tolist() == [True, True, False]


def test_window_items_render_the_history_the_extra_camera_and_the_goal(stores, tiny_dataset):
    data = WindowDataset(stores / "poses", tiny_dataset / "scenes", CAMERA, SPEC, [DOWN], GOAL)
    assert len(data) == sum(ep.n_steps for ep in data.store)
    i = 7
    item = data[i]
    ep = data.store.get(int(data.episodes[i]), frames=False)
    t = item["step"]
    assert item["rgb"].shape == (5, 24, 32, 3) and item["depth"].shape == (5, 24, 32, 1)
    assert item["down_rgb"].shape == (24, 32, 3) and item["imagegoal"].shape == (24, 32, 3)
    sim = Simulator(tiny_dataset / "scenes" / ep.scene_id, SimConfig(cameras=(CAMERA,)))
    try:
        steps, _ = history_steps(t, 4, 2)
        for k, s in enumerate(steps):
            view = sim.render_at(ep.positions[s], ep.rotations[s])
            assert np.array_equal(item["rgb"][k], view["rgb"]) and np.array_equal(
                item["depth"][k], view["depth"]
            )
        down = sim.render_at(ep.positions[t], ep.rotations[t], DOWN)["rgb"]
        assert np.array_equal(item["down_rgb"], down) and not np.array_equal(down, item["rgb"][-1])
        goal = sim.render_at(ep.extras["goal_position"], ep.rotations[-1], GOAL)["rgb"]
        assert np.array_equal(item["imagegoal"], goal)
    finally:
        sim.close()
    yaws = yaws_from_quaternions(ep.rotations)
    n = min(8, ep.n_steps - 1 - t)
    expected = agent_frame_deltas(
        ep.positions[t + 1 : t + 1 + n], yaws[t + 1 : t + 1 + n], ep.positions[t], yaws[t]
    )
    np.testing.assert_allclose(item["future"][:n], expected, atol=1e-5)
    assert item["future_mask"].tolist() == [True] * n + [False] * (8 - n)
    assert item["action"] == ep.actions[t] and item["pointgoal"].shape == (2,)


def test_pointgoal_of_the_first_window_is_the_environments(stores, tiny_dataset):
    data = WindowDataset(stores / "poses", tiny_dataset / "scenes", CAMERA, SPEC)
    ep = data.store.get(0, frames=False)
    env = make_env(tiny_dataset, "train", 32, 24, task="pointnav")
    try:
        obs, _ = env.reset(options={"episode_id": ep.episode_id})
    finally:
        env.close()
    np.testing.assert_allclose(data[0]["pointgoal"], obs["pointgoal"], atol=1e-4)


def test_stored_frames_are_read_row_by_row_and_equal_the_rendered_ones(stores, tiny_dataset):
    rendered = WindowDataset(stores / "frames", tiny_dataset / "scenes", CAMERA, SPEC, frames="render")
    stored = WindowDataset(stores / "frames", tiny_dataset / "scenes", CAMERA, SPEC, frames="stored")
    for i in (0, 5, len(stored) - 1):
        a, b = rendered[i], stored[i]
        assert np.array_equal(a["rgb"], b["rgb"]) and np.array_equal(a["depth"], b["depth"])
    with pytest.raises(KeyError, match="no stored rgb/depth frames"):
        WindowDataset(stores / "poses", tiny_dataset / "scenes", CAMERA, SPEC, frames="stored")[0]


def test_windows_collate_and_the_sampler_shards_and_restarts(stores, tiny_dataset):
    data = WindowDataset(stores / "poses", tiny_dataset / "scenes", CAMERA, SPEC, [DOWN])
    batch = collate_windows([data[0], data[3]])
    assert tuple(batch["rgb"].shape) == (2, 5, 24, 32, 3) and tuple(batch["future"].shape) == (2, 8, 3)
    assert tuple(batch["down_rgb"].shape) == (2, 24, 32, 3) and len(batch["instruction_text"]) == 2
    ranks = [WindowBatchSampler(len(data), 3, seed=1, rank=r, world_size=2) for r in range(2)]
    shares = [list(s) for s in ranks]
    assert len(shares[0]) == len(shares[1]) and not {i for b in shares[0] for i in b} & {
        i for b in shares[1] for i in b
    }
    assert shares[0] == [list(b) for b in WindowBatchSampler(len(data), 3, seed=1, rank=0, world_size=2)]
    ranks[0].set_start(1)
    assert list(ranks[0]) == shares[0][1:]
    ranks[0].set_epoch(1)
    assert list(ranks[0]) != shares[0]


def test_waypoint_collection_stores_the_experts_path_points(stores, tiny_dataset):
    data = TrajectoryDataset(stores / "waypoints", tiny_dataset / "scenes", CAMERA)
    for ep in data.store:
        assert (
            ep.labels.shape == (ep.n_steps, 4, 3) and (ep.actions == -1).all() and (ep.executed == -1).all()
        )
        assert ep.extras["task"] == "pointnav" and ep.extras["metrics"]["success"] == 1.0
    ep = data.store[0]
    env = make_env(tiny_dataset, "train", 32, 24, task="pointnav", action_mode="waypoint", n_waypoints=4)
    try:
        env.reset(options={"episode_id": ep.episode_id})
        np.testing.assert_allclose(ep.labels[0], env.unwrapped.expert_action(), atol=1e-6)
    finally:
        env.close()
    # The first label's points are 0.25 m apart along the path (the expert's forward step).
    steps = np.diff(np.vstack([[0, 0], ep.labels[0][:, :2]]), axis=0)
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1)[:2], 0.25, atol=1e-4)
    batch = collate_trajectories([data[0], data[1]])
    t = max(data.store[0].n_steps, data.store[1].n_steps)
    assert tuple(batch["labels"].shape) == (2, t, 4, 3) and tuple(batch["positions"].shape) == (2, t, 3)
    assert tuple(batch["goal_position"].shape) == (2, 3) and tuple(batch["yaws"].shape) == (2, t)


def test_the_renderer_cache_keeps_the_recent_scenes_within_its_count_and_bytes(stores, tiny_dataset):
    store = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA).store
    scenes = sorted(p.name for p in (tiny_dataset / "scenes").glob("*.glb"))[:3]
    assert len(scenes) == 3
    source = FrameSource(store, tiny_dataset / "scenes", CAMERA, scene_cache_size=2)
    first = source.renderer(scenes[0])
    pose = np.zeros(3, np.float32), np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    before = source.render(scenes[0], CAMERA, [pose[0]], [pose[1]])
    assert source.renderer(scenes[0]) is first  # kept: no reload
    source.renderer(scenes[1])
    source.renderer(scenes[0])  # the most recent again, so scene 1 is the oldest now
    source.renderer(scenes[2])
    assert list(source._renderers) == [scenes[0], scenes[2]]
    again = source.render(scenes[1], CAMERA, [pose[0]], [pose[1]])  # reloaded, evicting scene 0
    assert list(source._renderers) == [scenes[2], scenes[1]] and source.renderer(scenes[0]) is not first
    assert again["rgb"].shape == before["rgb"].shape
    sizes = sorted((tiny_dataset / "scenes" / s).stat().st_size for s in scenes)
    small = FrameSource(store, tiny_dataset / "scenes", CAMERA, scene_cache_bytes=sizes[0] + sizes[1] - 1)
    for scene in scenes:
        small.renderer(scene)
        assert list(small._renderers) == [scene]  # any two files exceed the bytes; the newest always stays
