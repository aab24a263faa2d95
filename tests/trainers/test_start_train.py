"""InternNav's launcher ``scripts/train/base_train/start_train.sh`` over ``trainers/run.py``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train" / "base_train" / "start_train.sh"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "TORCHRUN": "torchrun"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("model", ["seq2seq", "cma", "rdp", "navdp"])
def test_every_model_composes_into_its_run_folder(model, tmp_path):
    done = _run(
        "--name", f"{model}_exp", "--model", model, "data.dir=/nonexistent", "--cfg", "job", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    config = yaml.safe_load(done.stdout)
    assert config["agent"]["name"] == model and config["run_dir"] == f"runs/{model}_exp"
    assert not (tmp_path / "runs").exists()  # --cfg job composes and prints, nothing runs


def test_dry_run_prints_the_command_with_overrides_and_torchrun_for_several_gpus(tmp_path):
    done = _run("--name", "a", "--model-name", "cma", "--dry-run", "trainer=bc", "data.dir=d", cwd=tmp_path)
    assert done.returncode == 0
    run_py = str(SCRIPT.parents[3] / "trainers" / "run.py")
    assert done.stdout.split()[1:] == [run_py, "agent=cma", "run_dir=runs/a", "trainer=bc", "data.dir=d"]
    done = _run(
        "--gpus", "4", "--dry-run", "data.dir=d", cwd=tmp_path
    )  # InternNav's defaults: rdp, rdp_train
    assert done.stdout.split()[:5] == ["torchrun", "--nnodes", "1", "--nproc_per_node", "4"]
    assert "agent=rdp" in done.stdout and "run_dir=runs/rdp_train" in done.stdout


def test_navdp_maps_to_behaviour_cloning_on_pointnav_unless_told_otherwise(tmp_path):
    done = _run("--name", "navdp_train", "--model-name", "navdp", "--dry-run", "data.dir=d", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[2:] == [
        "agent=navdp",
        "run_dir=runs/navdp_train",
        "trainer=bc",
        "data.task=pointnav",
        "data.dir=d",
    ]
    done = _run("--model", "navdp", "--dry-run", "data.task=imagenav", "trainer=dagger", cwd=tmp_path)
    assert done.stdout.split()[2:] == [
        "agent=navdp",
        "run_dir=runs/rdp_train",
        "data.task=imagenav",
        "trainer=dagger",
    ]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "cma_plus"], "unknown model 'cma_plus'; valid models: seq2seq cma rdp navdp"),
        (["--gpus", "0"], "--gpus must be a positive integer"),
        (["--name"], "--name needs a value"),
    ],
)
def test_bad_arguments_fail_saying_what_is_valid(args, message, tmp_path):
    done = _run("--dry-run", *args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr
