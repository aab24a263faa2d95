"""The evaluation entry point: composition, strict keys, agents from names and checkpoints, a full run."""

import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from agents import make_agent
from agents.checkpoints import write_checksums
from agents.hydra_configs import check_known_keys
from benchmarks.base import BENCHMARKS
from benchmarks.config import (
    BenchmarkConfig,
    agent_entries,
    explicit_agent_fields,
    find_agent_dir,
    register_configs,
)
from envs.datasets.r2r import load_episodes
from trainers.metrics import MetricsLogger

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
register_configs()


def _compose(*overrides):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("eval", overrides=list(overrides))


@pytest.fixture(scope="module")
def run_dir(tiny_dataset, tmp_path_factory):
    """A training run folder: config.yaml, metrics.jsonl and checkpoints/000007/agent with ``last`` at it."""
    run = tmp_path_factory.mktemp("cma_run")
    (run / "config.yaml").write_text("data:\n  dir: x\n  width: 48\n  height: 40\n  hfov: 80.0\n")
    agent = make_agent("cma", vocab=load_episodes(tiny_dataset / "train").vocab)
    agent.save(run / "checkpoints" / "000007" / "agent")
    os.symlink("000007", run / "checkpoints" / "last")
    with MetricsLogger(run) as log:
        for step in range(8):
            log.log({"train/loss": 1.0 / (step + 1)}, step)
        log.log({"eval/success": 0.0, "eval/spl": 0.0}, 7)
    return run


@pytest.mark.parametrize("path", sorted((CONFIGS / "benchmark").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_benchmark_yaml_composes(path):
    cfg = _compose(f"benchmark={path.stem}")
    bench = OmegaConf.to_object(cfg.benchmark)
    assert isinstance(bench, BenchmarkConfig)
    assert bench.name == path.stem and path.stem in BENCHMARKS


@pytest.mark.parametrize(
    "override, key",
    [("chekpoint=x", "chekpoint"), ("benchmark.n_episode=3", "n_episode"), ("agent.sed=1", "sed")],
)
def test_a_misspelt_key_fails_naming_it(override, key):
    with pytest.raises(ConfigCompositionException) as err:
        _compose("agent=random", override)
    assert key in f"{err.value} {err.value.__cause__}"


def test_builtin_agent_with_overrides():
    cfg = _compose("agent=random", "agent.seed=3")
    (entry,) = agent_entries(cfg)
    assert (entry.label, entry.agent.name, entry.agent.config.seed, entry.checkpoint) == (
        "random",
        "random",
        3,
        None,
    )
    with pytest.raises(ValueError, match="trainable"):
        agent_entries(_compose("agent=cma"))
    with pytest.raises(ValueError, match="nothing to evaluate"):
        agent_entries(_compose())


def test_checkpoints_are_found_from_every_form(run_dir):
    agent_dir = (run_dir / "checkpoints" / "000007" / "agent").resolve()
    for form in (
        run_dir,
        run_dir / "checkpoints",
        run_dir / "checkpoints" / "last",
        agent_dir.parent,
        agent_dir,
    ):
        assert find_agent_dir(form) == agent_dir
    with pytest.raises(FileNotFoundError, match="not a registered agent"):
        find_agent_dir(run_dir / "nope")
    (entry,) = agent_entries(_compose("agent=cma", f"checkpoint={run_dir}/checkpoints/last"))
    assert entry.label == f"cma-{run_dir.name}-000007" and entry.run_dir == run_dir.resolve()
    assert entry.agent.name == "cma" and entry.camera == {"width": 48, "height": 40, "hfov": 80.0}
    with pytest.raises(ValueError, match="seq2seq"):
        agent_entries(_compose("agent=seq2seq", f"checkpoint={run_dir}"))


def test_command_line_agent_fields_replace_those_of_a_checkpoint(run_dir):
    saved = agent_entries(_compose("agent=cma", f"checkpoint={run_dir}"))[0].agent.config
    line = ["agent=cma", f"checkpoint={run_dir}", "agent.inflection_weight=1.5"]
    cfg = _compose(*line)
    fields = explicit_agent_fields(line, cfg)
    assert fields == {"inflection_weight": 1.5}  # only what the command line names, not the YAML's defaults
    (entry,) = agent_entries(cfg, fields)
    assert entry.agent.config.inflection_weight == 1.5 != saved.inflection_weight
    assert dataclasses.replace(entry.agent.config, inflection_weight=saved.inflection_weight) == saved
    line = ["agent=cma", f"checkpoint={run_dir}", "agent.hidden_size=8"]  # a new shape: the weights fail
    with pytest.raises(ValueError, match="hidden_size"):
        agent_entries(_compose(*line), explicit_agent_fields(line, _compose(*line)))


def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), *args], cwd=cwd, capture_output=True, text=True
    )


def test_command_line_compares_agents_in_one_call(tiny_dataset, run_dir, tmp_path):
    out = tmp_path / "cmp"
    proc = _run(
        f"agents=[expert,random,{run_dir}]", f"data.dir={tiny_dataset}", "benchmark.n_episodes=1",
        "benchmark.max_episode_steps=60", "benchmark.n_videos=0", f"out_dir={out}", "progress=false",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = ["expert", "random", f"cma-{run_dir.name}-000007"]
    summaries = {label: json.loads((out / label / "summary.json").read_text()) for label in labels}
    assert summaries["expert"]["metrics"]["success"] == 1.0
    assert {s["episode_ids"][0] for s in summaries.values()} == {summaries["expert"]["episode_ids"][0]}
    assert summaries[labels[2]]["checkpoint"].endswith("000007")
    # The checkpoint is evaluated with the camera of its training run; built-in agents with the default.
    assert summaries[labels[2]]["camera"] == {"width": 48, "height": 40, "hfov": 80.0}
    assert summaries["expert"]["camera"] == {"width": 64, "height": 64, "hfov": 90.0}
    report = (out / "report.md").read_text()
    assert all(f"| {label} |" in report for label in labels) and "learning_curves.png" in report
    assert (out / "config.yaml").is_file()


def test_command_line_agent_field_reaches_the_checkpoints_config_and_summary(tiny_dataset, run_dir, tmp_path):
    out = tmp_path / "override"
    proc = _run(
        f"checkpoint={run_dir}", "agent=cma", "agent.inflection_weight=1.5", f"data.dir={tiny_dataset}",
        "benchmark.n_episodes=1", "benchmark.max_episode_steps=10", "benchmark.n_videos=0", "report=false",
        f"out_dir={out}", "progress=false", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agent_config"]["inflection_weight"] == 1.5 and summary["agent_config"]["name"] == "cma"


def test_command_line_fails_on_an_unknown_key(tmp_path):
    proc = _run("agent=random", "benchmark.n_episode=3", cwd=tmp_path)
    assert proc.returncode != 0
    assert "n_episode" in proc.stderr + proc.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("added, key", [("+foo=1", "foo"), ("+benchmark.x=2", "benchmark.x")])
def test_command_line_refuses_a_key_added_with_plus(tiny_dataset, tmp_path, added, key):
    proc = _run(
        "agent=expert", f"data.dir={tiny_dataset}", "benchmark.n_episodes=1", "benchmark.n_videos=0",
        "report=false", "progress=false", f"out_dir={tmp_path / 'out'}", added, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0 and f"{key}: not a field of" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "override, key", [("+foo=1", "foo"), ("+benchmark.split_x=val", "benchmark.split_x")]
)
def test_a_key_added_with_plus_is_refused_naming_the_valid_fields(override, key):
    with pytest.raises(ValueError, match="unknown config key") as err:
        check_known_keys(_compose("agent=random", override))
    assert f"{key}: not a field of" in str(err.value) and "valid fields: " in str(err.value)
    check_known_keys(_compose("agent=random", "benchmark.n_episodes=2"))  # known keys pass


def _broken_split(tiny_dataset, root, field, value):
    """A copy of the dataset whose first val_unseen episode has ``field`` replaced by ``value``."""
    shutil.copytree(tiny_dataset, root)
    path = root / "val_unseen" / "val_unseen.json.gz"
    data = json.loads(gzip.decompress(path.read_bytes()))
    data["episodes"][0][field] = value
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    return root


@pytest.mark.parametrize(
    "field, value, words",
    [("scene_id", "no_such_house.glb", "no_such_house.glb"), ("start_position", [90.0, 0.0, 90.0], "start")],
)
def test_a_failed_evaluation_leaves_no_output_behind(tiny_dataset, tmp_path, field, value, words):
    data = _broken_split(tiny_dataset, tmp_path / "data", field, value)
    args = ["agent=expert", f"data.dir={data}", "benchmark.n_episodes=1", "progress=false"]
    proc = _run(*args, f"out_dir={tmp_path / 'new'}", cwd=tmp_path)
    assert proc.returncode != 0 and words in proc.stderr
    assert not (tmp_path / "new").exists()
    # An out_dir that existed keeps what it held and loses only what the failed run wrote.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("mine")
    proc = _run(*args, f"out_dir={tmp_path / 'old'}", cwd=tmp_path)
    assert proc.returncode != 0 and [p.name for p in (tmp_path / "old").iterdir()] == ["notes.txt"]


def _damage(path, how):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else os.urandom(len(data)))


@pytest.mark.parametrize("checksums", [True, False], ids=["checksummed", "unverified"])
@pytest.mark.parametrize(
    "name, how",
    [("model.safetensors", "truncated"), ("model.safetensors", "random"), ("config.json", "truncated")],
)
def test_evaluating_a_damaged_checkpoint_fails_naming_the_file(run_dir, tmp_path, checksums, name, how):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, symlinks=True)
    if checksums:
        write_checksums(run / "checkpoints" / "000007")
    damaged = run / "checkpoints" / "000007" / "agent" / name
    _damage(damaged, how)
    with pytest.raises(ValueError) as err:  # a CheckpointError with a manifest, else Agent.load's own
        agent_entries(_compose(f"checkpoint={run}"))
    assert str(damaged.resolve()) in str(err.value)
    assert ("damaged: sha256" if checksums else "expected") in str(err.value)


def test_the_command_line_refuses_a_damaged_checkpoint(tiny_dataset, run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, symlinks=True)
    damaged = run / "checkpoints" / "000007" / "agent" / "model.safetensors"
    _damage(damaged, "random")
    proc = _run(f"checkpoint={run}", f"data.dir={tiny_dataset}", f"out_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode != 0 and f"{damaged.resolve()}: not a readable safetensors file" in proc.stderr
    assert not (tmp_path / "out").exists()
