"""The results command: end to end on the tiny preset (two seeds, mean ± std), resumed (also two runs side
by side), then all skipped."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.stages import Stage, StageRunner, code_versions, run_order
from benchmarks.tables import ResultRow, format_stat, results_table
from envs.datasets.digest import dataset_digest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("results_script", ROOT / "scripts" / "results.py")
results_script = sys.modules[SPEC.name] = importlib.util.module_from_spec(SPEC)  # dataclasses look it up
SPEC.loader.exec_module(results_script)


def _run(out: Path, *extra: str) -> str:
    """Run the tiny results command on ``out``; returns its log (stdout + stderr)."""
    command = [
        sys.executable,
        "scripts/results.py",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--only",
        "cma,random",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _ran(log: str) -> list[str]:
    return re.findall(r"results: == (.+?) ->", log)


def test_results_end_to_end_resumes_and_skips_finished_stages(tmp_path):
    out = tmp_path / "results"
    first = _ran(_run(out))
    runs = ["evaluate random", "train cma-s0", "evaluate cma-s0", "train cma-s1", "evaluate cma-s1"]
    assert first == ["generate", "collect", *runs, "tables"]
    digest = dataset_digest(out / "data" / "benchmark")
    page = (out / "results" / "results.md").read_text()
    assert f"digest `{digest}`" in page and "python scripts/results.py --preset tiny" in page
    assert re.search(r"code: `(\w{12}(\+uncommitted)?|unknown)` \(every stage\)", page)
    cma = next(line for line in page.splitlines() if line.startswith("| CMA + DAgger | 2 |"))
    assert cma.count(" ± ") == 6 and "±" not in next(
        ln for ln in page.splitlines() if ln.startswith("| random")
    )
    doc = json.loads((out / "results" / "results.json").read_text())
    summaries = [json.loads((out / "eval" / f"cma-s{s}" / "summary.json").read_text()) for s in (0, 1)]
    row = doc["rows"][0]
    assert row["key"] == "cma" and row["seeds"] == [0, 1]
    assert row["metrics"]["ndtw"]["values"] == [s["metrics"]["ndtw"] for s in summaries]
    for seed, summary in enumerate(summaries):
        assert summary["dataset_digest"] == digest and "dataset_mismatch" not in summary
        run = out / "runs" / f"cma-s{seed}"
        assert json.loads((run / "dataset.json").read_text())["digest"] == digest
        assert summary["checkpoint"] == str((run / "checkpoints" / "last").resolve())
        assert summary["agent_config"]["progress_stop"] == 0.8  # the row's acting setting
    assert (out / "results" / "report.md").is_file() and (out / "results" / "learning_curves.png").is_file()

    (out / "eval" / "cma-s1" / "summary.json").unlink()  # as if killed while evaluating
    assert _ran(_run(out)) == ["evaluate cma-s1", "tables"]
    path = out / "eval" / "cma-s0" / "summary.json"  # an evaluation with other acting settings is redone
    summary = json.loads(path.read_text())
    summary["agent_config"]["progress_stop"] = None
    path.write_text(json.dumps(summary))
    assert _ran(_run(out)) == ["evaluate cma-s0", "tables"]
    for seed in (0, 1):  # both runs' evaluations again, side by side, each into its own log
        (out / "eval" / f"cma-s{seed}" / "summary.json").unlink()
    ran = _ran(_run(out, "--jobs", "2"))
    assert sorted(ran[:2]) == ["evaluate cma-s0", "evaluate cma-s1"] and ran[2:] == ["tables"]
    for seed in (0, 1):
        assert "cma-s" in (out / "logs" / f"evaluate-cma-s{seed}.log").read_text()
        assert (out / "eval" / f"cma-s{seed}" / "summary.json").is_file()
    before = {p: p.stat().st_mtime_ns for p in [out / "stages.json", *out.glob("results/*")]}
    log = _run(out)
    assert _ran(log) == [] and len(re.findall(r"results: skip ", log)) == len(first)
    assert before == {p: p.stat().st_mtime_ns for p in [out / "stages.json", *out.glob("results/*")]}
    assert _run(out, "--dry-run").count("[done]") == len(first)

    # A run trained with another config than the command resolves to today is refused, naming the key.
    saved = out / "runs" / "cma-s1" / "config.yaml"
    text = saved.read_text()
    changed = yaml.safe_load(text)
    changed["optim"]["weight_decay"] = 0.5
    saved.write_text(yaml.safe_dump(changed))
    assert "[stale] train cma-s1" in _run(out, "--dry-run")
    command = [sys.executable, "scripts/results.py", "--preset", "tiny", "--out", str(out), "--only", "cma"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "optim.weight_decay: 0.5 -> 0.0" in done.stderr
    saved.write_text(text)


def test_rows_of_several_seeds_show_mean_and_sample_std():
    runs = [{"count": 3, "metrics": {"success": v, "steps": 10 * v}} for v in (0.4, 0.6)]
    row = ResultRow("agent", runs, [0, 1])
    mean, std, values = row.stats("success")
    assert (mean, values) == (pytest.approx(0.5), [0.4, 0.6]) and std == pytest.approx(0.1414, abs=1e-4)
    assert format_stat(mean, std, 3) == "0.500 ± 0.141" and format_stat(0.25, None, 2) == "0.25"
    table = results_table([row, ResultRow("one", runs[:1], [None])], [("SR", "success", 3), ("NE", "ne", 2)])
    assert "| agent | 2 | 3 | 0.500 ± 0.141 | – |" in table and "| one | 1 | 3 | 0.400 | – |" in table


def test_an_entry_replaces_the_presets_value_of_a_key():
    merged = results_script.merge_overrides(
        ("experiment=navgym_dagger", "trainer.rounds=3"), ("experiment=x",)
    )
    assert merged == ["experiment=x", "trainer.rounds=3"]
    keys = [e.key for e in results_script.ENTRIES]
    assert len(set(keys)) == len(keys) and all(bool(e.train) != bool(e.agent) for e in results_script.ENTRIES)
    with pytest.raises(SystemExit):
        results_script.main(["--only", "cma,nonesuch", "--dry-run"])


def test_an_entry_with_its_own_schedule_drops_the_presets_trainer_overrides(tmp_path):
    entries = [e for e in results_script.ENTRIES if e.key in ("system2", "rdp")]
    results = results_script.Results(tmp_path, "tiny", entries, 1, "python scripts/results.py")
    commands = {s.name: s.command() for s in results.stages() if s.name.startswith("train ")}
    system2, rdp = commands["train system2-s0"], commands["train rdp-s0"]
    assert "trainer=dagger" in rdp and "trainer.rounds=2" in rdp
    assert not [o for o in system2 if o.startswith("trainer=") or o.startswith("trainer.rounds")]
    assert "experiment=system2_vln" in system2 and "trainer.epochs=1" in system2
    assert f"agent.corpus_split={tmp_path / 'data' / 'benchmark'}/train" in system2


def test_a_dual_system_follows_the_system2_run_it_builds_on(tmp_path):
    def stages(keys: tuple[str, ...]) -> list:
        entries = [e for e in results_script.ENTRIES if e.key in keys]
        return results_script.Results(tmp_path, "default", entries, 1, "python scripts/results.py").stages()

    together = [s for s in stages(("system2", "dual-navdp", "dual-nextdit")) if s.run is not None]
    chains = run_order(together)
    assert [[s.name for s in chain] for chain in chains] == [
        ["train system2-s0", "evaluate system2-s0", "train dual-navdp-s0", "evaluate dual-navdp-s0"]
        + ["train dual-nextdit-s0", "evaluate dual-nextdit-s0"]
    ]
    dual = next(s for s in together if s.name == "train dual-navdp-s0")
    system2 = tmp_path / "runs" / "system2-s0"
    assert f"agent.system2={system2}/checkpoints/last/agent" in dual.command() and dual.stale() is None
    alone = next(s for s in stages(("dual-navdp",)) if s.name == "train dual-navdp-s0")
    assert "add system2 to --only" in alone.stale()
    (system2 / "eval" / "final").mkdir(parents=True)
    (system2 / "eval" / "final" / "summary.json").write_text("{}")
    assert alone.stale() is None
    # System 2 trained and not made here: the two dual systems train side by side
    duals = [s for s in stages(("dual-navdp", "dual-nextdit")) if s.run is not None]
    assert sorted([s.name for s in chain] for chain in run_order(duals)) == [
        ["train dual-navdp-s0", "evaluate dual-navdp-s0"],
        ["train dual-nextdit-s0", "evaluate dual-nextdit-s0"],
    ]


def test_side_by_side_runs_start_longest_first(tmp_path):
    stages = [
        Stage("a", tmp_path, lambda: False, run="a"),
        Stage("train b", tmp_path, lambda: False, run="b", cost=2.0),
        Stage("evaluate b", tmp_path, lambda: False, run="b"),
        Stage("c", tmp_path, lambda: False, run="c", cost=3.5),
        Stage("d", tmp_path, lambda: False, run="d"),
    ]
    assert [[s.name for s in chain] for chain in run_order(stages)] == [
        ["c"],
        ["train b", "evaluate b"],
        ["a"],
        ["d"],
    ]
    results = results_script.Results(
        tmp_path, "default", list(results_script.ENTRIES), 3, "python scripts/results.py"
    )
    chains = run_order([s for s in results.stages() if s.run is not None])
    names = [chain[0].name for chain in chains]
    assert names[:3] == ["train system2-s0", "train rdp-s0", "train cma-s0"] and names[-2:] == [
        "evaluate forward",
        "evaluate random",
    ]


def test_a_stage_continued_after_a_kill_records_the_time_of_every_attempt(tmp_path):
    out, folder = tmp_path / "out", tmp_path / "run"
    out.mkdir()
    folder.mkdir()
    since = time.time() - 1000.0
    # an earlier attempt started 1,000 s ago, had run 40 s before that, and last wrote its output 300 s in
    (out / "stages.json").write_text(
        json.dumps({"train x": {"running_since": since, "seconds_before": 40.0, "attempts": 2}})
    )
    (folder / "metrics.jsonl").write_text("{}\n")
    os.utime(folder / "metrics.jsonl", (since + 300.0, since + 300.0))
    done = []
    stage = Stage(
        "train x", folder, lambda: bool(done), command=lambda: [sys.executable, "-c", "pass"],
        after=lambda: done.append(True),
    )  # fmt: skip
    StageRunner(out).run(stage)
    record = json.loads((out / "stages.json").read_text())["train x"]
    assert record["attempts"] == 3 and "running_since" not in record
    assert 340.0 <= record["seconds"] < 340.0 + 60.0  # 40 + 300 + this attempt's
    assert code_versions(out) == {record["code"]: "every stage"}
