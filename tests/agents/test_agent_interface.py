"""The Agent contract, parametrised over the registry: act, reset, loss, no mutation, save/load round trip."""

import copy

import numpy as np
import pytest
import torch

from agents import AGENTS, NUM_ACTIONS, load_agent, make_agent

#: The agents these VLN trajectory batches and observations fit: window agents (NavDP) and pixel-goal agents
#: (System 2) have their own tests; planner + follower agents also need the rollout's navigator.
VLN = [
    n for n in AGENTS.names()
    if "vln" in AGENTS.get(n).tasks and not AGENTS.get(n).requires_navigator
    and AGENTS.get(n).sample.kind != "pixel_goal"
]  # fmt: skip
LEARNED = [n for n in VLN if AGENTS.get(n).is_trainable and AGENTS.get(n).sample.kind == "trajectory"]
TEXTS = ["walk past the sofa and turn left", "go up the stairs, then stop at the door"]
B, T, SIZE = 2, 4, 32


def make_obs(rng, b=B):
    return {
        "rgb": rng.integers(0, 256, (b, SIZE, SIZE, 3), dtype=np.uint8),
        "depth": (rng.random((b, SIZE, SIZE, 1)) * 12).astype(np.float32),
        "instruction_text": TEXTS[:b],
        "instruction": rng.integers(0, 50, (b, 200)).astype(np.int64),
        "odometry": rng.normal(0, 2, (b, 3)).astype(np.float32),
        "expert_action": rng.integers(0, NUM_ACTIONS, b).astype(np.int64),
    }


def walk(actions):
    """(B, T, 3) positions and (B, T) yaws of an agent executing the discrete actions (0.25 m, 15°)."""
    positions, yaws = np.zeros((*actions.shape, 3), np.float32), np.zeros(actions.shape, np.float32)
    for t in range(1, actions.shape[1]):
        a, yaw = actions[:, t - 1], yaws[:, t - 1]
        yaws[:, t] = yaw + np.radians(15) * ((a == 2).astype(np.float32) - (a == 3))
        step = 0.25 * (a == 1)
        positions[:, t] = positions[:, t - 1] + np.stack(
            [-np.sin(yaw) * step, 0 * yaw, -np.cos(yaw) * step], 1
        )
    return positions, yaws


def make_batch(rng):
    actions = rng.integers(0, NUM_ACTIONS, (B, T)).astype(np.int64)
    mask = np.ones((B, T), dtype=bool)
    mask[1, 3:] = False
    positions, yaws = walk(actions)
    return {
        "rgb": rng.integers(0, 256, (B, T, SIZE, SIZE, 3), dtype=np.uint8),
        "depth": (rng.random((B, T, SIZE, SIZE, 1)) * 12).astype(np.float32),
        "instruction_text": list(TEXTS),
        "actions": actions,
        "prev_actions": np.concatenate([np.full((B, 1), -1), actions[:, :-1]], axis=1),
        "mask": mask,
        "progress": rng.random((B, T)).astype(np.float32),
        "positions": positions,
        "yaws": yaws,
        "goal_position": positions[:, -1],
    }


def build(name):
    torch.manual_seed(0)
    return make_agent(name, instructions=TEXTS)


@pytest.fixture(params=VLN)
def agent(request):
    return build(request.param)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key])
        else:
            assert a[key] == b[key]


def test_act_returns_valid_actions_and_resets_one_slot(agent):
    rng = np.random.default_rng(1)
    agent.eval()
    with torch.inference_mode():
        agent.reset(B)
        for step in range(5):
            if step == 3:
                agent.reset(B, env_ids=[1])
            actions = agent.act(make_obs(rng), deterministic=step % 2 == 0)
            assert isinstance(actions, np.ndarray) and actions.dtype == np.int64 and actions.shape == (B,)
            assert ((actions >= 0) & (actions < NUM_ACTIONS)).all()
    with pytest.raises(ValueError, match="env_ids"):
        agent.reset(B, env_ids=[B])
    with pytest.raises(ValueError, match="reset"):
        agent.act(make_obs(rng, b=1))


def test_act_does_not_mutate_observations(agent):
    rng = np.random.default_rng(2)
    obs = make_obs(rng)
    obs_t = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in obs.items()}
    before, before_t = copy.deepcopy(obs), copy.deepcopy(obs_t)
    agent.reset(B)
    with torch.inference_mode():
        agent.act(obs)
        agent.act(obs_t)
    assert_same(obs, before)
    assert_same(obs_t, before_t)


def test_save_load_round_trip_is_exact(agent, tmp_path):
    agent.save(tmp_path / "agent")
    loaded = load_agent(tmp_path / "agent")
    assert type(loaded) is type(agent) and loaded.config == agent.config
    assert_same(dict(agent.state_dict()), dict(loaded.state_dict()))
    rng = np.random.default_rng(3)
    episode = [make_obs(rng) for _ in range(3)]
    for a in (agent, loaded):
        a.eval()
        a.reset(B)
    with torch.inference_mode():
        for obs in episode:
            if hasattr(agent, "action_logits"):
                assert torch.equal(agent.action_logits(obs), loaded.action_logits(obs))
            np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))


def test_baselines_cannot_be_trained():
    rng = np.random.default_rng(4)
    for name in sorted(set(VLN) - set(LEARNED)):
        with pytest.raises(RuntimeError, match="not trainable"):
            build(name).loss(make_batch(rng))


@pytest.mark.parametrize("name", LEARNED)
def test_loss_is_finite_with_gradients_and_no_mutation(name):
    agent = build(name)
    agent.train()
    rng = np.random.default_rng(5)
    batch = make_batch(rng)
    batch_t = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}
    before, before_t = copy.deepcopy(batch), copy.deepcopy(batch_t)
    torch.manual_seed(0)  # a loss may draw noise (diffusion, dropout) from torch's global generator
    loss, info = agent.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(info) >= {"loss/action", "loss/progress", "accuracy"}
    assert info["loss/progress"] > 0 and 0.0 <= info["accuracy"] <= 1.0
    assert loss.item() == pytest.approx(info["loss/action"] + info["loss/progress"], rel=1e-5)
    loss.backward()
    trainable = [(n, p) for n, p in agent.named_parameters() if p.requires_grad]
    assert trainable
    for param_name, param in trainable:
        assert param.grad is not None, f"no gradient reaches {param_name}"
        assert torch.isfinite(param.grad).all()
    for module in ("instruction_encoder", "depth_encoder", "rgb_encoder"):
        grads = [p.grad.abs().sum() for n, p in trainable if n.startswith(f"net.{module}.")]
        assert sum(grads) > 0, module
    assert_same(batch, before)
    torch.manual_seed(0)
    loss_t, _ = agent.loss(batch_t)
    assert torch.allclose(loss_t, loss)
    assert_same(batch_t, before_t)


@pytest.mark.parametrize("name", LEARNED)
def test_loss_validates_batch(name):
    agent = build(name)
    batch = make_batch(np.random.default_rng(6))
    with pytest.raises(ValueError, match="actions"):
        agent.loss({**batch, "actions": batch["actions"] + 4})
    with pytest.raises(ValueError, match="mask"):
        agent.loss({**batch, "mask": np.zeros((B, T), dtype=bool)})
    with pytest.raises(KeyError, match="instruction_text"):
        agent.loss({k: v for k, v in batch.items() if k != "instruction_text"})


def test_reset_of_one_slot_restarts_only_that_episode():
    agent = build("cma").eval()
    fresh = build("cma").eval()
    rng = np.random.default_rng(7)
    episode = [make_obs(rng) for _ in range(3)]
    with torch.inference_mode():
        agent.reset(B)
        agent.act(episode[0])
        agent.act(episode[1])
        agent.reset(B, env_ids=[1])
        logits = agent.action_logits(episode[2])
        # slot 1 behaves as a new episode
        fresh.reset(1)
        single = {k: v[1:] for k, v in episode[2].items()}
        torch.testing.assert_close(logits[1:], fresh.action_logits(single), atol=1e-5, rtol=1e-5)
        # slot 0 continues its episode
        fresh.reset(B)
        fresh.act(episode[0])
        fresh.act(episode[1])
        torch.testing.assert_close(logits[:1], fresh.action_logits(episode[2])[:1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(logits[1:], fresh.action_logits(episode[2])[1:], atol=1e-5, rtol=1e-5)


def test_step_by_step_acting_matches_the_training_forward():
    agent = build("cma").eval()
    batch = make_batch(np.random.default_rng(8))
    with torch.no_grad():
        inputs = agent._trajectory_inputs(batch)
        features = agent._valid_frame_features(inputs)
        hidden = torch.zeros(B, 2, agent.config.hidden_size)
        x, _ = agent.net(
            agent.net.encode_instruction(inputs["instruction"]), features, inputs["prev_actions"], hidden
        )
        sequence_logits = agent.action_distribution(x)
    agent.reset(B)
    with torch.inference_mode():
        for t in range(T - 1):
            obs = {"rgb": batch["rgb"][:, t], "depth": batch["depth"][:, t], "instruction_text": TEXTS}
            torch.testing.assert_close(agent.action_logits(obs), sequence_logits[:, t], atol=1e-5, rtol=1e-4)
            agent.act(obs)
            agent.record_actions(batch["actions"][:, t])


@pytest.mark.parametrize("name", ["seq2seq", "cma"])
def test_progress_stop_stops_where_the_progress_head_reaches_the_threshold(name):
    agent = build(name).eval()
    rng = np.random.default_rng(9)
    episode = [make_obs(rng) for _ in range(3)]
    agent.reset(B)
    plain = [agent.act(obs) for obs in episode]
    progress = []
    agent.reset(B)
    for obs in episode:
        agent.act(obs)
        progress.append(agent._progress.clone())
    # A threshold between the two slots' predictions at the last step stops exactly the slot above it.
    last = progress[-1]
    threshold = float(last.mean())
    assert last.min() < threshold <= last.max()
    agent.config.progress_stop = threshold
    agent.reset(B)
    for obs in episode[:-1]:
        agent.act(obs)
    stopped = agent.act(episode[-1])
    above = (last >= threshold).numpy()
    assert np.all(stopped[above] == 0) and np.array_equal(stopped[~above], plain[-1][~above])
    with pytest.raises(ValueError, match="progress_stop"):
        type(agent.config)(**{**agent.config.__dict__, "progress_monitor": False, "progress_stop": 0.9})
