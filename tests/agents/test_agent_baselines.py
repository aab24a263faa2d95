"""The non-learning agents: expert, random and forward."""

import numpy as np
import pytest
import torch

from agents import load_agent, make_agent
from agents.expert import ForwardConfig, RandomConfig


def obs(n, expert=None):
    out = {"instruction_text": ["go"] * n, "rgb": np.zeros((n, 4, 4, 3), dtype=np.uint8)}
    if expert is not None:
        out["expert_action"] = np.asarray(expert, dtype=np.int64)
    return out


def test_expert_returns_the_expert_action():
    agent = make_agent("expert")
    agent.reset(3)
    np.testing.assert_array_equal(agent.act(obs(3, [0, 2, 3])), [0, 2, 3])
    actions = agent.act({**obs(3), "expert_action": torch.tensor([1, 1, 0])})
    assert actions.dtype == np.int64 and actions.tolist() == [1, 1, 0]
    with pytest.raises(KeyError, match="expert_action"):
        agent.act(obs(3))


def test_forward_moves_n_steps_then_stops_and_restarts_on_reset():
    agent = make_agent("forward", ForwardConfig(n_forward=3))
    agent.reset(2)
    seen = [agent.act(obs(2)).tolist() for _ in range(5)]
    assert seen == [[1, 1], [1, 1], [1, 1], [0, 0], [0, 0]]
    agent.reset(2, env_ids=[1])
    assert agent.act(obs(2)).tolist() == [0, 1]
    assert make_agent("forward").config.n_forward == 37


def test_random_is_seeded_and_respects_stop_probability(tmp_path):
    first, second = make_agent("random", RandomConfig(seed=3)), make_agent("random", RandomConfig(seed=3))
    first.reset(4)
    second.reset(4)
    a = np.stack([first.act(obs(4)) for _ in range(200)])
    b = np.stack([second.act(obs(4)) for _ in range(200)])
    np.testing.assert_array_equal(a, b)
    counts = np.bincount(a.ravel(), minlength=4) / a.size
    assert np.all(np.abs(counts - 0.25) < 0.05), counts
    never = make_agent("random", RandomConfig(stop_probability=0.0))
    assert (np.stack([never.act(obs(4)) for _ in range(50)]) != 0).all()
    always = make_agent("random", RandomConfig(stop_probability=1.0))
    assert (always.act(obs(4)) == 0).all()
    always.save(tmp_path / "random")
    loaded = load_agent(tmp_path / "random", device="cpu")
    assert loaded.config == always.config and loaded.device == torch.device("cpu")
