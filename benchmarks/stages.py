"""Resumable stages of a long command (``scripts/results.py``): run what is not complete, record what ran.

A :class:`Stage` is one step: a subprocess of an existing entry point (built when it runs), then optional
work in this process, skipped when its output is already complete. :func:`execute` runs a list of stages in
order, or, with ``jobs`` > 1, the stages that belong to a named run (a training and its evaluation) side by
side, up to ``jobs`` runs at a time, **longest first** (each stage carries an estimated ``cost``; running the
long runs first keeps one long run from being left alone at the end, which would idle the other workers).
:class:`StageRunner` records in ``OUT/stages.json`` when each stage finished, how long it took (over every
attempt: a stage killed and continued counts the time of each attempt) and the git commit it ran on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from envs.fileio import atomic_write

logger = logging.getLogger("results")

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stage:
    """One step: ``command`` (a subprocess, built when it runs) and then ``after`` (in this process); ``run``
    names the row member whose training and evaluation it is (stages of one run go in order); ``stale`` says
    why output already there was made by another configuration (None: it was not, or there is none);
    ``cost`` is its estimated duration relative to the others' (orders runs side by side, longest first)."""

    name: str
    output: Path
    is_done: Callable[[], bool]
    command: Callable[[], list[str]] | None = None
    after: Callable[[], None] | None = None
    run: str | None = None
    stale: Callable[[], str | None] | None = None
    cost: float = 1.0


def pick_keys(parser: argparse.ArgumentParser, only: str | None, keys: Sequence[str], what: str) -> list[str]:
    """The keys named by ``--only`` (comma-separated; all when None) in ``keys``' order; an unknown one ends
    the command naming it and the ``what`` there are."""
    if not only:
        return list(keys)
    wanted = [k.strip() for k in only.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in keys]
    if unknown:
        parser.error(f"--only: unknown {what} {unknown}; {what}: {','.join(keys)}")
    return [k for k in keys if k in wanted]


def claim_folder(parser: argparse.ArgumentParser, out: Path, preset: str, dry_run: bool) -> None:
    """Record in ``OUT/plan.json`` the preset a results folder is made with; a folder of another preset ends
    the command (a folder is not continued with other sizes)."""
    found = read_json(out / "plan.json")
    if found is not None and found.get("preset") != preset:
        parser.error(
            f"{out} holds a results run of preset {found.get('preset')!r}: use --preset "
            f"{found.get('preset')} to continue it, or another --out"
        )
    if not dry_run and found is None:
        atomic_write(out / "plan.json", (json.dumps({"preset": preset}) + "\n").encode())


def merge_overrides(*groups: tuple[str, ...]) -> list[str]:
    """Hydra overrides of several groups; a later group's value of a key replaces an earlier one's."""
    merged: dict[str, str] = {}
    for group in groups:
        for override in group:
            merged[override.split("=", 1)[0]] = override
    return list(merged.values())


def latest_run_checkpoint(run: Path) -> Path | None:
    """The newest intact checkpoint of a training run folder (None: it has none)."""
    from trainers.checkpoint import latest_checkpoint

    return latest_checkpoint(run)


def training_done(run: Path) -> bool:
    """A training run folder is complete: it has its final evaluation (``eval/final/summary.json``)."""
    return (run / "eval" / "final" / "summary.json").is_file()


def evaluated(folder: Path, run: Path | None, overrides: tuple[str, ...] = ()) -> bool:
    """An evaluation folder is complete: its ``summary.json`` exists, its agent acted with the
    ``agent.<field>=value`` of ``overrides`` and, for a trained agent (``run``), it is that of the run's
    latest checkpoint."""
    summary = read_json(folder / "summary.json")
    if summary is None:
        return False
    acted = summary.get("agent_config") or {}
    wanted = {
        key.split(".", 1)[1]: yaml.safe_load(value)
        for key, value in (o.split("=", 1) for o in overrides)
        if key.startswith("agent.")
    }
    same = all(k in acted and acted[k] == v for k, v in wanted.items())
    if run is None:
        return same
    latest = latest_run_checkpoint(run)
    return latest is not None and summary.get("checkpoint") == str(latest.resolve()) and same


def read_json(path: Path) -> dict | None:
    """The JSON object of ``path``, or None when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None


def git_version() -> str:
    """``<commit>`` of the checkout (``+uncommitted`` when files differ from it, ignored ones aside), or
    ``unknown``."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        status = subprocess.run([*git, "status", "--porcelain"], capture_output=True)
    except OSError:
        return "unknown"
    if commit.returncode:
        return "unknown"
    return commit.stdout.strip() + ("+uncommitted" if status.stdout.strip() else "")


def record_start(out: Path, stage: Stage, log: Path | None) -> float:
    """Mark ``stage`` as running in ``OUT/stages.json``; returns the seconds it already ran in earlier,
    interrupted attempts.

    An attempt that was killed left its ``running_since``; it is taken to have ended when its output last
    changed (the newest modification time of ``log`` and of the files directly in the stage's output
    folder), so that an interrupted and continued stage records its whole time, not its last attempt's.
    """
    records = read_json(out / "stages.json") or {}
    previous = records.get(stage.name) or {}
    before = float(previous.get("seconds_before", 0.0))
    if "running_since" in previous:
        before += max(_last_change([log, stage.output]) - previous["running_since"], 0.0)
    records[stage.name] = {
        "running_since": time.time(),
        "seconds_before": round(before, 1),
        "attempts": int(previous.get("attempts", 0)) + 1,
    }
    atomic_write(out / "stages.json", (json.dumps(records, indent=2) + "\n").encode())
    return before


def _last_change(paths: list[Path | None]) -> float:
    """The newest modification time of the files ``paths`` and the files directly in the folders ``paths``
    (0 when there is none)."""
    times = [0.0]
    for path in paths:
        if path is None or not path.exists():
            continue
        entries = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
        times += [p.stat().st_mtime for p in entries]
    return max(times)


def record_stage(out: Path, stage: Stage, seconds: float, version: str) -> None:
    """Add ``stage`` to ``OUT/stages.json``: the commit it ran on, when it finished, how long it took over
    all its attempts (``seconds``) and how many attempts that was."""
    records = read_json(out / "stages.json") or {}
    attempts = int((records.get(stage.name) or {}).get("attempts", 1))
    records[stage.name] = {
        "code": version,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": seconds,
        "attempts": attempts,
    }
    atomic_write(out / "stages.json", (json.dumps(records, indent=2) + "\n").encode())


def code_versions(out: Path) -> dict[str, str]:
    """``{code version: the stages that ran on it}`` from ``OUT/stages.json``."""
    groups: dict[str, list[str]] = {}
    records = read_json(out / "stages.json") or {}
    for name, record in records.items():
        if "finished" in record:  # not a stage still running or stopped midway
            groups.setdefault(record.get("code", "unknown"), []).append(name)
    if len(groups) == 1:
        return {code: "every stage" for code in groups}
    return {code: ", ".join(names) for code, names in groups.items()}


def run_order(stages: list[Stage]) -> list[list[Stage]]:
    """The runs' stage chains (stages sharing ``run``, in order), longest total ``cost`` first; runs of equal
    cost keep their order."""
    chains: dict[str, list[Stage]] = {}
    for stage in stages:
        chains.setdefault(stage.run or stage.name, []).append(stage)
    return sorted(chains.values(), key=lambda chain: -sum(s.cost for s in chain))


def plan_lines(stages: list[Stage]) -> list[str]:
    """Every stage as ``[done]``, ``[todo]`` (with its command on the next line) or ``[stale]`` (and why)."""
    lines = []
    for stage in stages:
        if stage.stale and (why := stage.stale()):
            lines.append(f"[stale] {stage.name}: {why}")
            continue
        done = stage.is_done()
        command = None if done or stage.command is None else stage.command()
        lines.append(f"[{'done' if done else 'todo'}] {stage.name}")
        if command:
            lines.append(f"    {shlex.join(command)}")
    return lines


def execute(stages: list[Stage], out: Path, jobs: int = 1) -> None:
    """Run every stage of ``stages`` that is not complete, recording them in ``OUT/stages.json``.

    With ``jobs`` > 1 the runs (the stages between the first and the last that name a ``run``) proceed side
    by side, up to ``jobs`` at a time, longest first (:func:`run_order`), each run's stages in order; their
    output goes to ``OUT/logs/<stage>.log`` instead of the terminal. A failed run stops only itself; the
    others finish and the command then exits with every failure.
    """
    runner = StageRunner(out)
    chained = [i for i, stage in enumerate(stages) if stage.run is not None]
    if jobs <= 1 or not chained:
        for stage in stages:
            runner.run(stage)
        return
    first, last = chained[0], chained[-1]
    for stage in stages[:first]:
        runner.run(stage)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    def run_chain(chain: list[Stage]) -> None:
        for stage in chain:
            try:
                runner.run(stage, logs / f"{stage.name.replace(' ', '-')}.log")
            except SystemExit as failure:
                failures.append(str(failure))
                return

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run_chain, run_order(stages[first : last + 1])))
    if failures:
        raise SystemExit("\n".join(failures))
    for stage in stages[last + 1 :]:
        runner.run(stage)


class StageRunner:
    """Runs one stage when it is not complete and records it in ``OUT/stages.json`` (thread-safe)."""

    def __init__(self, out: Path) -> None:
        self.out, self.version, self.lock = out, git_version(), threading.Lock()
        self.env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    def run(self, stage: Stage, log: Path | None = None) -> None:
        """Run ``stage`` (its output to ``log`` when given, else the terminal); SystemExit when it fails."""
        if stage.stale and (why := stage.stale()):
            raise SystemExit(f"error: stage {stage.name!r}: {why}")
        if stage.is_done():
            logger.info("skip %s: %s is complete", stage.name, stage.output)
            return
        command = stage.command() if stage.command else None
        logger.info("== %s -> %s%s", stage.name, stage.output, f" (log {log})" if log else "")
        with self.lock:
            before = record_start(self.out, stage, log)
        start = time.perf_counter()
        if command:
            with open(log, "ab") if log else contextlib.nullcontext() as sink:
                where = {"stdout": sink, "stderr": subprocess.STDOUT} if log else {}
                rc = subprocess.run(command, cwd=ROOT, env=self.env, **where).returncode
            if rc:
                where = f" (output: {log})" if log else ""
                raise SystemExit(
                    f"error: stage {stage.name!r} failed (exit {rc}){where}; rerun to continue: "
                    + shlex.join(command)
                )
        if stage.after:
            stage.after()
        if not stage.is_done():
            raise SystemExit(f"error: stage {stage.name!r} ended but {stage.output} is not complete")
        with self.lock:
            record_stage(self.out, stage, round(before + time.perf_counter() - start, 1), self.version)
        logger.info("done %s", stage.name)
