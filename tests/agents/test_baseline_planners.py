"""iPlanner and ViPlanner networks at their published sizes, TrajOpt paths, and their checkpoint loaders."""

import math
import sys
import types

import pytest
import torch

from agents.baselines.convert import convert
from agents.baselines.iplanner.network import BasicBlock, PerceptNet, PlannerDecoder, PlannerNet
from agents.baselines.loading import load_into
from agents.baselines.trajopt import hermite_path, path_to_waypoints
from agents.baselines.viplanner.network import ViPlannerNet


@pytest.mark.parametrize(
    ("cls", "params", "keys"), [(PlannerNet, 53_326_864, 51), (ViPlannerNet, 71_045_584, 56)]
)
def test_published_sizes_and_key_counts(cls, params, keys):
    """Counts from the published model classes (checkpoints.md): exact."""
    net = cls()
    assert sum(p.numel() for p in net.parameters()) == params
    assert len(net.state_dict()) == keys


def test_forward_shapes_and_fear_range():
    torch.manual_seed(0)
    net = PlannerNet().eval()
    with torch.no_grad():
        keypoints, fear = net(torch.rand(2, 3, 360, 640), torch.tensor([[3.0, 1.0, 0.0], [1.0, -1.0, 0.0]]))
    assert keypoints.shape == (2, 5, 3) and fear.shape == (2, 1)
    assert torch.all((fear > 0) & (fear < 1))
    with pytest.raises(ValueError, match=r"depth images of \(360, 640\)"):
        net(torch.rand(1, 3, 90, 160), torch.zeros(1, 3))


def test_hermite_path_passes_through_the_keypoints():
    keypoints = torch.tensor(
        [[[1.0, 0.5, 0.0], [2.0, 1.5, 0.0], [2.5, 3.0, 0.0], [3.0, 3.2, 0.0], [4.0, 3.0, 0.0]]]
    )
    path = hermite_path(keypoints)
    assert path.shape == (1, 51, 3)
    torch.testing.assert_close(path[0, ::10], torch.cat([torch.zeros(1, 3), keypoints[0]]))
    # One-sided tangent at the origin: the path leaves along the first keypoint's direction.
    fine = hermite_path(keypoints, step=0.001)
    d = fine[0, 1, :2] / fine[0, 1, :2].norm()
    torch.testing.assert_close(d, keypoints[0, 0, :2] / keypoints[0, 0, :2].norm(), atol=1e-3, rtol=0)


def test_waypoints_at_equal_arc_length_with_path_headings():
    # An L: 2 m forward then 2 m left.
    path = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [2.0, 2.0]]])
    wp = path_to_waypoints(path, 4)
    expected = torch.tensor(
        [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 1.0, math.pi / 2], [2.0, 2.0, math.pi / 2]]
    )
    torch.testing.assert_close(wp[0], expected)
    still = path_to_waypoints(torch.zeros(1, 5, 2), 3)
    assert torch.equal(still, torch.zeros(1, 3, 3))


PUBLISHED_NAMES = {
    PlannerNet: ("planner_net", "PlannerNet"),
    PlannerDecoder: ("planner_net", "Decoder"),
    PerceptNet: ("percept_net", "PerceptNet"),
    BasicBlock: ("percept_net", "BasicBlock"),
}


def save_as_released(net: PlannerNet, path) -> None:
    """``torch.save((net, val_loss))`` with the classes under iPlanner's own module and class names."""
    saved = {cls: (cls.__module__, cls.__qualname__) for cls in PUBLISHED_NAMES}
    try:
        for cls, (module, name) in PUBLISHED_NAMES.items():
            sys.modules.setdefault(module, types.ModuleType(module))
            setattr(sys.modules[module], name, cls)
            cls.__module__, cls.__qualname__ = module, name
        torch.save((net, 0.1), path)
    finally:
        for cls, (module, name) in saved.items():
            cls.__module__, cls.__qualname__ = module, name
        for module in ("planner_net", "percept_net"):
            sys.modules.pop(module, None)


def test_released_pickle_converts_and_loads_exactly(tmp_path):
    torch.manual_seed(1)
    src = PlannerNet()
    src.encoder.layer2[0].downsample[1].running_var.uniform_(0.5, 2.0)
    save_as_released(src, tmp_path / "plannernet.pt")
    meta = convert("iplanner", tmp_path / "plannernet.pt", tmp_path / "conv")
    assert meta["n_tensors"] == 51 and meta["val_loss"] == pytest.approx(0.1)
    for source in (tmp_path / "conv", tmp_path / "plain.pth"):
        if source.suffix == ".pth":  # NavDP's benchmark ships the converted state dict as a plain file
            torch.save(src.state_dict(), source)
        dst = PlannerNet()
        load_into(dst, source, "iplanner")
        for k, v in src.state_dict().items():
            assert torch.equal(dst.state_dict()[k], v), (source, k)


def test_a_pickle_naming_other_modules_is_refused(tmp_path):
    torch.save((PlannerNet(), 0.1), tmp_path / "own_names.pt")
    with pytest.raises(Exception, match="refuses to unpickle agents.baselines.iplanner.network.PlannerNet"):
        convert("iplanner", tmp_path / "own_names.pt", tmp_path / "conv")


def test_loader_errors_name_file_and_keys(tmp_path):
    net = PlannerNet()
    state = net.state_dict()
    state.pop("decoder.fc3.bias")
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(
        ValueError,
        match=r"missing\.pth \(iplanner checkpoint\): weights do not fit PlannerNet; "
        r"missing keys \(1\): decoder\.fc3\.bias",
    ):
        load_into(PlannerNet(), tmp_path / "missing.pth", "iplanner")
    vip = ViPlannerNet().state_dict()
    torch.save(vip, tmp_path / "vip.pth")
    with pytest.raises(ValueError, match="unexpected keys.*encoder_depth"):
        load_into(PlannerNet(), tmp_path / "vip.pth", "iplanner")
    torch.save((torch.nn.Linear(2, 2), 0.0), tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="must be converted once"):
        load_into(PlannerNet(), tmp_path / "pickled.pt", "iplanner")
    with pytest.raises(FileNotFoundError, match="no such iplanner checkpoint"):
        load_into(PlannerNet(), tmp_path / "nope.pth", "iplanner")
