"""The DD-PPO agent in real rollouts: its memory follows act/reset/record_actions, a reset slot acts as a
fresh agent would, inputs are normalised and clipped as documented, and it saves and loads."""

import math

import numpy as np
import pytest
import torch

from agents import make_agent
from agents.base import Agent
from agents.baselines.ddppo.agent import depth_input, goal_input
from agents.baselines.ddppo.config import DDPPOConfig
from trainers.rl.envs import make_vector_env

SMALL = {"baseplanes": 4, "hidden_size": 16, "image_size": 64}


def test_depth_and_goal_inputs_are_clipped_and_normalised():
    cfg = DDPPOConfig(**SMALL)
    depth = np.array([0.1, 0.5, 2.75, 5.0, 9.0, np.nan], np.float32).reshape(1, 2, 3, 1)
    x = depth_input(depth, cfg)
    assert x.shape == (1, 1, 64, 64)
    small = depth_input(np.full((1, 64, 64, 1), 2.75, np.float32), cfg)
    assert torch.allclose(small, torch.full_like(small, 0.5))
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    goal = goal_input(np.array([[20.0, 0.0], [3.0, math.pi / 2], [8.0, -math.pi / 4]], np.float32), 5.0)
    assert torch.allclose(goal[0], torch.tensor([5.0, 0.0]), atol=1e-5)
    assert torch.allclose(goal[1], torch.tensor([3.0, math.pi / 2]), atol=1e-5)
    assert torch.allclose(goal[2], torch.tensor([5.0 * math.sqrt(2), -math.pi / 4]), atol=1e-4)


def test_act_and_reset_keep_and_clear_each_envs_memory(tiny_dataset, tmp_path):
    torch.manual_seed(0)
    agent = make_agent("ddppo", SMALL).eval()
    envs = make_vector_env(tiny_dataset, "train", 2, 32, max_episode_steps=30, vector="sync")
    try:
        obs, _ = envs.reset(seed=0)
        agent.reset(2)
        for _ in range(4):
            actions = agent.act(obs, deterministic=False)
            memory = agent.memory()
            assert actions.dtype == np.int64 and actions.shape == (2,)
            assert memory["prev_actions"].tolist() == actions.tolist()
            assert memory["not_done"].all()
            assert memory["state"].abs().sum() > 0
            obs, *_ = envs.step(np.ones(2, np.int64))  # FORWARD, whatever the agent chose
            agent.record_actions(np.ones(2, np.int64))
            assert agent.memory()["prev_actions"].tolist() == [1, 1]
        before = agent.memory()
        agent.reset(2, [1])
        after = agent.memory()
        assert torch.equal(after["state"][0], before["state"][0]) and after["not_done"][0]
        assert (
            after["state"][1].abs().sum() == 0 and not after["not_done"][1] and after["prev_actions"][1] == 0
        )
        # The reset slot acts exactly as a fresh agent with the same weights on that env alone.
        fresh = make_agent("ddppo", SMALL).eval()
        fresh.load_state_dict(agent.state_dict())
        single = {k: v[1:] for k, v in obs.items()}
        logits = agent.policy(**_args(agent, obs))[0][1]
        fresh.reset(1)
        fresh_logits = fresh.policy(**_args(fresh, single))[0][0]
        assert torch.allclose(logits, fresh_logits, atol=1e-6)
        assert agent.act(obs)[1] == fresh.act(single)[0]
    finally:
        envs.close()
    agent.save(tmp_path / "agent")
    loaded = Agent.load(tmp_path / "agent")
    assert all(
        torch.equal(a, b)
        for a, b in zip(agent.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def _args(agent, obs):
    x, m = agent.inputs(obs), agent.memory()
    return {
        "depth": x["depth"], "goal": x["pointgoal"], "prev_action": m["prev_actions"],
        "not_done": m["not_done"], "state": m["state"],
    }  # fmt: skip


def test_paper_preset_is_the_released_layout():
    cfg = DDPPOConfig.paper()
    assert (cfg.baseplanes, cfg.hidden_size, cfg.image_size, cfg.network_input_size) == (32, 512, 224, 256)
    agent = make_agent("ddppo", cfg)
    assert agent.policy.net.visual_encoder.output_shape == (128, 4, 4)
    assert agent.policy.net.state_encoder.rnn.hidden_size == 512
    logits, value, state = agent.policy(
        torch.rand(1, 1, 224, 224), torch.tensor([[2.0, 0.1]]), torch.zeros(1, dtype=torch.long),
        torch.zeros(1, dtype=torch.bool), agent.policy.initial_state(1),
    )  # fmt: skip
    assert logits.shape == (1, 4) and value.shape == (1,) and state.shape == (1, 4, 512)


def test_an_imitation_batch_is_refused_with_the_trainer_to_use():
    agent = make_agent("ddppo", SMALL)
    with pytest.raises(ValueError, match="trainer=ppo"):
        agent.loss({"depth": torch.zeros(1, 2, 32, 32, 1), "actions": torch.zeros(1, 2, dtype=torch.long)})
    with pytest.raises(ValueError, match="image_size"):
        DDPPOConfig(image_size=96)


def test_a_sequence_re_run_at_once_equals_the_steps_one_by_one():
    torch.manual_seed(0)
    agent = make_agent("ddppo", SMALL)
    steps, n = 5, 3
    batch = {
        "depth": torch.rand(steps, n, 1, 64, 64), "pointgoal": torch.rand(steps, n, 2) * 3,
        "prev_actions": torch.randint(0, 4, (steps, n)), "not_done": torch.rand(steps, n) > 0.3,
        "state": torch.randn(n, 4, 16),
    }  # fmt: skip
    logits, values = agent.evaluate_sequence(batch)
    state = batch["state"]
    for t in range(steps):
        step_logits, step_values, state = agent.policy(
            batch["depth"][t], batch["pointgoal"][t], batch["prev_actions"][t], batch["not_done"][t], state
        )
        assert torch.allclose(logits[t], step_logits, atol=1e-5)
        assert torch.allclose(values[t], step_values, atol=1e-5)
