"""System-1 data: the generator (determinism, resume), its trajectories and critic labels, pixel goals, and
training on the generated store through trainers/run.py."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.datasets.critic import augment_path, critic_labels, obstacle_distance_field, path_value
from envs.datasets.digest import compute_digest
from envs.datasets.r2r import load_episodes
from envs.datasets.system1 import CRITIC_LABEL_SIZE, HORIZON, critic_fields, generate_system1
from envs.datasets.system1_work import System1Spec
from envs.nav.geometry import quaternion_from_yaw, yaws_from_quaternions
from envs.nav.grid import NavGrid, bilinear
from envs.render import CameraSpec
from envs.render.projection import back_project
from envs.scenes.io import load_scene
from envs.scenes.primitives import MeshBuilder, box, quad_y
from envs.scenes.scene import Instance, Scene
from envs.sim import SimConfig, Simulator
from envs.tasks.pixel_goal import pixel_goal_mask

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(n_train_easy=1, n_train_hard=0, n_train_houses=0, trajectories_per_scene=2, n_eval_scenes=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s1data")
    spec = System1Spec(1, 1, 1, 2, n_eval_scenes=1, eval_episodes_per_scene=3)
    generate_system1(out, spec, progress=False)
    return out


def test_layout_splits_and_navdp_pairs(data):
    info = json.loads((data / "info.json").read_text())
    assert info["trajectories"]["episodes"] == 6 and info["critic_labels"]["size"] == 74
    for split in ("cluttered_easy", "cluttered_hard", "houses"):
        episodes = load_episodes(data / split, data / "scenes").episodes
        assert len(episodes) == 3 and all(ep.scene_id == f"{split}_00000.glb" for ep in episodes)
        pairs = np.load(data / split / "start_goal_pairs" / f"{split}_00000.npy")
        assert pairs.shape == (3, 5)
        for ep, row in zip(episodes, pairs, strict=True):
            assert row[:4] == pytest.approx([ep.start_position[0], -ep.start_position[2], ep.goal_position[0],
                                              -ep.goal_position[2]], abs=1e-5)  # fmt: skip
            assert ep.info["geodesic_distance"] >= 2.0
    train = {ep.scene_id for ep in load_episodes(data / "train").episodes}
    assert train == {"train_easy_00000.glb", "train_hard_00000.glb", "train_house_00000.glb"}


def test_same_arguments_give_the_same_digest_and_an_interrupted_run_resumes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_system1(a, System1Spec(**SMALL, seed=3), progress=False)
    generate_system1(b, System1Spec(**SMALL, seed=3), progress=False)
    assert compute_digest(a) == compute_digest(b) == json.loads((a / "info.json").read_text())["digest"]
    c = tmp_path / "c"  # a run killed after the scene work, half-way through the store
    shutil.copytree(a, c)
    (c / "info.json").unlink()
    lines = (c / "trajectories" / "index.jsonl").read_text().splitlines(keepends=True)
    (c / "trajectories" / "index.jsonl").write_text(lines[0])
    next((c / ".work").glob("train_easy_*.npz")).unlink()
    generate_system1(c, System1Spec(**SMALL, seed=3), progress=False)
    assert compute_digest(c) == compute_digest(a)
    with pytest.raises(ValueError, match="other arguments"):
        generate_system1(a, System1Spec(**SMALL, seed=4), progress=False)


def test_trajectories_stay_navigable_end_at_the_goal_and_carry_critic_labels(data):
    from envs.datasets.store import TrajectoryStore
    from trainers.data.frames import future_targets

    store = TrajectoryStore(data / "trajectories", readonly=True)
    assert len(store) == 6
    grids = {}
    for ep in store:
        if ep.scene_id not in grids:
            grids[ep.scene_id] = NavGrid.from_scene(load_scene(data / "scenes" / ep.scene_id))
        grid = grids[ep.scene_id]
        assert all(grid.is_navigable(p) for p in ep.positions)
        step = np.linalg.norm(np.diff(ep.positions[:, [0, 2]], axis=0), axis=1)
        assert step.max() <= 0.05 + 1e-4  # 0.5 m/s for 0.1 s
        goal = np.asarray(ep.extras["goal_position"])
        assert np.hypot(*(ep.positions[-1] - goal)[[0, 2]]) <= 0.2
        assert ep.labels.shape == (ep.n_steps, CRITIC_LABEL_SIZE) and np.isfinite(ep.labels).all()
        values, augmented = critic_fields(ep.labels)
        assert values.shape == (ep.n_steps, 2) and augmented.shape == (ep.n_steps, HORIZON, 3)
        yaws = yaws_from_quaternions(ep.rotations)
        t = ep.n_steps // 3
        expert, _ = future_targets(ep.positions, yaws, t, HORIZON, 2)
        # The augmented path is the expert's turned about the start: same length to within the re-splining.
        length = np.linalg.norm(np.diff(np.vstack([[0, 0], expert[:, :2]]), axis=0), axis=1).sum()
        turned = np.linalg.norm(np.diff(np.vstack([[0, 0], augmented[t, :, :2]]), axis=0), axis=1).sum()
        assert turned == pytest.approx(length, rel=0.15, abs=0.05)
    # On average the expert's paths are safer than their augmentations.
    labels = np.concatenate([ep.labels for ep in store])
    assert labels[:, 0].mean() > labels[:, 1].mean()


def test_near_obstacle_starts_face_an_obstacle_and_still_reach_the_goal(tmp_path):
    import math

    from envs.datasets.store import TrajectoryStore
    from envs.datasets.trajectories import FACING_SPREAD, NEAR_OBSTACLE

    assert "near_obstacle_starts" not in System1Spec(**SMALL).to_dict()  # older manifests stay valid
    spec = System1Spec(**{**SMALL, "trajectories_per_scene": 3}, near_obstacle_starts=1.0)
    assert spec.to_dict()["near_obstacle_starts"] == 1.0
    generate_system1(tmp_path, spec, progress=False)
    store = TrajectoryStore(tmp_path / "trajectories", readonly=True)
    assert len(store) == 3
    for ep in store:
        grid = NavGrid.from_scene(load_scene(tmp_path / "scenes" / ep.scene_id))
        assert ep.extras["near_obstacle"] is True and all(grid.is_navigable(q) for q in ep.positions)
        start = ep.positions[0]
        fi, fj = grid.fraction_of(float(start[0]), float(start[2]))
        assert bilinear(grid.clearance, fi, fj) < NEAR_OBSTACLE + grid.cell_size
        gx, gz = grid.clearance_gradient(float(start[0]), float(start[2]))
        facing = np.array([-math.sin(yaws_from_quaternions(ep.rotations[:1])[0]),
                           -math.cos(yaws_from_quaternions(ep.rotations[:1])[0])])  # fmt: skip
        towards = -np.array([gx, gz]) / np.hypot(gx, gz)
        assert float(facing @ towards) >= math.cos(FACING_SPREAD) - 1e-3
        goal = np.asarray(ep.extras["goal_position"])
        assert np.hypot(*(ep.positions[-1] - goal)[[0, 2]]) <= 0.2
    with pytest.raises(ValueError, match="near_obstacle_starts"):
        System1Spec(**SMALL, near_obstacle_starts=1.5)


def _wall_grid() -> NavGrid:
    mask = np.ones((200, 80), bool)  # 4 m (x from -2 m) x 10 m (z from -5 m): a wall fills x > 1 m
    mask[:, 60:] = False
    return NavGrid.from_mask(mask, origin=(-2.0, -5.0), cell_size=0.05)


def _straight(x: float, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Poses walking along -z at ``x``, 5 cm apart, facing -z (yaw 0)."""
    positions = np.stack([np.full(n, x), np.zeros(n), 1.5 - 0.05 * np.arange(n)], 1).astype(np.float32)
    return positions, np.zeros(n, np.float32)


def test_a_path_grazing_a_wall_scores_lower_than_one_through_the_open():
    grid = _wall_grid()
    field = obstacle_distance_field(grid, radius=0.0)
    graze = critic_labels(grid, field, *_straight(0.95), seed=0)
    open_ = critic_labels(grid, field, *_straight(-1.0), seed=0)
    assert graze[0, 0] == pytest.approx(-5.0, abs=0.05)  # every waypoint within 0.1 m of the wall
    assert open_[0, 0] == pytest.approx(0.0, abs=0.05)  # none, and no change of distance
    # Moving away from the wall earns 0.5 per metre of distance gained.
    assert path_value([0.2, 0.4, 0.6]) == pytest.approx(0.2)
    assert path_value([0.05, 0.05, 0.2]) == pytest.approx(-2.5 + 0.075)
    # Labels are deterministic per step, and a zero turn leaves a straight path as it is.
    np.testing.assert_array_equal(graze, critic_labels(grid, field, *_straight(0.95), seed=0))
    path = np.stack([0.1 * np.arange(1, 25), np.zeros(24), np.zeros(24)], 1).astype(np.float32)
    np.testing.assert_allclose(augment_path(path, 0.0), path, atol=1e-5)
    turned = augment_path(path, np.radians(45.0))
    assert turned[-1, 1] > 0.5 and turned[0, 0] > 0  # bends left, leaving forward


def test_critic_fields_splits_arrays_and_tensors():
    import torch

    labels = np.arange(2 * CRITIC_LABEL_SIZE, dtype=np.float32).reshape(2, CRITIC_LABEL_SIZE)
    values, path = critic_fields(labels)
    assert values.tolist() == [[0, 1], [74, 75]] and path[1, 0].tolist() == [76, 77, 78]
    values_t, path_t = critic_fields(torch.from_numpy(labels))
    assert torch.equal(path_t, torch.from_numpy(path))
    with pytest.raises(ValueError, match=r"2 \+ 3\*N"):
        critic_fields(np.zeros((3, 73)))


def _walled_scene() -> Scene:
    mb = MeshBuilder()
    mb.add(quad_y(-4, 4, -4, 4, 0.0), (200, 200, 200), 1)
    mb.add(box((-1.0, 0.0, -1.6), (1.0, 2.0, -1.5)), (200, 30, 30), 2)
    return Scene([mb.build(double_sided=False)], {1: Instance(1, "floor"), 2: Instance(2, "wall")}, name="w")


def test_pixel_goal_mask_follows_the_rendered_depth():
    camera = CameraSpec(width=64, height=64)
    sim = Simulator(_walled_scene(), SimConfig(cameras=(camera,)))
    try:
        position, rotation = np.array([0.0, 0.0, 0.0]), quaternion_from_yaw(0.0)
        depth = sim.render_at(position, rotation)["depth"]
        hidden, hidden_seen = pixel_goal_mask(camera, position, rotation, [0.0, 0.0, -3.0], depth)
        assert not hidden_seen and hidden.sum() == 0  # behind the wall
        goal = np.array([2.5, 0.0, -3.0])
        mask, seen = pixel_goal_mask(camera, position, rotation, goal, depth)
        assert seen and mask.dtype == np.uint8 and 1 <= mask.sum() <= 9
        rows, cols = np.nonzero(mask)
        r, c = int(round(rows.mean())), int(round(cols.mean()))
        floor = back_project(camera, position, rotation, np.array([r]), np.array([c]), depth)[0]
        assert np.hypot(floor[0] - goal[0], floor[2] - goal[2]) < 0.4
        behind, behind_seen = pixel_goal_mask(camera, position, rotation, [0.0, 0.0, 3.0], depth)
        assert not behind_seen and behind.sum() == 0
    finally:
        sim.close()


def test_pointnav_observes_the_pixel_goal_and_windows_carry_it(data):
    from agents.contract import SampleSpec
    from envs.env import NavEnv
    from trainers.data.windows import WindowDataset

    env = NavEnv("pointnav", data / "cluttered_easy", width=32, height=32)
    obs, _ = env.reset(seed=0)
    assert obs["pixelgoal"].shape == (32, 32) and obs["pixelgoal"].dtype == np.uint8
    assert env.observation_space["pixelgoal"].contains(obs["pixelgoal"])
    state = env.sim.get_agent_state()
    expected, _ = pixel_goal_mask(env.sim.config.cameras[0], state.position, state.rotation, env.task.goal,
                                  obs["depth"])  # fmt: skip
    np.testing.assert_array_equal(obs["pixelgoal"], expected)
    env.close()
    spec = SampleSpec(kind="window", history=7, stride=4, horizon=24, future_stride=2, pixel_goal_mask=True)
    camera = CameraSpec(width=32, height=32)
    windows = WindowDataset(data / "trajectories", data / "scenes", camera, spec)
    items = [windows[i] for i in range(0, len(windows), 7)]
    seen = [it for it in items if it["pixelgoal_visible"]]
    assert seen and len(seen) < len(items)  # the goal is in view on part of the way only
    for it in items:
        assert it["pixelgoal"].shape == (32, 32) and bool(it["pixelgoal"].any()) == bool(
            it["pixelgoal_visible"]
        )
        assert it["labels"].shape == (CRITIC_LABEL_SIZE,)


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NAVGYM_PLUGINS": "tests.support.window_probe", "PYTHONPATH": str(ROOT)}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_a_window_agent_trains_on_the_generated_store_without_collecting(data, tmp_path):
    from trainers.metrics import read_metrics

    done = _run(
        "trainers/run.py", "agent=window_probe", "trainer=bc", "trainer.n_episodes=0", "trainer.epochs=1",
        f"data.dir={data}", f"data.init_store={data / 'trajectories'}", "data.task=pointnav", "data.width=16",
        "data.height=16", "data.batch_size=64", "data.num_workers=0", "eval.every_epochs=0",
        "eval.final=false", "eval.split=cluttered_easy", "logger.every_steps=1", "threads=1",
        f"run_dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_metrics(tmp_path / "run")
    collect = next(r for r in rows if "collect/episodes" in r)
    assert collect["collect/episodes"] == 0 and collect["collect/store_episodes"] == 6
    assert sum("train/loss" in r for r in rows) >= 2
    done = _run(
        "trainers/run.py", "agent=window_probe", "trainer=bc", "trainer.n_episodes=0", f"data.dir={data}",
        "data.task=pointnav", "eval.final=false", "eval.split=cluttered_easy",
        f"run_dir={tmp_path / 'empty'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0 and "is empty: give data.init_store" in done.stderr, done.stderr[-2000:]


def test_the_expert_runs_the_system1_benchmark_on_a_generated_split(data, tmp_path):
    done = _run(
        "benchmarks/run.py", "agent=expert", "benchmark=system1_pointnav", "benchmark.split=cluttered_hard",
        f"data.dir={data}", "report=false", "progress=false", f"out_dir={tmp_path / 'ev'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert (
        summary["count"] == 3
        and summary["split"] == "cluttered_hard"
        and summary["metrics"]["success"] == 1.0
    )
