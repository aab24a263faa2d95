"""NavDP: declarations, inputs by hand, the loss and its gradients, critic-ranked acting, save/load, the
DepthAnythingV2 loader."""

import copy
import math

import numpy as np
import pytest
import torch

from agents import AGENTS, load_agent, make_agent
from agents.contract import interface_of
from agents.navdp import NavDPAgent, NavDPConfig
from agents.navdp.agent import select_best
from agents.navdp.inputs import mixed_goal_kinds, path_to_steps, point_goal_xyt, steps_to_path
from agents.navdp.network import NavDPNet
from agents.navdp.vit import ViT, load_dav2_encoder
from envs.datasets.critic import HISTORY

B, SIZE = 3, 32
#: A small NavDP for fast tests (32 px, 8 px patches, width 32).
TINY = {
    "image_size": 32, "patch_size": 8, "vit_dim": 32, "vit_layers": 1, "vit_heads": 2, "compress_layers": 1,
    "compress_heads": 2, "queries_per_frame": 2, "token_dim": 32, "decoder_layers": 1, "decoder_heads": 2,
    "decoder_ffn": 64, "num_samples": 6, "dropout": 0.0,
}  # fmt: skip


def build(**overrides):
    torch.manual_seed(0)
    return make_agent("navdp", {**TINY, **overrides})


def make_batch(rng, labels=True, b=B):
    batch = {
        "rgb": rng.integers(0, 256, (b, 8, SIZE, SIZE, 3), dtype=np.uint8),
        "depth": rng.uniform(0.0, 7.0, (b, 8, SIZE, SIZE, 1)).astype(np.float32),
        "history_mask": np.ones((b, 8), bool),
        "future": np.cumsum(rng.normal(0, 0.2, (b, 24, 3)), axis=1).astype(np.float32),
        "future_mask": np.ones((b, 24), bool),
        "pointgoal": rng.uniform(0.5, 4.0, (b, 2)).astype(np.float32),
        "imagegoal": rng.integers(0, 256, (b, SIZE, SIZE, 3), dtype=np.uint8),
        "pixelgoal": (rng.random((b, SIZE, SIZE)) > 0.8).astype(np.uint8),
        "pixelgoal_visible": np.array([True, False, True][:b]),
    }
    if labels:
        batch["labels"] = rng.normal(0, 1, (b, 74)).astype(np.float32)
    return batch


def make_obs(rng, b=B):
    return {
        "rgb": rng.integers(0, 256, (b, SIZE, SIZE, 3), dtype=np.uint8),
        "depth": rng.uniform(0.0, 7.0, (b, SIZE, SIZE, 1)).astype(np.float32),
        "pointgoal": rng.uniform(0.5, 4.0, (b, 2)).astype(np.float32),
    }


def test_declarations_and_config_checks():
    assert "navdp" in AGENTS.names() and AGENTS.get("navdp") is NavDPAgent
    interface = interface_of(NavDPAgent)
    assert interface.action_mode == "waypoint" and interface.tasks == ("pointnav", "imagenav", "explore")
    assert [(c.uuid, c.mount) for c in interface.cameras] == [("camera", "agent"), ("goal", "goal")]
    spec = NavDPAgent.sample
    assert (spec.kind, spec.history, spec.stride, spec.horizon, spec.future_stride) == ("window", 7, 4, 24, 2)
    assert interface_of(build(n_waypoints=6)).n_waypoints == 6  # configurable per instance
    for bad, match in [
        ({"image_size": 30}, "image_size"),
        ({"goal": "text"}, "goal"),
        ({"n_waypoints": 25}, "n_waypoints"),
        ({"num_inference_steps": 11}, "num_inference_steps"),
        ({"prediction_type": "v_prediction"}, "prediction_type"),
    ]:
        with pytest.raises(ValueError, match=f"NavDPConfig.{match}"):
            NavDPConfig(**bad)


def test_inputs_by_hand():
    xyt = point_goal_xyt(np.array([[2.0, math.pi / 2], [20.0, 0.0], [1.0, math.pi]], np.float32), 10.0)
    torch.testing.assert_close(
        xyt, torch.tensor([[0.0, 2.0, math.pi / 2], [10.0, 0.0, 0.0], [0.0, 0.0, math.pi]]), atol=1e-6, rtol=0
    )  # x clipped to [0, 10]; a goal behind keeps its angle
    path = torch.tensor([[[0.5, 0.0, 0.0], [1.0, 0.25, 0.5], [1.0, 0.25, 0.5]]])
    steps = path_to_steps(path, 4.0)
    torch.testing.assert_close(steps, torch.tensor([[[2.0, 0.0, 0.0], [2.0, 1.0, 2.0], [0.0, 0.0, 0.0]]]))
    torch.testing.assert_close(steps_to_path(steps, 4.0), path)


def test_mixed_goal_pattern_by_hand():
    every = torch.ones(28, 3, dtype=torch.bool)
    kinds = mixed_goal_kinds(every)
    assert (
        kinds[5].tolist() == [2, 1, 0] and kinds[26].tolist() == [2, 2, 2] and kinds[27].tolist() == [0, 0, 0]
    )
    point_only = torch.tensor([[True, False, False]] * 6)
    assert (mixed_goal_kinds(point_only) == 0).all()
    no_image = torch.tensor([[True, False, True]] * 6)  # digit 1 (image) -> available kinds [0, 2][1 % 2]
    assert mixed_goal_kinds(no_image)[1].tolist() == [2, 0, 0] and mixed_goal_kinds(no_image)[4].tolist() == [
        2,
        2,
        0,
    ]
    assert (mixed_goal_kinds(torch.zeros(4, 3, dtype=torch.bool)) == -1).all()


def test_loss_is_finite_reaches_every_parameter_and_does_not_mutate_the_batch():
    agent = build().train()
    batch = make_batch(np.random.default_rng(0))
    before = copy.deepcopy(batch)
    torch.manual_seed(0)
    loss, info = agent.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    expected = 0.8 * info["loss/action"] + 0.2 * info["loss/critic"] + 0.5 * info["loss/aux"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert (
        info["critic_skipped"] == 0.0
        and info["loss/critic"] > 0
        and info["goals/pixel"] == pytest.approx(2 / 3)
    )
    loss.backward()
    for name, param in agent.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    for key, value in before.items():
        np.testing.assert_array_equal(batch[key], value)
    assert agent.goal_samples.tolist() == [B, B, 2]  # samples seen per goal kind


def test_a_denoiser_predicting_the_clean_path_is_trained_on_the_path():
    agent = build().train()
    assert agent.scheduler.config.prediction_type == "sample"  # the small default; paper() keeps ε
    batch = make_batch(np.random.default_rng(0))
    target = path_to_steps(torch.as_tensor(batch["future"], dtype=torch.float32), agent.config.action_scale)
    agent.net.noise = lambda noisy, timesteps, goals, tokens: torch.cat([target, target])
    _, info = agent.loss(batch)  # a denoiser that returns the clean path has no action loss
    assert info["loss/action"] == 0.0
    agent = build(prediction_type="epsilon").train()
    assert NavDPConfig.paper().prediction_type == "epsilon"
    agent.net.noise = lambda noisy, timesteps, goals, tokens: torch.cat([target, target])
    assert agent.loss(batch)[1]["loss/action"] > 0.1  # the ε head is asked for the noise instead


def test_without_labels_the_critic_is_skipped_and_said_so():
    agent = build().train()
    batch = make_batch(np.random.default_rng(1), labels=False)
    loss, info = agent.loss(batch)
    loss.backward()
    assert info["critic_skipped"] == 1.0 and info["loss/critic"] == 0.0
    assert agent.net.critic_head.weight.grad is None
    with pytest.raises(ValueError, match=r"batch\['labels'\] has shape \(3, 10\)"):
        agent.loss({**batch, "labels": np.zeros((B, 10), np.float32)})
    with pytest.raises(ValueError, match="SampleSpec history=7"):
        agent.loss({**batch, "rgb": batch["rgb"][:, :4]})


def test_act_returns_valid_waypoints_and_is_reproducible():
    agent = build(n_waypoints=5).eval()
    rng = np.random.default_rng(2)
    episode = [make_obs(rng) for _ in range(3)]
    runs = []
    for _ in range(2):
        agent.reset(B)
        with torch.inference_mode():
            runs.append([agent.act(obs) for obs in episode])
    for actions in runs[0]:
        assert actions.shape == (B, 5, 3) and actions.dtype == np.float32 and np.isfinite(actions).all()
        assert (np.abs(actions[..., :2]) <= 2.5).all() and (np.abs(actions[..., 2]) <= math.pi).all()
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    agent.reset(B)
    with torch.inference_mode():
        first, second = agent.plan(episode[0]), agent.plan(episode[1])
    assert not torch.equal(first["paths"], second["paths"])  # the frames differ, so do the plans
    assert first["paths"].abs().max() <= 24 * 3.0 / 4  # steps clipped to ±clip_sample_range, then / 4
    with pytest.raises(ValueError, match="reset"):
        agent.act(make_obs(rng, b=1))


def test_plans_of_an_episode_draw_fresh_noise_and_every_episode_replays():
    """An agent that cannot move sees one observation again and again: with deterministic acting its plans
    must still differ (the noise advances over the episode), and a new episode starts from the same noise."""
    agent = build().eval()
    obs = make_obs(np.random.default_rng(9))
    agent.reset(B)
    with torch.inference_mode():
        torch.manual_seed(0)
        first = agent.plan(obs)["paths"]
        torch.manual_seed(0)  # torch's global generator plays no part
        second = agent.plan(obs)["paths"]
        agent.reset(B, env_ids=[1])
        third = agent.plan(obs)["paths"]
    for i in range(B):
        assert not torch.equal(first[i], second[i])  # the same frames and history: only the noise moved on
    assert torch.equal(third[1], first[1])  # env 1's new episode replays its first plan
    assert not torch.equal(third[0], first[0]) and not torch.equal(third[0], second[0])  # env 0 goes on


def plan_then_act(agent, obs):
    """The agent's plan and its action for ``obs``, each from a fresh episode (the same noise and history)."""
    with torch.inference_mode():
        agent.reset(B)
        planned = agent.plan(obs)
        agent.reset(B)
        return planned, agent.act(obs)


def test_the_best_trajectory_by_the_critic_is_followed():
    paths = torch.arange(2 * 3 * 24 * 3, dtype=torch.float32).view(2, 3, 24, 3)
    best, index = select_best(paths, torch.tensor([[0.1, 0.7, -1.0], [2.0, 0.0, 1.9]]))
    assert (
        index.tolist() == [1, 0] and torch.equal(best[0], paths[0, 1]) and torch.equal(best[1], paths[1, 0])
    )
    agent = build(stop_threshold=-math.inf).eval()
    planned, actions = plan_then_act(agent, make_obs(np.random.default_rng(3)))
    assert planned["paths"].shape == (B, 6, 24, 3) and planned["goal"] == "point"
    assert len(set(planned["values"].flatten().tolist())) > 1  # the critic tells the samples apart
    rows = planned["paths"][torch.arange(B), planned["values"].argmax(dim=1), :4].numpy()
    reach = np.array([2.0, 2.0, math.pi], np.float32)
    np.testing.assert_array_equal(actions, np.clip(rows, -reach, reach))


def test_a_low_critic_value_rotates_in_place():
    agent = build(rotate_angle=40.0).eval()
    obs = make_obs(np.random.default_rng(4))
    with torch.no_grad():
        agent.net.critic_head.bias.fill_(-100.0)  # every trajectory now scores below stop_threshold (-3)
    agent.reset(B)
    with torch.inference_mode():
        actions = agent.act(obs)
    turn = np.radians(40.0) * np.arange(1, 5) / 4
    np.testing.assert_allclose(actions, np.broadcast_to(np.stack([0 * turn, 0 * turn, turn], 1), (B, 4, 3)))
    with torch.no_grad():
        agent.net.critic_head.bias.fill_(100.0)
    agent.reset(B)
    with torch.inference_mode():
        assert not np.allclose(agent.act(obs)[..., :2], 0.0)


def test_goal_kind_follows_the_observation_and_untrained_kinds_are_refused():
    agent = build().train()
    rng = np.random.default_rng(5)
    batch = make_batch(rng, labels=False)
    agent.loss({k: v for k, v in batch.items() if k not in ("imagegoal", "pixelgoal", "pixelgoal_visible")})
    agent.eval()
    obs = make_obs(rng)
    assert agent.goal_kind(obs) == "point" and agent.goal_kind({"rgb": obs["rgb"]}) == "none"
    # PointNav also observes the pixel goal: the task's point goal still comes first.
    assert agent.goal_kind({**obs, "pixelgoal": obs["rgb"][..., 0]}) == "point"
    agent.reset(B)
    with pytest.raises(ValueError, match="not trained with image goals"):
        agent.act({**{k: v for k, v in obs.items() if k != "pointgoal"}, "imagegoal": obs["rgb"]})
    with pytest.raises(KeyError, match="config.goal='pixel' needs obs\\['pixelgoal'\\]"):
        build(goal="pixel").goal_kind(obs)


def test_save_load_round_trip_is_exact(tmp_path):
    agent = build().train()
    agent.loss(make_batch(np.random.default_rng(6)))
    agent.save(tmp_path / "navdp")
    loaded = load_agent(tmp_path / "navdp")
    assert type(loaded) is NavDPAgent and loaded.config == agent.config
    for key, value in agent.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert loaded.goal_samples.tolist() == [B, B, 2]
    rng = np.random.default_rng(7)
    episode = [make_obs(rng) for _ in range(2)]
    for a in (agent, loaded):
        a.eval()
        a.reset(B)
    with torch.inference_mode():
        for obs in episode:
            np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))


def _dav2_file(path, vit, extra=None):
    state = {f"pretrained.{k}": torch.randn_like(v) for k, v in vit.state_dict().items()}
    state["depth_head.scratch.output_conv.weight"] = torch.randn(1, 8, 1, 1)
    state.update(extra or {})
    torch.save(state, path)
    return state


def test_depth_anything_weights_load_exactly_into_a_frozen_rgb_encoder(tmp_path):
    reference = ViT(3, 32, 1, 2, 8, 6)
    state = _dav2_file(tmp_path / "depth_anything_v2_vits.pth", reference)
    assert "pretrained.blocks.0.ls1.gamma" in state and state["pretrained.pos_embed"].shape == (1, 37, 32)
    agent = make_agent("navdp", {**TINY, "vit_pos_grid": 6, "rgb_trainable": False,
                                 "rgb_weights": str(tmp_path / "depth_anything_v2_vits.pth")})  # fmt: skip
    rgb = agent.net.rgbd_encoder.rgb_model
    for key, value in rgb.state_dict().items():
        assert torch.equal(value, state[f"pretrained.{key}"]), key
    assert not any(p.requires_grad for p in rgb.parameters())
    grouped = {id(p) for g in agent.param_groups() for p in g["params"]}
    assert not grouped & {id(p) for p in rgb.parameters()} and grouped
    agent.train()
    assert not rgb.training and agent.net.rgbd_encoder.depth_model.training
    out = rgb(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 16, 32)  # the 6×6 table interpolated to the 4×4 grid
    # Weights of a checkpoint do not need the .pth any more.
    agent.save(tmp_path / "agent")
    (tmp_path / "depth_anything_v2_vits.pth").unlink()
    assert torch.equal(load_agent(tmp_path / "agent").net.rgbd_encoder.rgb_model.pos_embed, rgb.pos_embed)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (
            {"pretrained.blocks.0.attn.qkv.weight": torch.zeros(5, 32)},
            r"shape mismatches.*blocks.0.attn.qkv.weight",
        ),
        ({"pretrained.blocks.9.norm1.weight": torch.zeros(32)}, r"unexpected keys.*blocks.9.norm1.weight"),
        ({"head.weight": torch.zeros(3)}, r"key 'head.weight' is not DepthAnythingV2's"),
    ],
)
def test_depth_anything_weights_that_do_not_fit_name_the_file_and_key(tmp_path, extra, match):
    path = tmp_path / "dav2.pth"
    _dav2_file(path, ViT(3, 32, 1, 2, 8, 4), extra)
    with pytest.raises(ValueError, match=match) as err:
        NavDPNet(NavDPConfig(**{**TINY, "rgb_weights": str(path)}))
    assert str(path) in str(err.value)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="dav2.pth"):
        load_dav2_encoder(ViT(3, 32, 1, 2, 8, 4), path)


def test_paper_parameter_counts_match_the_published_model():
    from agents.navdp.measure import parameter_counts

    counts = parameter_counts(NavDPAgent(NavDPConfig.paper()))
    # anchors Part B §3: RGB-D encoder 50.7 M, image goal 22.4 M, pixel goal 22.3 M, denoiser 37.9 M,
    # ≈133.4 M used (135.7 M registered, with parts the forward never uses).
    assert round(counts["rgbd_encoder"], 1) == 50.7 and round(counts["image_goal"], 1) == 22.4
    assert round(counts["pixel_goal"], 1) == 22.3 and round(counts["denoiser"], 1) == 37.9
    assert (
        round(counts["total"], 1) == 133.4 and counts["trainable"] < counts["total"] - 22
    )  # frozen RGB ViT-S


def test_the_critic_ablation_follows_a_random_sample_without_rotating():
    critic, ablation = build().eval(), build(selection="random", stop_threshold=1e9).eval()
    ablation.load_state_dict(critic.state_dict())
    planned, actions = plan_then_act(ablation, make_obs(np.random.default_rng(8)))
    reach = np.array([2.0, 2.0, math.pi], np.float32)
    rows = np.clip(planned["paths"][:, :, :4].numpy(), -reach, reach)  # (B, K, 4, 3)
    chosen = [[k for k in range(rows.shape[1]) if np.array_equal(actions[i], rows[i, k])] for i in range(B)]
    assert all(len(ks) == 1 for ks in chosen)  # one of the samples, not the rotation a 1e9 bar forces
    with pytest.raises(ValueError, match="selection"):
        build(selection="best")


def test_samples_sharing_a_scene_attend_its_memory_once_with_the_same_result():
    net, k, g = build(decoder_layers=2).eval().net, 4, 2
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(g * k, 24, 3, generator=gen)
    tokens = torch.randn(g, (HISTORY + 1) * TINY["queries_per_frame"], 32, generator=gen)
    goals = torch.randn(g, 3, 32, generator=gen)
    timestep = torch.full((g * k,), 7, dtype=torch.long)
    with torch.no_grad():
        shared = net.noise(x, timestep, goals, tokens)
        repeated = net.noise(x, timestep, goals.repeat_interleave(k, 0), tokens.repeat_interleave(k, 0))
        values_shared = net.critic(x, tokens)
        values_repeated = net.critic(x, tokens.repeat_interleave(k, 0))
    torch.testing.assert_close(shared, repeated, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(values_shared, values_repeated, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot share"):
        net.noise(x[:7], timestep[:7], goals, tokens)
