"""GNM, ViNT and NoMaD agents: declarations and sizes, conversions by hand, acting on the simulator's
observations (image goal and none), NoMaD's goal masking, the loss, and loading released layouts."""

import math
import sys
import types

import numpy as np
import pytest
import torch

from agents import AGENTS, make_agent
from agents.baselines import backbones
from agents.baselines.convert import convert
from agents.baselines.gnm.network import GNMNet
from agents.baselines.nomad.config import NoMaDConfig
from agents.baselines.vint import network as vint_network
from agents.baselines.visualnav import (
    cumulative_to_waypoints,
    gnm_labels,
    normalize_deltas,
    positions_to_waypoints,
    unnormalize_deltas,
)
from agents.contract import interface_of
from envs.datasets.system1 import generate_system1
from envs.datasets.system1_work import System1Spec
from envs.env import NavEnv

#: Tiny sizes per agent (fast on one core).
TINY = {
    "gnm": {"width": 0.125, "feature_dim": 32, "obs_encoding_size": 16, "goal_encoding_size": 16,
            "goal_hidden": 16},
    "vint": {"width": 0.125, "feature_dim": 32, "encoding_size": 16, "n_heads": 2, "n_layers": 1},
    "nomad": {"width": 0.125, "feature_dim": 32, "encoding_size": 16, "n_heads": 2, "n_layers": 1,
              "unet_width": 8, "step_embed_dim": 16},
}  # fmt: skip
NAMES = tuple(TINY)


def build(name, **overrides):
    torch.manual_seed(0)
    return make_agent(name, {**TINY[name], **overrides}).eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("s1")
    generate_system1(out, System1Spec(1, 0, 0, 1, n_eval_scenes=1, eval_episodes_per_scene=2), progress=False)
    return out


@pytest.mark.parametrize(
    ("name", "params"), [("gnm", 8_663_797), ("vint", 29_662_397), ("nomad", 19_049_675)]
)
def test_declarations_and_released_sizes(name, params):
    cls = AGENTS.get(name)
    interface = interface_of(cls)
    assert interface.action_mode == "waypoint" and interface.tasks == ("imagenav", "explore")
    assert [(c.uuid, c.mount) for c in interface.cameras] == [("camera", "agent"), ("goal", "goal")]
    agent = cls(cls.config_class.paper(), load_pretrained=False)
    assert sum(p.numel() for p in agent.net.parameters()) == params
    spec, c = agent.sample, agent.config
    assert (spec.kind, spec.history, spec.stride, spec.horizon, spec.future_stride) == (
        "window", c.context_size, 5, c.len_traj_pred, 5,
    )  # fmt: skip
    expected = {"gnm": (5, 5, 85, 64), "vint": (5, 5, 85, 64), "nomad": (3, 8, 96, 96)}[name]
    assert (c.context_size, c.len_traj_pred, c.image_width, c.image_height) == expected
    small = make_agent(name)
    assert sum(p.numel() for p in small.parameters()) < 1.2e6
    with pytest.raises(ValueError, match=f"{type(c).__name__}.n_waypoints"):
        type(c)(n_waypoints=c.len_traj_pred + 1)


def test_conversions_by_hand():
    pred = torch.tensor([[[3.0, 0.0, 1.0, 0.0], [3.0, 3.0, 0.0, 2.0]]])  # cumulative (x, y, cos, sin)
    out = cumulative_to_waypoints(pred, 0.8 / 3)
    torch.testing.assert_close(out, torch.tensor([[[0.8, 0.0, 0.0], [0.8, 0.8, math.pi / 2]]]))
    # NoMaD: -1 -> min, +1 -> max per delta; cumulated then scaled
    deltas = torch.tensor([[[1.0, 0.0], [-1.0, 1.0]]])
    positions = unnormalize_deltas(deltas, 0.5)
    torch.testing.assert_close(positions, torch.tensor([[[2.5, 0.0], [1.25, 2.0]]]))
    torch.testing.assert_close(normalize_deltas(positions, 0.5), deltas)
    waypoints = positions_to_waypoints(torch.tensor([[[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]]]))
    torch.testing.assert_close(waypoints[0, :, 2], torch.tensor([0.0, math.pi / 2, math.pi / 2]))
    labels = gnm_labels(torch.tensor([[[0.5, -0.25, math.pi / 2]]]), 0.25)
    torch.testing.assert_close(labels, torch.tensor([[[2.0, -1.0, 0.0, 1.0]]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_act_on_simulator_observations_with_and_without_a_goal(data, name):
    agent = build(name, n_waypoints=2, stop_distance=None)
    for task in ("imagenav", "explore"):
        env = NavEnv(
            task, data / "cluttered_easy", width=32, height=32, action_mode="waypoint", n_waypoints=2
        )
        obs, _ = env.reset(seed=0)
        assert ("imagegoal" in obs) == (task == "imagenav")
        agent.reset(1)
        for _ in range(3):
            batch = {k: v[None] for k, v in obs.items()}
            actions = agent.act(batch)
            assert actions.shape == (1, 2, 3) and actions.dtype == np.float32 and np.isfinite(actions).all()
            assert env.action_space.contains(actions[0])
            obs, _, done, truncated, _ = env.step(actions[0])
            if done or truncated:
                break
        assert len(agent._frames[0]) == agent.config.context_size + 1  # the context filled at the start
        env.close()


@pytest.mark.parametrize("name", ["vint", "nomad"])
def test_a_short_predicted_distance_stays_put(name):
    agent = build(name)
    rng = np.random.default_rng(0)
    obs = {
        "rgb": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
        "imagegoal": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
    }
    head = agent.net.dist_predictor[0] if name == "vint" else agent.net.dist_pred_net.network[4]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(3.0)  # distance 3 <= 7
    agent.reset(2)
    assert (agent.act(obs) == 0).all()
    with torch.no_grad():
        head.bias.fill_(20.0)
    agent.reset(2)
    assert np.abs(agent.act(obs)).sum() > 0


def test_nomad_with_a_masked_goal_ignores_the_goal_image():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    goals = [rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    runs = []
    for goal in [None, *goals]:
        agent = build("nomad", goal="none", n_waypoints=8)
        agent.reset(2)
        obs = {"rgb": rgb} if goal is None else {"rgb": rgb, "imagegoal": goal}
        runs.append(agent.act(obs))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[1], runs[2])
    seeing = build("nomad", n_waypoints=8, stop_distance=None)  # goal=auto: the image goal changes the plan
    outs = []
    for goal in goals:
        seeing.reset(2)
        outs.append(seeing.act({"rgb": rgb, "imagegoal": goal}))
    assert not np.allclose(outs[0], outs[1])
    with pytest.raises(ValueError, match="NoMaDConfig.goal"):
        NoMaDConfig(goal="point")


def window_batch(rng, agent, b=3):
    c = agent.config
    return {
        "rgb": rng.integers(0, 256, (b, c.context_size + 1, 32, 32, 3), dtype=np.uint8),
        "imagegoal": rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8),
        "future": np.cumsum(rng.normal(0, 0.2, (b, c.len_traj_pred, 3)), axis=1).astype(np.float32),
        "steps_left": np.array([4, 40, 100][:b]),
    }


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_finite_weighted_as_published_and_reaches_the_network(name):
    agent = build(name).train()
    batch = window_batch(np.random.default_rng(2), agent)
    torch.manual_seed(0)
    loss, info = agent.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    if name == "nomad":
        expected = 1e-4 * info["loss/distance"] + (1 - 1e-4) * info["loss/diffusion"]
    else:
        expected = 0.5 * 1e-2 * info["loss/distance"] + 0.5 * info["loss/action"]
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    loss.backward()
    grads = [p.grad for p in agent.net.parameters() if p.grad is not None]
    assert len(grads) > 0.9 * len(list(agent.net.parameters()))
    with pytest.raises(ValueError, match="SampleSpec history"):
        agent.loss({**batch, "rgb": batch["rgb"][:, :2]})
    with pytest.raises(KeyError, match="steps_left"):
        agent.loss({k: v for k, v in batch.items() if k != "steps_left"})


# ------------------------------------------------------------------------------------------ released layouts
PUBLISHED = {
    GNMNet: "vint_train.models.gnm.gnm.GNM",
    backbones.InvertedResidual: "vint_train.models.gnm.modified_mobilenetv2.InvertedResidual",
    vint_network.ViNTNet: "vint_train.models.vint.vint.ViNT",
    backbones.EfficientNetB0: "efficientnet_pytorch.model.EfficientNet",
    backbones.MBConvBlock: "efficientnet_pytorch.model.MBConvBlock",
    backbones.SameConv2d: "efficientnet_pytorch.utils.Conv2dDynamicSamePadding",
    vint_network.MultiLayerDecoder: "vint_train.models.vint.self_attention.MultiLayerDecoder",
    vint_network.PositionalEncoding: "vint_train.models.vint.self_attention.PositionalEncoding",
}


def save_published(net: torch.nn.Module, path) -> None:
    """``torch.save({"epoch", "model": net})`` with every class of ``net`` named as vint_train /
    efficientnet_pytorch name theirs (subclasses registered under those module paths for the save)."""
    created = set()
    try:
        for module in net.modules():
            for base, qualified in PUBLISHED.items():
                if type(module) is base:
                    mod_name, cls_name = qualified.rsplit(".", 1)
                    parts = mod_name.split(".")
                    for i in range(1, len(parts) + 1):
                        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
                    created.add(parts[0])
                    holder = sys.modules[mod_name]
                    if not hasattr(holder, cls_name):
                        setattr(holder, cls_name, type(cls_name, (base,), {"__module__": mod_name}))
                    module.__class__ = getattr(holder, cls_name)
        torch.save({"epoch": 3, "model": net, "avg_total_test_loss": 0.5}, path)
    finally:
        for key in [k for k in sys.modules if k.split(".")[0] in created]:
            del sys.modules[key]


@pytest.mark.parametrize("name", ["gnm", "vint"])
def test_released_training_checkpoints_convert_and_load(name, tmp_path):
    source = build(name)
    with torch.no_grad():
        for p in source.net.parameters():
            p.add_(torch.randn_like(p))
    expected = {k: v.clone() for k, v in source.net.state_dict().items()}
    save_published(source.net, tmp_path / f"{name}.pth")
    meta = convert(name, tmp_path / f"{name}.pth", tmp_path / "converted")
    assert meta["epoch"] == 3 and meta["method"] == name
    loaded = build(name, weights=str(tmp_path / "converted"))
    got = loaded.net.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    other = "vint" if name == "gnm" else "gnm"
    with pytest.raises(ValueError, match=f"converted from a {name!r} checkpoint, not {other!r}"):
        build(other, weights=str(tmp_path / "converted"))
    with pytest.raises(ValueError, match="must be converted once"):
        build(name, weights=str(tmp_path / f"{name}.pth"))


def test_nomad_plain_state_dict_loads_and_other_methods_are_refused(tmp_path):
    source = build("nomad")
    with torch.no_grad():
        for p in source.net.parameters():
            p.add_(torch.randn_like(p))
    torch.save(source.net.state_dict(), tmp_path / "nomad.pth")
    loaded = build("nomad", weights=str(tmp_path / "nomad.pth"))
    for key, value in source.net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    torch.save(build("gnm").net.state_dict(), tmp_path / "gnm_state.pth")
    with pytest.raises(ValueError, match="nomad checkpoint"):
        build("nomad", weights=str(tmp_path / "gnm_state.pth"))
