"""The entry point ``python trainers/run.py``: one run folder per run, a misspelt key fails naming it."""

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agents.cma.config import CMAConfig
from trainers.checkpoint import latest_checkpoint
from trainers.config import BCConfig, TrainConfig
from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
RUN = str(ROOT / "trainers" / "run.py")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RUN, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_run_trains_into_a_timestamped_run_folder(tiny_dataset, tmp_path):
    done = _run(
        "experiment=smoke", "agent=seq2seq", "trainer=dagger", "trainer.rounds=2",
        "trainer.episodes_per_round=2", "trainer.epochs=1", "eval.every_epochs=0",
        "eval.final_n_episodes=1", "data.max_episode_steps=20", f"data.dir={tiny_dataset}",
        "logger.sinks=[jsonl]", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("seq2seq-dagger-")
    run_dir = runs[0]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["run_dir"] == f"runs/{run_dir.name}" and config["trainer"]["rounds"] == 2
    assert config["agent"]["hidden_size"] == 32  # the smoke experiment's override
    rows = read_metrics(run_dir)
    assert any("train/loss" in r for r in rows) and any("final/success" in r for r in rows)
    assert [r["collect/beta"] for r in rows if "collect/beta" in r] == [1.0, 0.75]
    assert latest_checkpoint(run_dir) is not None
    assert not (tmp_path / "outputs").exists() and not (tmp_path / ".hydra").exists()  # Hydra wrote nothing


def test_misspelt_key_fails_before_anything_runs(tiny_dataset, tmp_path):
    done = _run("experiment=smoke", f"data.dir={tiny_dataset}", "trainer.epocs=2", cwd=tmp_path)
    assert done.returncode != 0 and "epocs" in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("added", [["+trainer.lr=abc"], ["+foo=1"]])
def test_an_unknown_plus_key_fails_naming_it(tiny_dataset, tmp_path, added):
    args = ["experiment=smoke", "agent=cma", "trainer=bc", f"data.dir={tiny_dataset}", "run_dir=r", *added]
    done = _run(*args, cwd=tmp_path)
    key = added[0][1:].split("=")[0]
    assert done.returncode != 0 and f"{key}: not a field of" in done.stderr
    assert not (tmp_path / "r").exists()


def test_resume_without_a_run_folder_says_so(tmp_path, monkeypatch):
    from trainers.run_folder import resolve_run_dir

    monkeypatch.chdir(tmp_path)
    config = TrainConfig(agent=CMAConfig(), trainer=BCConfig(), resume=True)
    with pytest.raises(FileNotFoundError, match=r"no run folder runs/cma-bc-\*"):
        resolve_run_dir(config)
    (tmp_path / "runs" / "cma-bc-20240101-000000").mkdir(parents=True)
    (tmp_path / "runs" / "cma-bc-20250101-000000").mkdir(parents=True)
    assert resolve_run_dir(config) == "runs/cma-bc-20250101-000000"
    config.resume = False
    assert resolve_run_dir(config).startswith("runs/cma-bc-2")


def test_a_used_run_folder_is_refused_without_resume_or_overwrite(tiny_dataset, tmp_path):
    from trainers.run_folder import claim_run_dir

    run_dir = tmp_path / "used"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 0}\n')
    config = TrainConfig(agent=CMAConfig(), trainer=BCConfig(), run_dir=str(run_dir))
    config.data.dir = str(tiny_dataset)
    with pytest.raises(FileExistsError) as err:
        claim_run_dir(config)
    assert str(run_dir) in str(err.value) and "resume=true" in str(err.value) and "run_dir=" in str(err.value)
    assert (run_dir / "metrics.jsonl").is_file()  # untouched
    config.resume = True
    assert claim_run_dir(config) == str(run_dir) and (run_dir / "metrics.jsonl").is_file()
    config.resume, config.overwrite = False, True
    assert claim_run_dir(config) == str(run_dir) and list(run_dir.iterdir()) == []  # emptied
    (tmp_path / "empty").mkdir()
    config.run_dir, config.overwrite = str(tmp_path / "empty"), False
    assert claim_run_dir(config) == str(tmp_path / "empty")  # an empty folder is free
    with pytest.raises(ValueError, match="overwrite"):
        TrainConfig(agent=CMAConfig(), trainer=BCConfig(), resume=True, overwrite=True)


def test_the_command_line_refuses_a_used_run_folder(tiny_dataset, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text('{"step": 0}\n')
    done = _run(
        "experiment=smoke", "agent=cma", "trainer=bc", f"data.dir={tiny_dataset}", "run_dir=r", cwd=tmp_path
    )
    assert done.returncode != 0 and "run_dir=r already holds a run" in done.stderr
    assert "resume=true" in done.stderr and [p.name for p in (tmp_path / "r").iterdir()] == ["metrics.jsonl"]


def test_a_run_folder_another_training_holds_is_refused(tiny_dataset, tmp_path):
    from trainers.run_folder import claim_run_dir, held_run_dir

    run_dir = tmp_path / "r"
    config = TrainConfig(agent=CMAConfig(), trainer=BCConfig(), run_dir=str(run_dir), resume=True)
    config.data.dir = str(tiny_dataset)
    with held_run_dir(str(run_dir)):  # another training (a lock on its own open file description)
        with contextlib.ExitStack() as held, pytest.raises(FileExistsError) as err:
            claim_run_dir(config, hold=held)
        assert f"run_dir={run_dir} is in use by another training" in str(err.value)
        done = _run(
            "experiment=smoke", "agent=cma", "trainer=bc", f"data.dir={tiny_dataset}", "run_dir=r",
            "resume=true", cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode != 0 and "run_dir=r is in use by another training" in done.stderr
        assert run_dir.is_dir() and list(run_dir.iterdir()) == []  # the holder's folder is left alone
    with contextlib.ExitStack() as held:
        assert claim_run_dir(config, hold=held) == str(run_dir)  # free once the holder lets go


def test_a_held_folder_made_for_a_block_that_fails_is_removed(tmp_path):
    from trainers.run_folder import held_run_dir

    with pytest.raises(RuntimeError), held_run_dir(str(tmp_path / "a" / "b")):
        assert (tmp_path / "a" / "b").is_dir()
        raise RuntimeError("the run failed before writing anything")
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), held_run_dir(str(tmp_path / "kept")):
        raise RuntimeError("an existing folder stays")
    assert (tmp_path / "kept").is_dir()


def test_a_missing_dataset_fails_before_the_run_folder_exists(tmp_path):
    done = _run(
        "experiment=smoke",
        "agent=cma",
        "trainer=bc",
        f"data.dir={tmp_path / 'nope'}",
        "run_dir=r",
        cwd=tmp_path,
    )
    assert done.returncode != 0 and f"data.dir={tmp_path / 'nope'}: no such folder" in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_that_fails_before_saving_anything_leaves_no_folder(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    (data / "train" / "train.json.gz").write_bytes(b"not gzip")  # found by the input check, unreadable
    done = _run(
        "experiment=smoke", "agent=cma", "trainer=bc", f"data.dir={data}", "run_dir=runs/r", cwd=tmp_path
    )
    assert done.returncode != 0 and "train.json.gz" in done.stderr
    assert not (tmp_path / "runs" / "r").exists() and not (tmp_path / "runs").exists()
