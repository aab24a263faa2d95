"""GNM, ViNT and NoMaD networks at their released sizes and key layouts, and their published behaviour."""

import pytest
import torch

from agents.baselines.gnm.network import GNMNet
from agents.baselines.nomad.network import NoMaDNet
from agents.baselines.vint.network import ViNTNet


@pytest.mark.parametrize(
    ("cls", "params", "keys", "sample_keys"),
    [
        (
            GNMNet,
            8_663_797,
            638,
            ["obs_mobilenet.0.0.weight", "goal_mobilenet.17.conv.2.weight", "compress_goal.2.bias"],
        ),
        (
            ViNTNet,
            29_662_397,
            799,
            [
                "obs_encoder._blocks.15._se_expand.weight",
                "goal_encoder._fc.bias",
                "decoder.sa_layer.linear1.weight",
                "decoder.sa_decoder.layers.3.self_attn.in_proj_weight",
                "decoder.positional_encoding.pos_enc",
            ],
        ),
        (
            NoMaDNet,
            19_049_675,
            645,
            [
                "vision_encoder.goal_encoder._conv_stem.weight",
                "vision_encoder.sa_encoder.layers.0.norm1.weight",
                "noise_pred_net.up_modules.1.2.weight",
                "noise_pred_net.final_conv.0.block.0.weight",
                "dist_pred_net.network.4.weight",
            ],
        ),
    ],
)
def test_released_sizes_and_key_layouts(cls, params, keys, sample_keys):
    """Counts from the published classes (checkpoints.md), exact; a few keys in the published names."""
    net = cls()
    assert sum(p.numel() for p in net.parameters()) == params
    state = net.state_dict()
    assert len(state) == keys
    assert set(sample_keys) <= set(state)


def test_nomad_uses_groupnorm_and_its_goal_stem_takes_six_channels():
    net = NoMaDNet()
    norms = {type(m).__name__ for m in net.vision_encoder.modules() if "Norm" in type(m).__name__}
    assert "BatchNorm2d" not in norms and "GroupNorm" in norms
    assert net.vision_encoder.goal_encoder._conv_stem.weight.shape[1] == 6


def test_gnm_and_vint_outputs_are_waypoints_with_unit_headings():
    torch.manual_seed(0)
    obs, goal = torch.rand(2, 18, 64, 85), torch.rand(2, 3, 64, 85)
    for cls in (GNMNet, ViNTNet):
        with torch.no_grad():
            dist, actions = cls().eval()(obs, goal)
        assert dist.shape == (2, 1) and actions.shape == (2, 5, 4)
        torch.testing.assert_close(actions[..., 2:].norm(dim=-1), torch.ones(2, 5))


def test_nomad_goal_masking_ignores_the_goal_image():
    torch.manual_seed(0)
    enc = NoMaDNet().vision_encoder.eval()
    obs = torch.rand(2, 12, 96, 96)
    masked = torch.tensor([1, 1])
    with torch.no_grad():
        a = enc(obs, torch.rand(2, 3, 96, 96), masked)
        b = enc(obs, torch.rand(2, 3, 96, 96), masked)
        c = enc(obs, torch.rand(2, 3, 96, 96), torch.tensor([0, 0]))
        d = enc(obs, torch.rand(2, 3, 96, 96), torch.tensor([0, 0]))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(c, d)


def test_nomad_denoiser_shapes():
    net = NoMaDNet().eval()
    with torch.no_grad():
        eps = net.noise_pred_net(torch.randn(3, 8, 2), torch.tensor(4), torch.randn(3, 256))
        dist = net.dist_pred_net(torch.randn(3, 256))
    assert eps.shape == (3, 8, 2) and dist.shape == (3, 1)
