"""System-2 pixel-goal samples on a hand-made expert episode: queries, history frames, targets against the
rendered look-down view, STOP oversampling, augmentation, collation and the sampler."""

import math

import numpy as np
import pytest

from agents.contract import SampleSpec
from envs.datasets.store import Episode, TrajectoryStore
from envs.nav.geometry import quaternion_from_yaw
from envs.render import CameraSpec, Renderer
from envs.render.projection import back_project, project
from envs.scenes import load_scene
from envs.tasks.pixel_goal import choose_pixel_goal
from trainers.data.pixel_goals import (
    PixelGoalBatchSampler,
    PixelGoalDataset,
    collate_pixel_goals,
    history_steps,
    lookdown_camera,
)

SCENE = "house_00000.glb"
CAMERA = CameraSpec(width=32, height=32)
DOWN = lookdown_camera(CAMERA, width=64, height=64)  # 30° down, larger than the main camera
N_TURNS, N_FORWARD = 6, 14  # 90° left, then 3.5 m straight ahead, then STOP: T = 21
ITEM_KEYS = {
    "episode_id", "step", "instruction_text", "history", "current", "lookdown", "lookdown_depth", "kind",
    "answer", "pixel",
}  # fmt: skip


def _open_floor(scenes_dir):
    """A navigable point and a yaw with 3.8 m of open floor straight ahead."""
    from envs.nav import NavGrid

    grid = NavGrid.from_scene(load_scene(scenes_dir / SCENE))
    rng = np.random.default_rng(0)
    for _ in range(3000):
        p = grid.sample_navigable_point(rng)
        for yaw in np.arange(0.0, 2 * math.pi, math.pi / 4):
            ahead = np.array([-math.sin(yaw), 0.0, -math.cos(yaw)])
            if all(grid.is_navigable(p + s * ahead) for s in np.linspace(0.0, 3.8, 39)):
                return np.asarray(p, np.float32), float(yaw), ahead
    raise AssertionError("no 3.8 m stretch of open floor in the test house")


def hand_made_episode(scenes_dir, episode_id="hand", executed=None) -> Episode:
    """Turn left 6 times (90°), walk 14 steps of 0.25 m, STOP."""
    start, yaw, ahead = _open_floor(scenes_dir)
    actions = np.array([2] * N_TURNS + [1] * N_FORWARD + [0])
    yaws = [yaw - math.radians(15) * (N_TURNS - min(s, N_TURNS)) for s in range(len(actions))]
    positions = [start + 0.25 * max(s - N_TURNS, 0) * ahead for s in range(len(actions))]
    return Episode(
        episode_id=episode_id, scene_id=SCENE, instruction_text="turn left and walk down the room",
        positions=np.array(positions), rotations=np.stack([quaternion_from_yaw(y) for y in yaws]),
        actions=actions, executed=actions if executed is None else executed,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("pixel_goal_store")
    store = TrajectoryStore(root)
    scenes = tiny_dataset / "scenes"
    store.append(hand_made_episode(scenes))
    dagger = hand_made_episode(scenes, "dagger", executed=np.array([2] * 5 + [1] * 15 + [0]))
    store.append(dagger)  # an episode the agent drove: skipped
    start, yaw, _ = _open_floor(scenes)
    turns = [yaw, yaw - math.radians(15), yaw - math.radians(30), yaw - math.radians(30)]
    ahead = np.array([-math.sin(turns[-1]), 0.0, -math.cos(turns[-1])], np.float32)
    short = Episode(
        episode_id="short", scene_id=SCENE, instruction_text="turn right, one step, stop",
        positions=np.array([start, start, start, start + 0.25 * ahead]),
        rotations=np.stack([quaternion_from_yaw(y) for y in turns]),
        actions=np.array([3, 3, 1, 0]), executed=np.array([3, 3, 1, 0]),
    )  # fmt: skip
    store.append(short)  # t=0: its next point (0.25 m) is below the view; two right turns, then forward
    return root


@pytest.fixture(scope="module")
def data(store, tiny_dataset):
    spec = SampleSpec(kind="pixel_goal", augment=False)
    return PixelGoalDataset(store, tiny_dataset / "scenes", CAMERA, spec, DOWN)


def test_history_steps_follow_internnav():
    assert history_steps(0, 8).tolist() == []
    assert history_steps(4, 8).tolist() == [0, 1, 2, 3]
    assert history_steps(12, 8).tolist() == [0, 1, 3, 4, 6, 7, 9, 11]
    assert history_steps(100, 8).tolist() == [0, 14, 28, 42, 56, 70, 84, 99]


def test_queries_targets_and_stop_oversampling(data):
    # Queries every 4 steps before the last (20): t=0 sees the path 90° to its left (out of view) and turns;
    # from t=4 the path is in sight and its farthest visible point within 16 steps is the end of the walk.
    rows = list(zip(data.steps.tolist(), data.kinds, data.answers, strict=True))[:10]
    assert (data.episodes[:10] == 0).all() and rows == [
        (0, "turn", "←←←←"), (4, "pixel", data.answers[1]), (8, "pixel", data.answers[2]),
        (12, "pixel", data.answers[3]), (16, "pixel", data.answers[4]),
    ] + [(20, "stop", "STOP")] * 5  # fmt: skip
    assert data.goal_steps[:10].tolist() == [-1, 20, 20, 20, 20] + [-1] * 5
    short = list(zip(data.steps.tolist(), data.answers, strict=True))[10:]
    assert (data.episodes[10:] == 2).all() and short == [(0, "→→")] + [(3, "STOP")] * 5
    assert data.counts == {"pixel": 4, "turn": 2, "stop": 10, "dropped": 0, "skipped_episodes": 1}
    assert data.pixels[0].tolist() == [-1, -1] and data.pixels[-1].tolist() == [-1, -1]


def test_arrows_stop_at_the_first_forward_and_unseen_forward_queries_are_dropped(store, tiny_dataset):
    # min_goal_frames=5 leaves the queries at t=16 and 18 (under 5 steps before the end) without candidates.
    spec = SampleSpec(kind="pixel_goal", augment=False, min_goal_frames=5, sample_every=2, stop_repeat=2)
    data = PixelGoalDataset(store, tiny_dataset / "scenes", CAMERA, spec, DOWN)
    main = data.steps[data.episodes == 0].tolist()
    assert data.answers[0] == "←←←←" and 4 in main and 16 not in main and 18 not in main
    short = [(t, a) for t, a, e in zip(data.steps, data.answers, data.episodes, strict=True) if e == 2]
    assert short == [(0, "→→"), (3, "STOP"), (3, "STOP")]  # t=2 (forward, nothing ahead in range): dropped
    assert data.counts["dropped"] == 3 and data.kinds.count("stop") == 4


def test_a_pixel_goal_lands_where_the_renderer_draws_the_path_point(data):
    """t=8: the goal is the end of the walk, 3 m straight ahead on the floor, seen 30° down."""
    item = data[2]
    assert set(item) == ITEM_KEYS and item["step"] == 8 and item["kind"] == "pixel"
    row, col = item["pixel"].tolist()
    assert item["answer"] == f"{row} {col}" and item["pixel"].dtype == np.int64
    distance, height, f = 3.0, 1.25, DOWN.width / 2  # hfov 90°: focal length = half the width
    expected_row = DOWN.height / 2 - f * math.tan(math.radians(30) - math.atan(height / distance))
    assert row == math.floor(expected_row) and abs(col + 0.5 - DOWN.width / 2) <= 1
    # The floor's z-depth through the centre of that pixel row (a ray tan(b) below the axis), and the point's.
    tan_b, down = (row + 0.5 - DOWN.height / 2) / f, math.radians(30)
    centre = height / (math.sin(down) + tan_b * math.cos(down))
    assert item["lookdown_depth"][row, col, 0] == pytest.approx(centre, abs=0.02)
    point = distance * math.cos(down) + height * math.sin(down)
    assert abs(centre - point) < 0.15  # a pixel of floor 3 m away spans about 0.2 m of depth
    assert item["lookdown"].shape == (64, 64, 3) and item["lookdown_depth"].dtype == np.float32


def test_a_floor_point_behind_a_wall_is_not_a_pixel_goal(data, tiny_dataset):
    ep = data.store.get(0)
    pose = ep.positions[0], ep.rotations[0]
    renderer = Renderer(load_scene(tiny_dataset / "scenes" / SCENE))
    try:
        depth = renderer.render(DOWN, *pose)["depth"]
    finally:
        renderer.release()
    # The top row looks 15° up: it meets a wall. A floor point 1 m beyond that wall, in the same direction.
    col = DOWN.width // 2
    wall = back_project(DOWN, *pose, np.array([0]), np.array([col]), depth)[0]
    assert depth[0, col, 0] < DOWN.max_depth and wall[1] > ep.positions[0][1] + 0.5
    beyond = wall + 1.0 * (wall - (ep.positions[0] + [0, 1.25, 0])) * [1, 0, 1] / np.linalg.norm(
        (wall - ep.positions[0])[[0, 2]]
    )
    beyond[1] = ep.positions[0][1]
    floor_near = back_project(DOWN, *pose, np.array([60]), np.array([col]), depth)[0]
    assert project(DOWN, *pose, beyond).in_view[0]  # in the image, hidden by the wall
    assert choose_pixel_goal(DOWN, *pose, [beyond], depth) == (-1, (-1, -1))
    k, pixel = choose_pixel_goal(DOWN, *pose, [floor_near, beyond, floor_near], depth)
    assert k == 0 and pixel == (60, col)  # the first visible run ends before the hidden point


def test_history_and_current_are_the_main_cameras_frames(data, tiny_dataset):
    item = data[3]  # t=12
    ep = data.store.get(0)
    assert item["history"].shape == (8, 32, 32, 3) and item["current"].shape == (32, 32, 3)
    renderer = Renderer(load_scene(tiny_dataset / "scenes" / SCENE))
    try:
        for k, s in enumerate([0, 1, 3, 4, 6, 7, 9, 11, 12]):
            frame = renderer.render(CAMERA, ep.positions[s], ep.rotations[s])["rgb"]
            assert np.array_equal(item["history"][k] if k < 8 else item["current"], frame)
    finally:
        renderer.release()
    assert data[0]["history"].shape == (0, 32, 32, 3) and data[1]["history"].shape == (4, 32, 32, 3)


def test_augmentation_is_seeded_per_epoch_and_index_and_spares_the_lookdown(store, tiny_dataset, data):
    spec = SampleSpec(kind="pixel_goal")
    a = PixelGoalDataset(store, tiny_dataset / "scenes", CAMERA, spec, DOWN, seed=3)
    b = PixelGoalDataset(store, tiny_dataset / "scenes", CAMERA, spec, DOWN, seed=3)
    plain = data[(0, 3)]
    x, y, later = a[(0, 3)], b[(0, 3)], a[(1, 3)]
    assert np.array_equal(x["history"], y["history"]) and np.array_equal(x["current"], y["current"])
    assert not np.array_equal(x["current"], plain["current"])
    assert not np.array_equal(x["history"], later["history"])
    assert np.array_equal(x["lookdown"], plain["lookdown"]) and np.array_equal(
        x["lookdown"], later["lookdown"]
    )
    other_seed = PixelGoalDataset(store, tiny_dataset / "scenes", CAMERA, spec, DOWN, seed=4)[(0, 3)]
    assert not np.array_equal(x["current"], other_seed["current"])
    stops = [a[(0, i)]["current"] for i in range(5, 10)]  # the 5 STOP copies are augmented differently
    assert len({s.tobytes() for s in stops}) == 5


def test_collate_keeps_history_as_a_list_and_the_sampler_passes_the_epoch(data):
    batch = collate_pixel_goals([data[0], data[1], data[2]])
    assert [h.shape[0] for h in batch["history"]] == [0, 4, 8]
    assert tuple(batch["pixel"].shape) == (3, 2) and tuple(batch["lookdown"].shape) == (3, 64, 64, 3)
    assert tuple(batch["lookdown_depth"].shape) == (3, 64, 64, 1) and batch["kind"] == [
        "turn",
        "pixel",
        "pixel",
    ]
    sampler = PixelGoalBatchSampler(len(data), 3, seed=1)
    sampler.set_epoch(2)
    batches = list(sampler)
    assert len(batches) == 5 and all(e == 2 for b in batches for e, _ in b)
    assert len({i for b in batches for _, i in b}) == 15  # 16 samples: 5 batches of 3, shuffled
    assert [i for b in batches for _, i in b] != sorted(i for b in batches for _, i in b)
    sampler.set_start(1)
    assert list(sampler) == batches[1:]
    ranks = [PixelGoalBatchSampler(len(data), 2, seed=1, rank=r, world_size=2) for r in range(2)]
    shares = [{i for b in r for _, i in b} for r in ranks]
    assert not shares[0] & shares[1] and len(shares[0]) == len(shares[1]) == 8


def test_bad_specs_and_stores_are_named(store, tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="kind='pixel_goal'"):
        PixelGoalDataset(store, tiny_dataset / "scenes", CAMERA, SampleSpec(kind="window"))
    with pytest.raises(ValueError, match="max_goal_frames"):
        SampleSpec(kind="pixel_goal", min_goal_frames=5, max_goal_frames=4)
    assert SampleSpec(kind="pixel_goal").sample_every == 4 and SampleSpec(kind="pixel_goal").history == 8
    assert SampleSpec(kind="window").sample_every == 1 and SampleSpec().history == 0
    waypoints = TrajectoryStore(tmp_path / "waypoints")
    ep = hand_made_episode(tiny_dataset / "scenes")
    ep.actions[:] = -1
    ep.executed[:] = -1
    waypoints.append(ep)
    with pytest.raises(ValueError, match="'hand' holds waypoint labels"):
        PixelGoalDataset(
            tmp_path / "waypoints", tiny_dataset / "scenes", CAMERA, SampleSpec(kind="pixel_goal")
        )


def test_stored_main_camera_frames_are_read_and_the_lookdown_is_rendered(data, tiny_dataset, tmp_path):
    ep = hand_made_episode(tiny_dataset / "scenes")
    renderer = Renderer(load_scene(tiny_dataset / "scenes" / SCENE))
    try:
        views = [renderer.render(CAMERA, p, r) for p, r in zip(ep.positions, ep.rotations, strict=True)]
    finally:
        renderer.release()
    # Stored frames that differ from the renders (inverted colours) show where the items come from.
    ep.frames = {
        "rgb": 255 - np.stack([v["rgb"] for v in views]),
        "depth": np.stack([v["depth"] for v in views]),
    }
    TrajectoryStore(tmp_path / "framed").append(ep)
    spec = SampleSpec(kind="pixel_goal", augment=False)
    stored = PixelGoalDataset(
        tmp_path / "framed", tiny_dataset / "scenes", CAMERA, spec, DOWN, frames="stored"
    )
    item, rendered = stored[3], data[3]  # t=12 in both
    assert np.array_equal(item["current"], 255 - rendered["current"])
    assert np.array_equal(item["history"], 255 - rendered["history"])
    assert np.array_equal(item["lookdown"], rendered["lookdown"]) and item["answer"] == rendered["answer"]
