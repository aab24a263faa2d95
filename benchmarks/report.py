"""Evaluation reports: a Markdown table of the benchmark metrics, plots, and links to the episode videos.

Usage::

    python -m benchmarks.report EVAL_DIR [EVAL_DIR ...] [--runs RUN_DIR ...] --out DIR

An evaluation folder holds ``summary.json`` + ``episodes.jsonl`` (written by :mod:`benchmarks.vln`); a folder
of such folders (a multi-agent ``benchmarks/run.py`` output) counts as all of them. A training run folder
holds ``metrics.jsonl`` (one JSON object per line with ``step`` and keys such as ``train/loss``,
``eval/success``). ``DIR`` receives:

- ``report.md``: one table for VLN benchmarks (SR, SPL, OSR, NE, nDTW, SDTW, TL, steps) and one for System-1
  benchmarks (SR, SPL, NE, TL, steps, collisions, stuck and timeout rates, explored area), one row per agent
  and benchmark, the plots and links to the videos;
- ``learning_curves.png`` (with ``--runs``): loss, eval success and eval SPL against the training step;
- ``by_reference_length.png``: success and SPL per bin of reference path length (metres);
- ``actions.png``: the fraction of each discrete action per agent.

Rates in the tables are percentages of episodes; lengths are metres; all values are means over episodes.
The dataset digest of the evaluations is named under the title; a warning line stands there when a checkpoint
was evaluated on data other than its training data (``dataset_mismatch`` in its summary) or when the
evaluations ran on different datasets.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.provenance import dataset_lines
from envs.fileio import atomic_path, atomic_write

logger = logging.getLogger(__name__)

ACTION_NAMES = ("STOP", "FORWARD", "LEFT", "RIGHT", "LOOK_UP", "LOOK_DOWN")
#: (column, metric key, scale) of the tables; scale 100 turns a rate into a percentage.
VLN_COLUMNS = (
    *(("SR", "success", 100), ("SPL", "spl", 100), ("OSR", "oracle_success", 100)),
    *(("NE (m)", "navigation_error", 1), ("nDTW", "ndtw", 100), ("SDTW", "sdtw", 100)),
    *(("TL (m)", "path_length", 1), ("steps", "steps", 1)),
)
SYSTEM1_COLUMNS = (
    *(("SR", "success", 100), ("SPL", "spl", 100), ("NE (m)", "navigation_error", 1)),
    *(("TL (m)", "path_length", 1), ("steps", "steps", 1), ("collisions", "collisions", 1)),
    *(("stuck", "stuck", 100), ("timeout", "timeout", 100), ("explored (m²)", "explored_area", 1)),
)
LEARNING_KEYS = ("train/loss", "eval/success", "eval/spl")


@dataclass
class Evaluation:
    """One evaluation folder: its ``summary.json`` and ``episodes.jsonl`` records."""

    path: Path
    summary: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def label(self) -> str:
        """The agent's label in the summary."""
        return str(self.summary.get("label") or self.summary.get("agent") or self.path.name)


def load_evaluations(path: str | Path) -> list[Evaluation]:
    """The evaluation in ``path``, or those in its sub-folders (sorted by name).

    Raises:
        FileNotFoundError: neither ``path`` nor any sub-folder holds ``summary.json``.
        ValueError: a file is not valid JSON (the message names the file and line).
    """
    path = Path(path)
    folders = (
        [path] if (path / "summary.json").is_file() else sorted(p.parent for p in path.glob("*/summary.json"))
    )
    if not folders:
        raise FileNotFoundError(
            f"{path}: no summary.json in it or its sub-folders (expected an evaluation folder)"
        )
    out = []
    for folder in folders:
        summary = _json(folder / "summary.json", (folder / "summary.json").read_text())
        lines = (
            (folder / "episodes.jsonl").read_text().splitlines()
            if (folder / "episodes.jsonl").is_file()
            else []
        )
        records = [
            _json(folder / f"episodes.jsonl:{i + 1}", line) for i, line in enumerate(lines) if line.strip()
        ]
        out.append(Evaluation(folder, summary, records))
    return out


def _json(where: Path | str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not valid JSON ({err})") from None


def load_run_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` that have a ``step``, each step with its final values.

    Each ``{"event": "open"}`` row starts a logging session; a resumed run logs again the steps after its
    checkpoint, so rows of earlier sessions after the first step of a later session, and those at that step
    with a key it logs again, are dropped (the rule of the trainers' metrics logger). Lines that are not JSON
    (a torn last line) are skipped; non-finite values are ``null`` in the file (None here).
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (expected a training run folder with metrics.jsonl)")
    sessions: list[list[dict[str, Any]]] = [[]]
    for i, line in enumerate(path.read_text().splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d: skipping a line that is not JSON", path, i + 1)
            continue
        if isinstance(row, dict) and row.get("event") == "open":
            sessions.append([])
        elif isinstance(row, dict) and "step" in row:
            sessions[-1].append(row)
    rows: list[dict[str, Any]] = []
    for session in filter(None, sessions):
        first = session[0]["step"]
        relogged = {k for r in session if r["step"] == first for k in r} - {"step", "time"}
        rows = [
            r
            for r in rows
            if r["step"] < first or (r["step"] == first and not relogged & (set(r) - {"step", "time"}))
        ] + session
    return rows


# ---------------------------------------------------------------------------------------------- tables
def _cell(metrics: dict[str, Any], key: str, scale: float) -> str:
    value = metrics.get(key)
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value) * scale:.1f}" if scale != 1 else f"{float(value):.2f}"


def metrics_table(evaluations: Sequence[Evaluation], columns: Sequence[tuple[str, str, float]]) -> str:
    """A Markdown table: one row per evaluation (agent, benchmark, split, episodes, then ``columns``)."""
    head = ["agent", "benchmark", "split", "episodes", *(c[0] for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ev in evaluations:
        s, m = ev.summary, ev.summary.get("metrics", {})
        cells = [ev.label, str(s.get("benchmark", "")), str(s.get("split", "")), str(s.get("count", ""))]
        cells += [_cell(m, key, scale) for _, key, scale in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- plots
def legend_names(evaluations: Sequence[Evaluation]) -> list[str]:
    """Unique names: the agent labels, with the benchmark added when several benchmarks are shown."""
    several = len({ev.summary.get("benchmark") for ev in evaluations}) > 1
    names = [f"{ev.label} · {ev.summary.get('benchmark')}" if several else ev.label for ev in evaluations]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        names[i] = f"{name} ({seen[name]})" if seen[name] > 1 else name
    return names


def _save(fig: Any, path: Path) -> Path:
    """Save a figure as PNG atomically."""
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def _figure(n_panels: int) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * n_panels, 3.4))
    return fig, [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


def plot_learning_curves(runs: dict[str, list[dict[str, Any]]], path: Path) -> Path | None:
    """Loss, eval success and eval SPL against the step, one line per run; None when no run logs them."""
    keys = [k for k in LEARNING_KEYS if any(k in row for rows in runs.values() for row in rows)]
    if not keys:
        return None
    fig, axes = _figure(len(keys))
    for ax, key in zip(axes, keys, strict=True):
        for name, rows in runs.items():
            points = {int(r["step"]): float(r[key]) for r in rows if r.get(key) is not None}
            if points:
                steps = sorted(points)
                ax.plot(
                    steps, [points[s] for s in steps], marker="." if len(steps) < 30 else None, label=name
                )
        ax.set(title=key, xlabel="step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_by_reference_length(evaluations: Sequence[Evaluation], path: Path, n_bins: int = 5) -> Path | None:
    """Success and SPL (%) per bin of reference path length, one line per evaluation with goals."""
    evs = [ev for ev in evaluations if any("success" in r["metrics"] for r in ev.records)]
    lengths = np.array([r.get("reference_length", np.nan) for ev in evs for r in ev.records], float)
    lengths = lengths[np.isfinite(lengths)]
    if not len(lengths):
        return None
    edges = np.linspace(lengths.min(), lengths.max() + 1e-6, min(n_bins, len(np.unique(lengths))) + 1)
    fig, axes = _figure(2)
    for ax, key in zip(axes, ("success", "spl"), strict=True):
        for ev, name in zip(evs, legend_names(evs), strict=True):
            x = np.array([r.get("reference_length", np.nan) for r in ev.records], float)
            y = np.array([r["metrics"].get(key, np.nan) for r in ev.records], float)
            index = np.clip(np.digitize(x, edges) - 1, 0, len(edges) - 2)
            bins = [b for b in range(len(edges) - 1) if np.any((index == b) & np.isfinite(x))]
            centres = [(edges[b] + edges[b + 1]) / 2 for b in bins]
            ax.plot(centres, [100 * np.nanmean(y[index == b]) for b in bins], marker="o", label=name)
        ax.set(title=f"{key} by reference path length", xlabel="reference path length (m)", ylabel="%")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_action_distribution(evaluations: Sequence[Evaluation], path: Path) -> Path | None:
    """Grouped bars: the fraction of each discrete action per evaluation (waypoint actions are skipped)."""
    counts = {}
    for ev, name in zip(evaluations, legend_names(evaluations), strict=True):
        acts = [a for r in ev.records for a in r["actions"] if isinstance(a, int)]
        if acts:
            counts[name] = np.bincount(acts, minlength=len(ACTION_NAMES))[: len(ACTION_NAMES)] / len(acts)
    if not counts:
        return None
    n_actions = max(4, max(int(np.flatnonzero(c).max()) + 1 for c in counts.values()))
    fig, (ax,) = _figure(1)
    width = 0.8 / len(counts)
    for i, (label, frac) in enumerate(counts.items()):
        ax.bar(np.arange(n_actions) + i * width - 0.4 + width / 2, 100 * frac[:n_actions], width, label=label)
    ax.set_xticks(np.arange(n_actions), ACTION_NAMES[:n_actions])
    ax.set(title="actions", ylabel="% of steps")
    ax.legend(fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- report
def write_report(
    eval_dirs: Sequence[str | Path], runs: Sequence[str | Path] = (), out: str | Path = "report"
) -> Path:
    """Write ``report.md`` and the plots for ``eval_dirs`` (+ training ``runs``) into ``out``.

    Returns:
        The path of ``report.md``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evaluations = [ev for d in eval_dirs for ev in load_evaluations(d)]
    vln = [ev for ev in evaluations if ev.summary.get("task", "vln") == "vln"]
    system1 = [ev for ev in evaluations if ev.summary.get("task", "vln") != "vln"]
    run_rows = {Path(r).name: load_run_metrics(r) for r in dict.fromkeys(str(r) for r in runs)}
    lines = ["# Evaluation report", "", f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
    lines += dataset_lines([(ev.label, ev.summary) for ev in evaluations])
    if vln:
        lines += ["## VLN (R2R-CE measures)", "", metrics_table(vln, VLN_COLUMNS), ""]
        lines += [
            "SR, SPL, OSR, nDTW, SDTW in %; NE and TL (trajectory length) in metres; means over episodes.",
            "",
        ]
    if system1:
        lines += ["## System-1 (NavDP protocol)", "", metrics_table(system1, SYSTEM1_COLUMNS), ""]
        lines += ["SR, SPL, stuck and timeout rates in %; success = final distance < 1.5 m (Euclidean).", ""]
    plots = (
        ("Learning curves", plot_learning_curves(run_rows, out / "learning_curves.png")),
        (
            "Success and SPL by reference path length",
            plot_by_reference_length(evaluations, out / "by_reference_length.png"),
        ),
        ("Action distribution", plot_action_distribution(evaluations, out / "actions.png")),
    )
    for title, png in plots:
        if png is not None:
            lines += [f"## {title}", "", f"![{title}]({png.name})", ""]
    lines += _details(evaluations, out)
    path = out / "report.md"
    atomic_write(path, "\n".join(lines).encode())
    return path


def _details(evaluations: Sequence[Evaluation], out: Path) -> list[str]:
    lines = [
        "## Evaluations",
        "",
        "| agent | checkpoint | folder | wall time (s) | steps/s | videos |",
        "|---|---|---|---|---|---|",
    ]
    for ev in evaluations:
        s = ev.summary
        videos = sorted((ev.path / "videos").glob("*.mp4")) if (ev.path / "videos").is_dir() else []
        links = " ".join(f"[{v.stem}]({os.path.relpath(v, out)})" for v in videos) or "–"
        cells = [ev.label, str(s.get("checkpoint") or "–"), os.path.relpath(ev.path, out)]
        cells += [str(s.get("wall_time_s", "–")), str(s.get("steps_per_s", "–")), links]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "eval_dirs", nargs="+", type=Path, help="evaluation folders (summary.json + episodes.jsonl)"
    )
    parser.add_argument(
        "--runs", nargs="*", type=Path, default=[], help="training run folders (metrics.jsonl)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md and the plots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = write_report(args.eval_dirs, args.runs, args.out)
    except (FileNotFoundError, ValueError) as err:
        logger.error("%s", err)
        return 2
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
