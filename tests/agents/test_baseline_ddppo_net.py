"""DD-PPO's point-goal policy in the released layout: keys, recurrence, resets, loading a converted file."""

import sys
import types

import torch

from agents.baselines.convert import convert
from agents.baselines.ddppo.network import PointNavResNetPolicy, action_trajectories
from agents.baselines.loading import load_into


def test_released_key_layout():
    keys = set(PointNavResNetPolicy().state_dict())
    for k in (
        "net.prev_action_embedding.weight",
        "net.tgt_embeding.weight",
        "net.visual_encoder.backbone.layer4.1.convs.3.weight",
        "net.visual_encoder.compression.0.weight",
        "net.visual_fc.1.weight",
        "net.state_encoder.rnn.weight_hh_l1",
        "action_distribution.linear.weight",
        "critic.fc.bias",
    ):
        assert k in keys, k
    policy = PointNavResNetPolicy()
    assert policy.net.visual_fc[1].in_features == 2048  # 128 x 4 x 4
    assert policy.net.state_encoder.rnn.input_size == 576
    assert policy.net.prev_action_embedding.num_embeddings == 5


def test_state_is_carried_and_reset_at_episode_starts():
    torch.manual_seed(0)
    policy = PointNavResNetPolicy().eval()
    depth, goal = torch.rand(2, 1, 224, 224), torch.tensor([[2.0, 0.3], [1.0, -1.0]])
    prev = torch.tensor([1, 2])
    with torch.no_grad():
        fresh, _, s1 = policy(depth, goal, prev, torch.tensor([False, False]), policy.initial_state(2))
        carried, _, _ = policy(depth, goal, prev, torch.tensor([True, True]), s1)
        reset, _, _ = policy(depth, goal, prev, torch.tensor([False, True]), s1)
    assert not torch.allclose(fresh, carried)
    torch.testing.assert_close(reset[0], fresh[0])  # episode start: zero state, previous action 0
    torch.testing.assert_close(reset[1], carried[1])


def test_discrete_actions_become_navdp_trajectories():
    traj = action_trajectories()
    assert traj.shape == (4, 20, 3)
    assert torch.equal(traj[0], torch.zeros(20, 3))
    torch.testing.assert_close(traj[1, -1], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(traj[2, -1], torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(traj[3, -1], torch.tensor([0.0, -1.0, -1.0]))


def test_released_file_with_a_pickled_config_converts_and_loads(tmp_path):
    class Config(dict):
        """Stands in for the configuration object pickled beside the weights."""

    for name in ("habitat", "habitat.config", "habitat.config.default"):
        sys.modules[name] = types.ModuleType(name)
    Config.__module__, Config.__qualname__ = "habitat.config.default", "Config"
    sys.modules["habitat.config.default"].Config = Config
    torch.manual_seed(2)
    src = PointNavResNetPolicy()
    try:
        torch.save({"state_dict": src.state_dict(), "config": Config(NUM_ENVIRONMENTS=4)}, tmp_path / "w.pth")
    finally:
        for name in ("habitat", "habitat.config", "habitat.config.default"):
            del sys.modules[name]
    convert("ddppo", tmp_path / "w.pth", tmp_path / "conv")
    dst = PointNavResNetPolicy()
    load_into(dst, tmp_path / "conv", "ddppo")
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
