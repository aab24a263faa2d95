"""The checkpoint layout reader shared by trainers and benchmarks: both find the same checkpoint."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents import make_agent
from agents.checkpoints import CheckpointError, find_agent_dir, list_checkpoints, verify_checkpoint
from benchmarks.config import find_agent_dir as benchmark_agent_dir
from trainers.checkpoint import latest_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path):
    agent = make_agent("forward", {"n_forward": 3})
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, agent, None)
    return tmp_path


def test_trainers_and_benchmarks_read_the_same_checkpoint(run):
    ckpts = run / "checkpoints"
    assert [p.name for p in list_checkpoints(run)] == ["000001", "000002", "000003"]
    for form in (run, ckpts, ckpts / "last"):
        assert (
            benchmark_agent_dir(form) == find_agent_dir(form) == (latest_checkpoint(run) / "agent").resolve()
        )
    os.unlink(ckpts / "last")
    (ckpts / "last.txt").write_text("000002\n")  # a filesystem without symlinks
    assert latest_checkpoint(run) == ckpts / "000002" and find_agent_dir(run) == ckpts / "000002" / "agent"


def test_a_damaged_latest_is_skipped_by_resume_and_refused_by_evaluation(run):
    ckpts = run / "checkpoints"
    weights = ckpts / "000003" / "agent" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="damaged") as err:
        verify_checkpoint(ckpts / "000003")
    assert err.value.path == weights
    assert latest_checkpoint(run) == ckpts / "000002"  # resume falls back and points `last` there ...
    assert find_agent_dir(run) == (ckpts / "000002" / "agent").resolve()  # ... where evaluation then looks
    with pytest.raises(CheckpointError, match=str(weights)):
        find_agent_dir(ckpts / "000003")  # asking for the damaged one by name fails with its path


def test_benchmarks_do_not_import_trainers():
    code = (
        "import sys, benchmarks.config, benchmarks.play; "
        "print([m for m in sys.modules if m == 'trainers' or m.startswith('trainers.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_evaluation_never_passes_over_a_damaged_latest_for_an_older_one(run):
    weights = run / "checkpoints" / "000003" / "agent" / "model.safetensors"
    weights.unlink()
    for form in (run, run / "checkpoints", run / "checkpoints" / "last"):
        with pytest.raises(CheckpointError, match=f"{weights}: missing"):
            find_agent_dir(form)
