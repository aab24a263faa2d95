"""Checkpoints: exact resume of optimiser, scheduler, RNG, step and extra state; atomicity under SIGKILL."""

import json
import logging
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from trainers.checkpoint import (
    CheckpointError,
    capture_rng_state,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)

HERE = Path(__file__).resolve().parent


class TinyAgent(nn.Module):
    """Stand-in with the Agent persistence contract: save(dir) -> config.json + model.safetensors."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps({"hidden": self.hidden}))
        save_file(self.state_dict(), str(directory / "model.safetensors"))

    @classmethod
    def load(cls, directory) -> "TinyAgent":
        agent = cls(**json.loads((Path(directory) / "config.json").read_text()))
        agent.load_state_dict(load_file(str(Path(directory) / "model.safetensors")))
        return agent


def make_training(seed: int = 0):
    torch.manual_seed(seed)
    agent = TinyAgent()
    opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return agent, opt, sched


def train_step(agent, opt, sched) -> float:
    """One update on a batch drawn from the global torch RNG (so RNG restore matters)."""
    x = torch.randn(16, 3)
    loss = ((agent.net(x) - x.sum(1, keepdim=True)) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def draws() -> tuple:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_save_load_resumes_exactly(tmp_path):
    agent, opt, sched = make_training()
    for _ in range(3):
        train_step(agent, opt, sched)
    extra = {"dagger_round": 2, "loader": {"epoch": 1, "position": 17}, "best_spl": 0.5}
    config = {"trainer": {"lr": 1e-2, "name": "bc"}, "seed": 0}
    path = save_checkpoint(tmp_path, 3, agent, opt, sched, extra_state=extra, config=config)
    assert path == tmp_path / "checkpoints" / "000003"
    opt_state = {k: {n: t.clone() for n, t in v.items()} for k, v in opt.state_dict()["state"].items()}
    expected_draws = draws()
    expected_losses = [train_step(agent, opt, sched) for _ in range(3)]
    expected_params = [p.detach().clone() for p in agent.parameters()]

    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # a fresh process would differ
    agent2 = TinyAgent.load(latest_checkpoint(tmp_path) / "agent")
    opt2 = torch.optim.Adam(agent2.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    state = load_checkpoint(tmp_path, optimizer=opt2, scheduler=sched2)
    assert (state.step, state.extra_state, state.config) == (3, extra, config)
    assert state.agent_dir == path / "agent"
    for k, v in opt2.state_dict()["state"].items():
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(v[name], opt_state[k][name]), name
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == [5e-3]
    assert draws() == expected_draws
    assert [train_step(agent2, opt2, sched2) for _ in range(3)] == expected_losses
    assert all(torch.equal(a, b) for a, b in zip(agent2.parameters(), expected_params, strict=True))
    assert "lr: 0.01" in (path / "training_state" / "config.yaml").read_text()


def test_each_rank_resumes_its_own_rng_stream(tmp_path, caplog):
    agent, opt, _ = make_training()
    states, expected = [], []
    for rank in range(2):  # what all_gather_objects(capture_rng_state()) returns under DDP
        torch.manual_seed(rank), np.random.seed(rank), random.seed(rank)
        states.append(json.loads(json.dumps(capture_rng_state())))
        expected.append(draws())
    save_checkpoint(tmp_path, 1, agent, opt, rng_states=states)
    for rank in (1, 0):
        load_checkpoint(tmp_path, rank=rank)
        assert draws() == expected[rank]
    load_checkpoint(tmp_path, rank=3)  # more ranks than saved: warned, rank 3 % 2
    assert draws() == expected[1]
    assert "RNG states of 2 ranks" in caplog.text


def test_last_pointer_pruning_and_stale_temp_folders(tmp_path):
    agent, opt, _ = make_training()
    ckpts = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, agent, opt, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["000002", "000003"]
    assert os.readlink(ckpts / "last") == "000003"
    # Left by interrupted saves: a temp folder with a newer step, a step folder without training state.
    (ckpts / ".tmp-000009-deadbeef" / "agent").mkdir(parents=True)
    (ckpts / "000010" / "agent").mkdir(parents=True)
    assert latest_checkpoint(tmp_path) == ckpts / "000003"
    assert load_checkpoint(tmp_path, restore_rng=False).step == 3
    save_checkpoint(tmp_path, 4, agent, opt)
    assert not list(ckpts.glob(".tmp-*"))
    assert latest_checkpoint(tmp_path) == ckpts / "000004" and os.readlink(ckpts / "last") == "000004"
    assert load_checkpoint(ckpts / "last", restore_rng=False).step == 4
    # Saving the same step again replaces it; `last` follows the most recent save, not the highest step.
    save_checkpoint(tmp_path, 2, agent, opt, extra_state={"again": True})
    assert latest_checkpoint(tmp_path) == ckpts / "000002"
    assert load_checkpoint(tmp_path, restore_rng=False).extra_state == {"again": True}


def test_clear_errors(tmp_path):
    agent, opt, sched = make_training()
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        (tmp_path / "run" / "checkpoints").mkdir(parents=True)
        load_checkpoint(tmp_path / "run")
    (tmp_path / "bad" / "training_state").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"bad/agent: missing; expected a checkpoint laid out as"):
        load_checkpoint(tmp_path / "bad")
    path = save_checkpoint(tmp_path / "r", 0, agent, opt)
    with pytest.raises(FileNotFoundError, match="saved without a scheduler"):
        load_checkpoint(path, scheduler=sched)
    with pytest.raises(TypeError, match="extra_state must be JSON-able"):
        save_checkpoint(tmp_path / "r", 1, agent, opt, extra_state={"x": object()})
    assert not list((tmp_path / "r" / "checkpoints").glob(".tmp-*"))
    with pytest.raises(TypeError, match="has no save"):
        save_checkpoint(tmp_path / "r", 1, nn.Linear(1, 1), opt)


KILLED_SAVE = """
import os, signal, sys
import torch
from test_checkpoint import TinyAgent, make_training
from trainers.checkpoint import save_checkpoint

class DiesWhileSaving(TinyAgent):
    def save(self, directory):
        super().save(directory)
        os.kill(os.getpid(), signal.SIGKILL)

agent, opt, _ = make_training()
save_checkpoint(sys.argv[1], 5, agent, opt)
dying = DiesWhileSaving()
dying.load_state_dict(agent.state_dict())
save_checkpoint(sys.argv[1], 6, dying, opt)
"""


def test_save_killed_midway_leaves_previous_checkpoint_usable(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path)], env=env, timeout=120)
    assert proc.returncode == -9
    ckpts = tmp_path / "checkpoints"
    assert len(list(ckpts.glob(".tmp-000006-*"))) == 1 and not (ckpts / "000006").exists()
    assert latest_checkpoint(tmp_path) == ckpts / "000005"
    assert load_checkpoint(tmp_path, restore_rng=False).step == 5
    agent, opt, _ = make_training()
    save_checkpoint(tmp_path, 7, agent, opt)
    assert not list(ckpts.glob(".tmp-*")) and latest_checkpoint(tmp_path) == ckpts / "000007"


# Every file of a checkpoint saved with a scheduler and a config.
FILES = (
    "agent/config.json",
    "agent/model.safetensors",
    "training_state/state.json",
    "training_state/optimizer.pt",
    "training_state/scheduler.pt",
    "training_state/rng.json",
    "training_state/config.json",
    "training_state/config.yaml",
    "checksums.json",
)


def damage(path: Path, how: str) -> None:
    """Truncate ``path`` to half its size, replace it with random bytes of the same size, or delete it."""
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(len(data)).bytes(len(data)))


def two_checkpoints(run_dir: Path) -> tuple[Path, Path]:
    agent, opt, sched = make_training()
    config = {"trainer": {"name": "bc"}, "seed": 0}
    train_step(agent, opt, sched)
    first = save_checkpoint(run_dir, 1, agent, opt, sched, extra_state={"at": 1}, config=config)
    train_step(agent, opt, sched)
    return first, save_checkpoint(run_dir, 2, agent, opt, sched, extra_state={"at": 2}, config=config)


def test_every_file_of_a_checkpoint_is_checksummed(tmp_path):
    _, latest = two_checkpoints(tmp_path)
    files = sorted(p.relative_to(latest).as_posix() for p in latest.rglob("*") if p.is_file())
    assert files == sorted(FILES)
    sums = json.loads((latest / "checksums.json").read_text())
    assert sums["format"] == "navgym-checksums" and sorted(sums["sha256"]) == sorted(
        set(FILES) - {"checksums.json"}
    )
    assert json.loads((latest / "training_state" / "state.json").read_text())["checksums"] == "checksums.json"


@pytest.mark.parametrize("how", ["truncated", "random", "missing"])
@pytest.mark.parametrize("name", FILES)
def test_resume_skips_a_damaged_latest_checkpoint_naming_the_file(tmp_path, caplog, name, how):
    first, latest = two_checkpoints(tmp_path)
    damage(latest / name, how)
    with caplog.at_level(logging.WARNING, logger="trainers.checkpoint"):
        assert latest_checkpoint(tmp_path) == first
    assert str(latest / name) in caplog.text  # the damaged file is named
    assert os.readlink(tmp_path / "checkpoints" / "last") == first.name  # `last` now points at the intact one
    agent = TinyAgent.load(first / "agent")
    opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    state = load_checkpoint(tmp_path, optimizer=opt, scheduler=sched, restore_rng=False)
    assert (state.path, state.extra_state) == (first, {"at": 1})
    if name.startswith("training_state/") or name == "checksums.json":
        with pytest.raises((ValueError, FileNotFoundError)) as err:  # reading the damaged one names the file
            load_checkpoint(latest, optimizer=opt, scheduler=sched)
        assert str(latest / name) in str(err.value)


def test_reads_of_an_unverifiable_checkpoint_name_the_file(tmp_path):
    _, latest = two_checkpoints(tmp_path)
    (latest / "checksums.json").unlink()  # as if saved before checksums existed: each read names its file
    state = json.loads((latest / "training_state" / "state.json").read_text())
    del state["checksums"]
    (latest / "training_state" / "state.json").write_text(json.dumps(state))
    _, opt, sched = make_training()
    assert load_checkpoint(latest, optimizer=opt, scheduler=sched).step == 2
    for name in ("optimizer.pt", "rng.json"):
        good = (latest / "training_state" / name).read_bytes()
        damage(latest / "training_state" / name, "truncated")
        with pytest.raises(ValueError, match=re.escape(str(latest / "training_state" / name))):
            load_checkpoint(latest, optimizer=opt, scheduler=sched)
        (latest / "training_state" / name).write_bytes(good)


def test_a_run_whose_checkpoints_are_all_damaged_fails_naming_them(tmp_path):
    first, latest = two_checkpoints(tmp_path)
    damage(first / "agent" / "model.safetensors", "random")
    damage(latest / "training_state" / "optimizer.pt", "truncated")
    with pytest.raises(CheckpointError, match="no intact checkpoint") as err:
        latest_checkpoint(tmp_path)
    assert str(first / "agent" / "model.safetensors") in str(err.value)
    assert str(latest / "training_state" / "optimizer.pt") in str(err.value)
