"""Encoders, their pretrained-weight loaders and the agents' preprocessing."""

import gzip
import json

import numpy as np
import pytest
import torch

from agents import make_agent
from agents.cma import CMAConfig
from agents.encoders import (
    DepthEncoder,
    InstructionEncoder,
    ResNetEncoder,
    RGBEncoder,
    load_ddppo_weights,
    load_glove_embeddings,
    load_torchvision_weights,
    torchvision_resnet,
)
from agents.preprocess import preprocess_depth, preprocess_rgb
from envs.datasets.vocab import Vocabulary

VOCAB = Vocabulary(["<pad>", "<unk>", "go", "left", "stop"])


def write_gz_json(path, data):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f)
    return path


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------ GloVe
def test_glove_loader_reads_rows_aligned_with_vocab(tmp_path, caplog):
    rows = [[float(i + j) for j in range(4)] for i in range(len(VOCAB))]
    table = load_glove_embeddings(write_gz_json(tmp_path / "emb.json.gz", rows), VOCAB, embedding_size=4)
    assert table.shape == (5, 4) and table.dtype == torch.float32
    assert torch.equal(table[0], torch.zeros(4)), "PAD row must be the zero vector"
    assert "PAD row" in caplog.text
    torch.testing.assert_close(table[2:], torch.tensor(rows[2:]))


def test_glove_loader_remaps_from_another_word_list(tmp_path):
    file_words = ["<pad>", "<unk>", "stop", "go"]
    rows = [[0.0, 0.0], [9.0, 9.0], [1.0, 1.0], [2.0, 2.0]]
    table = load_glove_embeddings(write_gz_json(tmp_path / "e.json.gz", rows), VOCAB, file_words=file_words)
    # VOCAB order: pad, unk, go, left (missing -> UNK row), stop
    torch.testing.assert_close(
        table, torch.tensor([[0.0, 0.0], [9.0, 9.0], [2.0, 2.0], [9.0, 9.0], [1.0, 1.0]])
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0.0] * 4] * 3, "3 rows, expected 5"),
        ([[0.0] * 4] * 4 + [[0.0] * 3], "equal-length lists"),
        ([[0.0] * 3] * 5, "expected embedding_size=4"),
        ({"word": [0.0]}, "equal-length lists"),
    ],
)
def test_glove_loader_rejects_wrong_shapes(tmp_path, rows, message):
    path = write_gz_json(tmp_path / "bad.json.gz", rows)
    with pytest.raises(ValueError, match=message) as err:
        load_glove_embeddings(path, VOCAB, embedding_size=4)
    assert "bad.json.gz" in str(err.value)


def test_glove_loader_rejects_non_gzip(tmp_path):
    path = tmp_path / "plain.json.gz"
    path.write_text("[[0.0]]")
    with pytest.raises(ValueError, match="gzip"):
        load_glove_embeddings(path, VOCAB)


def test_agent_uses_frozen_glove_file(tmp_path):
    rows = np.random.default_rng(0).normal(size=(len(VOCAB), 8)).round(3)
    rows[0] = 0.0
    path = write_gz_json(tmp_path / "glove.json.gz", rows.tolist())
    config = CMAConfig(embedding_size=8, embedding_file=str(path), fine_tune_embeddings=False)
    agent = make_agent("cma", config, vocab=VOCAB)
    weight = agent.net.instruction_encoder.embedding_layer.weight
    torch.testing.assert_close(weight, torch.tensor(rows, dtype=torch.float32))
    assert not weight.requires_grad


def test_instruction_encoder_shapes_and_padding():
    torch.manual_seed(0)
    tokens = torch.tensor([[2, 3, 4, 0, 0, 0], [2, 0, 0, 0, 0, 0]])
    bi = InstructionEncoder(5, 8, 6, bidirectional=True, final_state_only=False)
    features = bi(tokens)
    assert features.shape == (2, 12, 3)  # padded to the longest instruction of the batch
    assert torch.equal(features[1, :, 1:], torch.zeros(12, 2))
    assert (features[0] != 0).any(dim=0).all()
    uni = InstructionEncoder(5, 8, 6, bidirectional=False, final_state_only=True)
    final = uni(tokens)
    assert final.shape == (2, 6)
    # the final state ignores padding: same as encoding the unpadded instruction alone
    torch.testing.assert_close(final[1:], uni(tokens[1:, :1]))


# ------------------------------------------------------------------------------------------------ DD-PPO
def test_ddppo_encoder_has_habitat_layout():
    depth = DepthEncoder(input_size=256, spatial_output=True)  # VLN-CE's depth encoder
    names = dict(depth.visual_encoder.state_dict())
    assert names["backbone.conv1.0.weight"].shape == (32, 1, 7, 7)
    assert names["backbone.layer1.0.convs.0.weight"].shape == (32, 32, 1, 1)
    assert names["backbone.layer1.0.downsample.0.weight"].shape == (128, 32, 1, 1)
    assert names["backbone.layer4.2.convs.7.weight"].shape == (1024,)
    assert names["compression.0.weight"].shape == (128, 1024, 3, 3)
    assert names["compression.1.weight"].shape == (128,)
    assert depth.output_shape == (192, 4, 4)
    assert round(n_params(depth.visual_encoder) / 1e6, 2) == 7.07
    out = depth(torch.rand(2, 1, 256, 256))
    assert out.shape == (2, 192, 4, 4)


def small_resnet_encoder():
    return ResNetEncoder(1, 64, "resnet18", baseplanes=8, flat_size=512, input_pool=1)


def test_ddppo_loader_round_trip(tmp_path):
    torch.manual_seed(0)
    source = small_resnet_encoder()
    state = {f"actor_critic.net.visual_encoder.{k}": v for k, v in source.state_dict().items()}
    state["actor_critic.net.state_encoder.rnn.weight_ih_l0"] = torch.zeros(3, 3)
    state["actor_critic.action_distribution.linear.weight"] = torch.zeros(4, 512)
    path = tmp_path / "ddppo.pth"
    torch.save({"state_dict": state, "extra_state": {"step": 10}, "config": "yaml text"}, path)
    target = DepthEncoder(input_size=64, backbone="resnet18", baseplanes=8, flat_size=512, input_pool=1)
    load_ddppo_weights(target, path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.visual_encoder.state_dict()[key], value)
    built = DepthEncoder(
        64, backbone="resnet18", baseplanes=8, flat_size=512, input_pool=1, weights_path=path
    )
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(built.visual_encoder(x), source(x))


def test_ddppo_loader_lists_mismatched_keys(tmp_path):
    state = {
        f"actor_critic.net.visual_encoder.{k}": v for k, v in small_resnet_encoder().state_dict().items()
    }
    del state["actor_critic.net.visual_encoder.compression.1.bias"]
    state["actor_critic.net.visual_encoder.running_mean_and_var._mean"] = torch.zeros(1, 1, 1, 1)
    state["actor_critic.net.visual_encoder.compression.0.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError) as err:
        load_ddppo_weights(small_resnet_encoder(), path)
    text = str(err.value)
    assert "bad.pth" in text and "compression.1.bias" in text and "running_mean_and_var._mean" in text
    assert "compression.0.weight (3, 3, 3, 3)" in text
    torch.save({"state_dict": {"actor_critic.net.other.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="no key starts with"):
        load_ddppo_weights(small_resnet_encoder(), path)
    torch.save({"weights": {}}, path)
    with pytest.raises(ValueError, match="state_dict"):
        load_ddppo_weights(small_resnet_encoder(), path)


class NotATensor:
    pass


def test_loaders_never_unpickle_objects(tmp_path):
    path = tmp_path / "object.pth"
    torch.save({"state_dict": {"x": NotATensor()}}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_ddppo_weights(small_resnet_encoder(), path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_ddppo_weights(small_resnet_encoder(), tmp_path / "missing.pth")


# ------------------------------------------------------------------------------------------- torchvision
def test_torchvision_layout_and_parameter_counts():
    assert n_params(torchvision_resnet("resnet50")) == 25_557_032
    assert n_params(torchvision_resnet("resnet18")) == 11_689_512
    names = torchvision_resnet("resnet18").state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.bn1.num_batches_tracked", "fc.bias"):
        assert key in names
    assert names["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)


def test_torchvision_loader_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    source = torchvision_resnet("resnet18")
    with torch.no_grad():
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(source.state_dict(), path)
    encoder = RGBEncoder(32, kind="torchvision", backbone="resnet18", weights_path=path, trainable=False)
    assert encoder.cnn.fc is None
    for key, value in encoder.cnn.state_dict().items():
        assert torch.equal(value, source.state_dict()[key])
    old_style = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old_style, tmp_path / "old.pth")
    load_torchvision_weights(torchvision_resnet("resnet18"), tmp_path / "old.pth")
    bad = tmp_path / "resnet50.pth"
    torch.save(torchvision_resnet("resnet50").state_dict(), bad)
    with pytest.raises(ValueError, match=r"resnet50.pth.*(unexpected keys|shape mismatches)"):
        load_torchvision_weights(torchvision_resnet("resnet18", num_classes=None), bad)


def test_frozen_encoder_stays_in_eval_mode_without_gradients():
    encoder = RGBEncoder(32, output_size=16, kind="torchvision", backbone="resnet18", trainable=False)
    encoder.train()
    assert encoder.training and not encoder.cnn.training
    x = torch.rand(3, 3, 32, 32)
    before = encoder.cnn.bn1.running_mean.clone()
    out = encoder(x)
    assert torch.equal(encoder.cnn.bn1.running_mean, before), "frozen BatchNorm statistics must not move"
    out.sum().backward()
    assert all(p.grad is None for p in encoder.cnn.parameters())
    assert encoder.fc.weight.grad is not None
    trainable = RGBEncoder(
        32, output_size=16, kind="torchvision", backbone="resnet18", trainable=True
    ).train()
    assert trainable.cnn.training


def test_rgb_encoder_output_shapes():
    spatial = RGBEncoder(
        64,
        kind="groupnorm",
        backbone="resnet18",
        baseplanes=8,
        flat_size=512,
        spatial_output=True,
        spatial_embedding_size=16,
        trainable=True,
    )
    assert spatial.output_shape == (128 + 16, 2, 2)
    assert spatial(torch.rand(2, 3, 64, 64)).shape == (2, 144, 2, 2)
    pooled = RGBEncoder(
        64,
        output_size=24,
        kind="torchvision",
        backbone="resnet18",
        spatial_output=True,
        spatial_size=4,
        spatial_embedding_size=8,
    )
    assert pooled(torch.rand(1, 3, 64, 64)).shape == (1, 512 + 8, 4, 4)


# ---------------------------------------------------------------------------------------------- preprocess
def test_preprocess_scales_resizes_and_normalises():
    rgb = np.full((2, 3, 10, 12, 3), 255, dtype=np.uint8)
    out = preprocess_rgb(rgb, 8)
    assert out.shape == (6, 3, 8, 8) and torch.allclose(out, torch.ones_like(out))
    normalised = preprocess_rgb(rgb[:1, 0], 8, normalize=True)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(normalised[0, :, 0, 0], expected)
    depth = np.array([[[[5.0], [20.0]], [[np.nan], [0.0]]]], dtype=np.float32)  # (1, 2, 2, 1)
    d = preprocess_depth(depth, 2, max_depth=10.0)
    torch.testing.assert_close(d[0, 0], torch.tensor([[0.5, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 1\)"):
        preprocess_depth(np.zeros((2, 4, 4, 3)), 4)
