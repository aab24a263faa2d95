"""The dual systems' launcher: dry runs, bad arguments, and the composed config of agent=dual."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train" / "base_train" / "qwenvl_train" / "train_dual_system.sh"


def _launch(*args, cwd):
    env = {**os.environ, "PYTHON": sys.executable, "TORCHRUN": "torchrun", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_launcher_dry_runs_and_composes(tmp_path):
    done = _launch("--system2", "runs/s2/agent", "--dry-run", "data.dir=d", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == [
        str(ROOT / "trainers" / "run.py"), "agent=dual", "agent.system1=navdp_async",
        "agent.system2=runs/s2/agent", "trainer=bc", "data.action_mode=discrete", "optim.lr=1e-4",
        "run_dir=runs/dual_navdp_async", "data.dir=d",
    ]  # fmt: skip
    done = _launch("--system2", "s2", "--system1", "nextdit_async", "--gpus", "4", "--dry-run", cwd=tmp_path)
    words = done.stdout.split()
    assert words[:5] == ["torchrun", "--nnodes", "1", "--nproc_per_node", "4"]
    assert {"agent.system1=nextdit_async", "run_dir=runs/dual_nextdit_async"} <= set(words)
    done = _launch("--system2", "s2", "--system1", "nextdit", "--dry-run", cwd=tmp_path)
    assert done.returncode == 2 and "--system1 must be navdp_async or nextdit_async" in done.stderr
    done = _launch("--dry-run", cwd=tmp_path)
    assert done.returncode == 2 and "--system2 DIR is required" in done.stderr
    done = _launch("--system2", str(tmp_path / "none"), cwd=tmp_path)
    assert done.returncode == 2 and "is not an agent folder" in done.stderr
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "config.json").write_text("{}")
    done = _launch("--system2", str(tmp_path / "s2"), "data.dir=/nonexistent", "--cfg", "job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    config = yaml.safe_load(done.stdout)
    agent = config["agent"]
    assert agent["name"] == "dual" and agent["system1"] == "navdp_async" and agent["n_query"] == 4
    assert agent["system2"] == str(tmp_path / "s2") and agent["freeze_system2"] is True
    assert config["data"]["action_mode"] == "discrete"
    assert not (tmp_path / "runs").exists()
