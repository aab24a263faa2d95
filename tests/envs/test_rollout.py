"""The rollout loop: agent reset and eval/inference mode, hooks, recorded poses, videos."""

import re
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the environment ids)
from envs.rollout import EpisodeRunner, RolloutHook, rollout


class RecordingAgent(torch.nn.Module):
    """A tiny torch policy that records how the rollout loop calls it."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 4)
        self.resets, self.modes, self.inference = [], [], []

    def reset(self, n_envs, env_ids=None):
        self.resets.append(n_envs)

    def act(self, obs, deterministic=True):
        assert obs["rgb"].shape[0] == 1 and isinstance(obs["instruction_text"], list)
        self.modes.append(self.training)
        self.inference.append(torch.is_inference_mode_enabled())
        return np.array([1 if len(self.modes) % 5 else 2])


class StopAfter(RolloutHook):
    """Overrides the policy with STOP after n steps and counts callbacks."""

    def __init__(self, n):
        self.n, self.calls = n, {"start": 0, "step": 0, "end": 0}

    def on_episode_start(self, env, obs, info):
        self.calls["start"] += 1
        self.t = 0

    def choose_action(self, env, obs, action):
        self.t += 1
        return 0 if self.t > self.n else action

    def on_step(self, env, obs, action, reward, terminated, truncated, info):
        self.calls["step"] += 1

    def on_episode_end(self, env, result):
        self.calls["end"] += 1


def _env(tiny_dataset):
    return gym.make("NavGym/VLN-v0", episodes=tiny_dataset / "val_unseen", width=32, height=32)


def test_agent_is_reset_run_in_eval_and_inference_mode_and_restored(tiny_dataset):
    env, agent = _env(tiny_dataset), RecordingAgent()
    agent.train()
    hook = StopAfter(6)
    results = rollout(env, agent, n_episodes=2, seed=0, hooks=[hook])
    assert agent.resets == [1, 1]
    assert not any(agent.modes) and all(agent.inference)
    assert agent.training  # the previous mode is restored
    assert hook.calls == {"start": 2, "step": 14, "end": 2}
    for r in results:
        assert r.actions[-1] == 0 and len(r.actions) == 7
        assert r.positions.shape == (8, 3) and r.rotations.shape == (8, 4)
        assert set(r.metrics) >= {"success", "spl", "ndtw", "sdtw", "path_length", "steps"}
        assert r.metrics["steps"] == 7
    env.close()


def test_episode_ids_in_order_and_the_expert_succeeds(tiny_dataset):
    env = _env(tiny_dataset)
    ids = [ep.episode_id for ep in env.unwrapped.dataset.episodes][::-1]
    results = rollout(env, lambda obs: env.unwrapped.expert_action(), episode_ids=ids)
    assert [r.episode_id for r in results] == ids
    for r in results:
        assert r.actions[-1] == 0 and r.metrics["success"] == 1.0
    env.close()


def test_videos_are_written(tiny_dataset, tmp_path):
    env = _env(tiny_dataset)
    results = rollout(env, StopAfterPolicy(5), n_episodes=2, seed=0, video_dir=tmp_path, n_videos=1)
    assert results[0].video is not None and results[1].video is None
    frames = imageio.mimread(results[0].video)
    # The reset frame + 6 actions (5 turns, STOP).
    assert len(frames) == 7 and frames[0].ndim == 3 and frames[0].std() > 1.0
    assert not list(tmp_path.glob("*.tmp*"))
    env.close()


class StopAfterPolicy:
    def __init__(self, n):
        self.n, self.t = n, 0

    def __call__(self, obs):
        self.t += 1
        return 0 if self.t % (self.n + 1) == 0 else 2


class ExpertLabels(RolloutHook):
    """Records the expert's action at every step into ``EpisodeResult.expert_actions``."""

    def on_episode_start(self, env, obs, info):
        self.labels = []

    def choose_action(self, env, obs, action):
        self.labels.append(int(env.unwrapped.expert_action()))
        return action

    def on_episode_end(self, env, result):
        result.expert_actions = list(self.labels)


def test_episode_runner_steps_as_rollout_does(tiny_dataset):
    """Stepping one episode by hand through EpisodeRunner gives what rollout() gives, hooks included."""
    env = _env(tiny_dataset)
    (expected,) = rollout(env, StopAfterPolicy(4), n_episodes=1, seed=3, hooks=[ExpertLabels()])
    labels, hook = ExpertLabels(), StopAfter(10)
    runner = EpisodeRunner(env, hooks=[labels, hook])
    obs, info = runner.reset(seed=3)
    assert info["episode_id"] == expected.episode_id and hook.calls["start"] == 1
    for action in expected.actions:
        assert not runner.done
        next_obs, _, terminated, truncated, _ = runner.step(action)
        assert next_obs is runner.obs and (terminated, truncated) == (runner.terminated, runner.truncated)
    assert runner.done and hook.calls["step"] == len(expected.actions)
    with pytest.raises(RuntimeError, match="reset"):
        runner.step(1)
    result = runner.finish()
    assert result.actions == expected.actions and result.expert_actions == expected.expert_actions
    np.testing.assert_array_equal(result.positions, expected.positions)
    assert result.metrics == expected.metrics and hook.calls["end"] == 1
    runner.reset(seed=3)
    with pytest.raises(ValueError, match="action"):
        runner.step()  # no policy: every step needs its action
    env.close()


def test_env_step_is_called_only_by_the_rollout_loop():
    root = Path(__file__).resolve().parents[2]
    # benchmarks/throughput.py times the bare environment, which is what it measures; trainers/rl/envs.py is
    # the gymnasium Wrapper that adds habitat's reward terms under the PPO trainer's vectorised environments.
    allowed = {"envs/rollout.py", "benchmarks/throughput.py", "trainers/rl/envs.py"}
    callers = {
        path.relative_to(root).as_posix()
        for package in ("envs", "agents", "trainers", "benchmarks")
        for path in (root / package).rglob("*.py")
        if re.search(r"\benv\.step\(", path.read_text())
    }
    assert callers <= allowed and "envs/rollout.py" in callers
