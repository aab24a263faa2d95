"""The allow-list converter of pickled baseline checkpoints: exact state dicts, refusals, no code run."""

import json
import os
import pickle
import sys
import types

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from agents.baselines.convert import convert, main
from agents.baselines.safe_pickle import RefusedClass, load_archive

RAN = []


def fake_module(name: str, **classes) -> None:
    """Register ``classes`` under module ``name`` (and its parent packages) so that pickle stores them as
    ``name.<Class>``; :func:`forget` removes them again."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    for cls_name, cls in classes.items():
        cls.__module__, cls.__qualname__, cls.__name__ = name, cls_name, cls_name
        setattr(sys.modules[name], cls_name, cls)


def forget(*names: str) -> None:
    for name in names:
        for key in [
            k for k in sys.modules if k == name.split(".")[0] or k.startswith(name.split(".")[0] + ".")
        ]:
            del sys.modules[key]


@pytest.fixture
def pickled_planner(tmp_path):
    """A whole module saved as iPlanner saves its nets: ``torch.save((net, val_loss))``."""

    class BasicBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, bias=False)
            self.downsample = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4))

    class PerceptNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer1 = nn.Sequential(BasicBlock())

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fg = nn.Linear(3, 16)
            self.register_buffer("scratch", torch.zeros(2), persistent=False)

    class PlannerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = PerceptNet(), Decoder()

    fake_module("percept_net", PerceptNet=PerceptNet, BasicBlock=BasicBlock)
    fake_module("planner_net", PlannerNet=PlannerNet, Decoder=Decoder)
    torch.manual_seed(0)
    net = PlannerNet()
    net.encoder.layer1[0].downsample[1].running_mean.uniform_()
    path = tmp_path / "plannernet.pt"
    try:
        torch.save((net, torch.tensor(0.25)), path)
    finally:
        forget("percept_net", "planner_net")
    return path, net.state_dict()


def test_iplanner_file_converts_to_its_exact_state_dict(pickled_planner, tmp_path):
    path, expected = pickled_planner
    meta = convert("iplanner", path, tmp_path / "out")
    got = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert set(got) == set(expected) and "decoder.scratch" not in got
    for k, v in expected.items():
        assert torch.equal(got[k], v), k
    saved = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert saved == meta and saved["val_loss"] == 0.25 and saved["method"] == "iplanner"
    assert "planner_net.PlannerNet" in saved["classes"] and "torch.nn.modules.conv.Conv2d" in saved["classes"]


def test_gnm_dict_with_a_data_parallel_model(tmp_path):
    class GNM(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_layers = nn.Sequential(nn.Linear(4, 3), nn.ReLU())

    fake_module("vint_train.models.gnm.gnm", GNM=GNM)
    net = nn.DataParallel(GNM())
    path = tmp_path / "gnm.pth"
    try:
        torch.save({"epoch": 7, "model": net, "avg_total_test_loss": 1.5}, path)
    finally:
        forget("vint_train.models.gnm.gnm")
    assert main(["gnm", str(path), str(tmp_path / "w")]) == 0
    got = load_file(str(tmp_path / "w" / "model.safetensors"))
    assert set(got) == {"linear_layers.0.weight", "linear_layers.0.bias"}
    assert torch.equal(got["linear_layers.0.weight"], net.module.linear_layers[0].weight.detach())
    meta = json.loads((tmp_path / "w" / "meta.json").read_text())
    assert meta["epoch"] == 7 and meta["avg_total_test_loss"] == 1.5


class Payload:
    """Runs code when unpickled by a trusting loader."""

    def __reduce__(self):
        return (os.getcwd, ())


class Sneaky(nn.Module):
    def __setstate__(self, state):
        RAN.append("setstate")
        super().__setstate__(state)


def test_a_foreign_class_is_refused_by_name(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "config": Payload()}, path)
    with pytest.raises(RefusedClass, match=r"refuses to unpickle posix\.getcwd"):
        convert("ddppo", path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_allowed_classes_are_kept_as_data_and_never_run(tmp_path):
    fake_module("planner_net", PlannerNet=Sneaky)
    path = tmp_path / "p.pt"
    try:
        torch.save((Sneaky(), 0.5), path)
    finally:
        forget("planner_net")
    obj, seen = load_archive(path, ["planner_net.PlannerNet"])
    assert RAN == [] and seen == {"planner_net.PlannerNet"}
    assert type(obj[0]).__module__ == "agents.baselines.safe_pickle"


def test_ddppo_drops_its_config_and_keeps_tensors(tmp_path):
    class Config(dict):
        pass

    fake_module("yacs.config", CfgNode=Config)
    cfg = Config(NUM_UPDATES=5)
    path = tmp_path / "pointnav_weights.pth"
    state = {"net.tgt_embeding.weight": torch.randn(32, 3)}
    try:
        torch.save({"state_dict": state, "config": cfg}, path)
    finally:
        forget("yacs.config")
    meta = convert("ddppo", path, tmp_path / "out")
    got = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert torch.equal(got["net.tgt_embeding.weight"], state["net.tgt_embeding.weight"])
    assert meta["config"].startswith("dropped")


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint file"):
        convert("iplanner", tmp_path / "missing.pt", tmp_path / "o")
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a torch zip archive"):
        convert("iplanner", legacy, tmp_path / "o")
    with pytest.raises(ValueError, match="unknown method 'ppo'"):
        convert("ppo", legacy, tmp_path / "o")
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(1)}, plain)
    with pytest.raises(ValueError, match=r"expected iPlanner's \(PlannerNet, val_loss\) tuple"):
        convert("iplanner", plain, tmp_path / "o")
