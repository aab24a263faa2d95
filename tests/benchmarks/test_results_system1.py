"""The System-1 results command: end to end on the tiny preset (a trained baseline on every evaluation set),
resumed after a lost evaluation, then all skipped; its plan for every method."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from envs.datasets.digest import dataset_digest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("results_system1", ROOT / "scripts" / "results_system1.py")
script = sys.modules[SPEC.name] = importlib.util.module_from_spec(SPEC)  # dataclasses look it up
SPEC.loader.exec_module(script)


def _run(out: Path, *extra: str) -> str:
    command = [sys.executable, "scripts/results_system1.py", "--preset", "tiny", "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _ran(log: str) -> list[str]:
    return re.findall(r"results: == (.+?) ->", log)


def test_system1_results_end_to_end_resume_and_skip(tmp_path):
    out = tmp_path / "s1"
    evals = [f"evaluate iplanner pointnav {s} sync" for s in script.SPLITS]
    assert _ran(_run(out, "--only", "iplanner")) == ["generate", "train iplanner", *evals, "tables"]
    digest = dataset_digest(out / "data")
    page = (out / "results" / "system1.md").read_text()
    assert f"digest `{digest}`" in page and "python scripts/results_system1.py --preset tiny" in page
    assert "## pointnav, sync planning" in page and "## imagenav" not in page  # iPlanner has point goals only
    row = next(line for line in page.splitlines() if line.startswith("| iPlanner |"))
    doc = json.loads((out / "results" / "system1.json").read_text())
    cells = [doc["cells"][f"iplanner-pointnav-{s}-sync"] for s in script.SPLITS]
    for cell, split in zip(cells, script.SPLITS, strict=True):
        assert cell["split"] == split and cell["dataset_digest"] == digest
        assert cell["checkpoint"] == str((out / "runs" / "iplanner" / "checkpoints" / "last").resolve())
        m = cell["metrics"]
        assert f"{m['success']:.2f} / {m['spl']:.2f}" in row
    latency = sum(c["metrics"]["plan_latency"] for c in cells) / 3
    assert f"| {1e3 * latency:.0f} | 1/1/1 |" in row

    (out / "eval" / "iplanner-pointnav-houses-sync" / "summary.json").unlink()  # as if killed evaluating
    assert _ran(_run(out, "--only", "iplanner")) == ["evaluate iplanner pointnav houses sync", "tables"]
    log = _run(out, "--only", "iplanner")
    assert _ran(log) == [] and "[todo]" not in _run(out, "--only", "iplanner", "--dry-run")


def test_the_plan_covers_every_method_task_and_split(tmp_path):
    results = script.System1Results(tmp_path, "cpu", list(script.METHODS), ["sync", "async"], "cmd")
    names = [s.name for s in results.stages()]
    assert names[0] == "generate" and names[-1] == "tables"
    for method in script.METHODS:
        assert (f"train {method.key}" in names) == bool(method.train) and not (method.train and method.run_of)
        for task in method.tasks:
            for split in script.SPLITS:
                assert f"evaluate {method.key} {task} {split} async" in names
    ablation = next(s for s in results.stages() if s.name == "evaluate navdp-no-critic pointnav houses sync")
    command = ablation.command()
    assert f"checkpoint={tmp_path}/runs/navdp/checkpoints/last" in command
    assert command.index("agent=navdp") < command.index("agent.selection=random")  # the group, then its field
    assert ablation.run == "navdp"  # with --jobs it follows NavDP's training
    bound = next(s for s in results.stages() if s.name == "evaluate random explore houses sync")
    command = bound.command()
    assert "agent=random" in command and command[-1] == "agent.stop_probability=0"  # until stuck or timeout
    folder = bound.output
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"agent_config": {"stop_probability": 0.25}}))
    assert not bound.is_done()  # made with the VLN random agent's STOP: redone
    (folder / "summary.json").write_text(json.dumps({"agent_config": {"stop_probability": 0.0}}))
    assert bound.is_done()
    navdp = results.train_overrides(next(m for m in script.METHODS if m.key == "navdp"))
    assert "experiment=navdp_s1" in navdp and "trainer=bc" in navdp and "eval.final=true" in navdp
    ppo = results.train_overrides(next(m for m in script.METHODS if m.key == "ddppo"))
    assert "trainer=ppo" in ppo
    assert not any(o.startswith(("trainer.n_episodes", "data.init_store")) for o in ppo)
    gnm = results.train_overrides(next(m for m in script.METHODS if m.key == "gnm"))
    assert "data.task=imagenav" in gnm and "eval.benchmark=system1_imagenav" in gnm


@pytest.mark.parametrize(
    "args, message",
    [(["--only", "navdp,nonesuch"], "unknown methods"), (["--planning", "later"], "--planning")],
)
def test_bad_arguments_are_refused(args, message, capsys):
    with pytest.raises(SystemExit):
        script.main([*args, "--dry-run"])
    assert message in capsys.readouterr().err
