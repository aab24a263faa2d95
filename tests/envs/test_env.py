"""The Gymnasium environments on a tiny generated dataset: checks, determinism, termination, errors."""

import gzip
import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.env import NavEnv
from envs.rollout import rollout
from envs.wrappers import DropText

SIZE = 48


def make(task, tiny_dataset, split="val_unseen", **kw):
    return gym.make(envs_id(task), episodes=tiny_dataset / split, width=SIZE, height=SIZE, **kw)


def envs_id(task):
    return {v: k for k, v in envs.ENV_IDS.items()}[task]


@pytest.mark.parametrize("env_id", sorted(envs.ENV_IDS))
def test_check_env_passes(env_id, tiny_dataset):
    env = gym.make(env_id, episodes=tiny_dataset / "train", width=SIZE, height=SIZE, render_mode="rgb_array")
    check_env(env.unwrapped)
    env.close()


def test_make_without_arguments_uses_the_default_dataset():
    env = gym.make("NavGym/VLN-v0")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["rgb"].shape == (128, 128, 3) and obs["depth"].shape == (128, 128, 1)
    assert obs["instruction_text"] and obs["instruction"][0] > 0
    env.close()


def test_same_seed_same_episodes_and_observations(tiny_dataset):
    def run(seed):
        env = make("vln", tiny_dataset, split="train")
        out = []
        for k in range(3):
            obs, info = env.reset(seed=seed if k == 0 else None)
            for a in (1, 2, 1):
                obs, *_ = env.step(a)
            out.append((info["episode_id"], obs["rgb"].copy(), obs["depth"].copy()))
        env.close()
        return out

    a, b = run(7), run(7)
    assert [x[0] for x in a] == [x[0] for x in b]
    for (_, rgb_a, d_a), (_, rgb_b, d_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(rgb_a, rgb_b)
        np.testing.assert_array_equal(d_a, d_b)


def test_stop_terminates_and_step_limit_truncates(tiny_dataset):
    env = make("vln", tiny_dataset, max_episode_steps=3)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and "metrics" in info
    env.reset()
    flags = [env.step(2)[2:4] for _ in range(3)]
    assert flags[:2] == [(False, False), (False, False)] and flags[2] == (False, True)
    env.close()


def test_observations_stay_in_space_while_moving(tiny_dataset):
    env = make("pointnav", tiny_dataset)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs, _, term, trunc, _ = env.step(int(rng.choice([1, 2, 3])))
        assert env.observation_space.contains(obs)
        if term or trunc:
            obs, _ = env.reset()
    env.close()


@pytest.mark.parametrize("split", ["train", "val_seen", "val_unseen", "test"])
def test_expert_solves_every_split(split, tiny_dataset):
    env = make("vln", tiny_dataset, split=split)
    results = rollout(
        env, lambda obs: env.unwrapped.expert_action(), n_episodes=len(env.unwrapped.dataset), seed=0
    )
    for r in results:
        assert r.metrics["success"] == 1.0, r.metrics
        assert r.metrics["spl"] > 0.9 and r.metrics["ndtw"] > 0.9
    env.close()


def test_pointnav_observations_match_geometry(tiny_dataset):
    env = make("pointnav", tiny_dataset)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    state = base.sim.get_agent_state()
    goal = base.episode.goal_position
    assert obs["pointgoal"][0] == pytest.approx(np.hypot(*(goal - state.position)[[0, 2]]), abs=1e-4)
    np.testing.assert_allclose(obs["gps"], 0.0, atol=1e-6)
    obs, *_ = env.step(2)  # turn left 15 degrees: the compass reads +15 degrees
    assert obs["compass"][0] == pytest.approx(np.radians(15.0), abs=1e-5)
    obs, *_ = env.step(3)
    obs, *_ = env.step(1)
    if not base.sim.collided:  # moved 0.25 m straight ahead: GPS (forward, right) = (0.25, 0)
        np.testing.assert_allclose(obs["gps"], [0.25, 0.0], atol=1e-3)
    env.close()


def test_waypoint_mode_moves_the_agent(tiny_dataset):
    env = make("pointnav", tiny_dataset, action_mode="waypoint", n_waypoints=2)
    env.reset(seed=0)
    start = env.unwrapped.sim.get_agent_state().position.copy()
    action = np.array([[0.0, 0.0, np.pi / 2], [0.0, 0.0, np.pi / 2]], np.float32)
    _, _, _, _, info = env.step(action)
    state = env.unwrapped.sim.get_agent_state()
    np.testing.assert_allclose(state.position, start, atol=1e-5)  # turning in place does not move the agent
    turned = (np.degrees(state.yaw - env.unwrapped.task.start_yaw) + 180.0) % 360.0 - 180.0
    assert turned == pytest.approx(90.0, abs=1.0)  # waypoints are relative to the pose at the call
    env.close()


def test_async_vector_env(tiny_dataset):
    # This process already rendered (EGL is initialised), so workers must be spawned, not forked.
    venv = gym.make_vec(
        "NavGym/VLN-v0",
        2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},
        episodes=tiny_dataset / "train",
        width=32,
        height=32,
    )
    obs, infos = venv.reset(seed=0)
    assert obs["rgb"].shape == (2, 32, 32, 3)
    obs, rewards, term, trunc, infos = venv.step(np.array([1, 2]))
    assert rewards.shape == (2,)
    venv.close()


def test_stable_baselines3_check_env_on_pointnav(tiny_dataset):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = DropText(make("pointnav", tiny_dataset))
    sb3_checker.check_env(env, warn=False)
    env.close()


def test_render_composes_rgb_depth_and_map(tiny_dataset):
    env = make("vln", tiny_dataset, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[1] > 2 * frame.shape[0] // 2
    env.close()


# ---------------------------------------------------------------------------------------------- errors
def _copy_split(tiny_dataset, tmp_path, edit):
    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset / "val_unseen", root / "val_unseen")
    shutil.copytree(tiny_dataset / "scenes", root / "scenes")
    path = root / "val_unseen" / "val_unseen.json.gz"
    data = json.loads(gzip.decompress(path.read_bytes()))
    edit(data["episodes"][0])
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    (root / "val_unseen" / "val_unseen_gt.json.gz").unlink()
    return root / "val_unseen", data["episodes"][0]["episode_id"]


def test_unknown_id_fails():
    with pytest.raises(gym.error.Error):
        gym.make("NavGym/Nope-v0")


def test_unknown_task_fails():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        NavEnv(task="nope")


def test_missing_episode_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        gym.make("NavGym/VLN-v0", episodes=tmp_path / "missing" / "x.json.gz")


def test_non_navigable_start_names_episode_and_field(tiny_dataset, tmp_path):
    split, ep_id = _copy_split(
        tiny_dataset, tmp_path, lambda ep: ep.update(start_position=[500.0, 0.0, 500.0])
    )
    env = gym.make("NavGym/VLN-v0", episodes=split, width=SIZE, height=SIZE)
    with pytest.raises(
        ValueError, match=rf"episode {ep_id}: field 'start_position'.*not on the navigable area"
    ):
        env.reset(options={"episode_id": ep_id})


def test_unreachable_goal_names_episode_and_field(tiny_dataset, tmp_path):
    split, ep_id = _copy_split(
        tiny_dataset, tmp_path, lambda ep: ep["goals"][0].update(position=[500.0, 0, 500.0])
    )
    env = gym.make("NavGym/VLN-v0", episodes=split, width=SIZE, height=SIZE)
    with pytest.raises(ValueError, match=rf"episode {ep_id}: field 'goals'.*not reachable"):
        env.reset(options={"episode_id": ep_id})


def test_missing_scene_file_names_it(tiny_dataset, tmp_path):
    split, ep_id = _copy_split(tiny_dataset, tmp_path, lambda ep: ep.update(scene_id="nowhere/house.glb"))
    env = gym.make("NavGym/VLN-v0", episodes=split, width=SIZE, height=SIZE)
    with pytest.raises(FileNotFoundError, match="nowhere/house.glb"):
        env.reset(options={"episode_id": ep_id})


def test_vln_odometry_is_the_pose_in_the_start_frame(tiny_dataset):
    env = make("vln", tiny_dataset, split="train")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["odometry"], np.zeros(3, np.float32))
    obs, *_ = env.step(2)  # TURN_LEFT 15°: no motion, yaw +15°
    np.testing.assert_allclose(obs["odometry"], [0.0, 0.0, np.radians(15)], atol=1e-6)
    obs, *_ = env.step(1)  # MOVE_FORWARD 0.25 m along the turned heading (unless a wall is in the way)
    if not env.unwrapped.sim.collided:
        c, s = np.cos(np.radians(15)), np.sin(np.radians(15))
        np.testing.assert_allclose(obs["odometry"], [0.25 * c, 0.25 * s, np.radians(15)], atol=1e-5)
    assert env.observation_space.contains(obs)
    env.close()


def test_exploration_adds_the_depth_it_measures_to_an_rgb_only_camera(tiny_dataset):
    """An agent asking for RGB only still explores: the task's required depth is added to the first camera."""
    from envs.render import CameraSpec
    from envs.sim import SimConfig

    rgb_only = SimConfig(cameras=(CameraSpec(width=16, height=16, modalities=("rgb",)),))
    env = NavEnv("explore", episodes=tiny_dataset / "val_unseen", sim_config=rgb_only)
    try:
        obs, _ = env.reset(seed=0)
        assert env.sim_config.cameras[0].modalities == ("rgb", "depth") and obs["depth"].shape == (16, 16, 1)
        _, _, _, _, info = env.step(1)
        assert "collided" in info
    finally:
        env.close()
    assert rgb_only.cameras[0].modalities == ("rgb",)  # the caller's config is not changed
