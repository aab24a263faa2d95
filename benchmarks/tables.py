"""Results tables over seeds: one row per agent, each metric as the mean ± std of its runs' summaries.

A row holds the ``summary.json`` of every run of one agent on one benchmark (one per training seed, or a
single run). Metrics are those of the summaries (means over episodes); a row of several runs shows
``mean ± std`` with the sample standard deviation over runs (``ddof=1``), a row of one run its value. Rates
are fractions (0.465, as the README's tables), lengths metres, steps per episode. :func:`results_page` puts
the tables under the facts that make them reproducible (dataset digest, code version, command) and warns about
evaluations on other data than the checkpoints were trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.provenance import dataset_lines

#: (column, summary metric key, decimals) of the VLN table (R2R-CE measures).
VLN_COLUMNS = (
    ("SR", "success", 3),
    ("SPL", "spl", 3),
    ("OSR", "oracle_success", 3),
    ("NE (m)", "navigation_error", 2),
    ("nDTW", "ndtw", 3),
    ("steps", "steps", 0),
)
#: The same for System-1 benchmarks (NavDP protocol).
SYSTEM1_COLUMNS = (
    ("SR", "success", 3),
    ("SPL", "spl", 3),
    ("NE (m)", "navigation_error", 2),
    ("TL (m)", "path_length", 2),
    ("steps", "steps", 0),
    ("collisions", "collisions", 1),
)


@dataclass
class ResultRow:
    """One agent's runs on one benchmark.

    Attributes:
        label: the row's name in the table.
        summaries: the ``summary.json`` of each run (one per seed).
        seeds: the training seed of each run (None for untrained agents).
    """

    label: str
    summaries: list[dict[str, Any]]
    seeds: list[int | None] = field(default_factory=list)

    def stats(self, key: str) -> tuple[float, float | None, list[float]]:
        """``(mean, std or None for one run, values)`` of metric ``key`` over the runs that report it.

        Raises:
            ValueError: no run reports a finite ``key`` (the message names the row and the key).
        """
        values = [s.get("metrics", {}).get(key) for s in self.summaries]
        values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not values:
            raise ValueError(f"{self.label}: no summary has a finite metrics.{key}")
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        return float(np.mean(values)), std, values


def columns_for(task: str) -> tuple[tuple[str, str, int], ...]:
    """The table columns of a benchmark task: VLN's for ``vln``, System-1's otherwise."""
    return VLN_COLUMNS if task == "vln" else SYSTEM1_COLUMNS


def format_stat(mean: float, std: float | None, decimals: int) -> str:
    """``0.465 ± 0.021``, or ``0.465`` without a std."""
    text = f"{mean:.{decimals}f}"
    return text if std is None else f"{text} ± {std:.{decimals}f}"


def _cell(row: ResultRow, key: str, decimals: int) -> str:
    try:
        mean, std, _ = row.stats(key)
    except ValueError:
        return "–"
    return format_stat(mean, std, decimals)


def results_table(rows: Sequence[ResultRow], columns: Sequence[tuple[str, str, int]]) -> str:
    """A Markdown table: ``agent | runs | episodes | <columns>``, one line per row."""
    head = ["agent", "runs", "episodes", *(c[0] for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for row in rows:
        episodes = sorted({int(s.get("count", 0)) for s in row.summaries})
        cells = [row.label, str(len(row.summaries)), "/".join(map(str, episodes))]
        cells += [_cell(row, key, decimals) for _, key, decimals in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def row_record(row: ResultRow) -> dict[str, Any]:
    """JSON form of a row: label, seeds, and per metric its mean, std and per-run values."""
    metrics = {}
    keys = sorted({k for s in row.summaries for k in s.get("metrics", {})})
    for key in keys:
        try:
            mean, std, values = row.stats(key)
        except ValueError:
            continue
        metrics[key] = {"mean": mean, "std": std, "values": values}
    return {"label": row.label, "seeds": row.seeds, "runs": len(row.summaries), "metrics": metrics}


def load_row(label: str, folders: Sequence[str | Path], seeds: Sequence[int | None] = ()) -> ResultRow:
    """A row from evaluation folders (each holding ``summary.json``).

    Raises:
        FileNotFoundError: a folder has no ``summary.json`` (the message names it).
    """
    summaries = []
    for folder in folders:
        path = Path(folder) / "summary.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; evaluate {label!r} first")
        summaries.append(json.loads(path.read_text()))
    return ResultRow(label, summaries, list(seeds))


def tables_markdown(rows: Sequence[ResultRow]) -> list[str]:
    """Markdown lines: one section and table per benchmark (in the rows' order), with its columns."""
    groups: dict[str, list[ResultRow]] = {}
    for row in rows:
        groups.setdefault(str(row.summaries[0].get("benchmark")), []).append(row)
    lines = []
    for name, group in groups.items():
        first = group[0].summaries[0]
        lines += [f"## {name} ({first.get('split')})", ""]
        lines += [results_table(group, columns_for(str(first.get("task", "vln")))), ""]
    return lines


def evaluation_inputs(folders: Sequence[str | Path]) -> list[list[Any]]:
    """``[folder, size, mtime_ns]`` of each folder's ``summary.json`` (``[folder, None, None]`` when
    missing): what a table made from them depends on."""
    out: list[list[Any]] = []
    for folder in folders:
        path = Path(folder) / "summary.json"
        st = path.stat() if path.is_file() else None
        out.append([str(folder), st and st.st_size, st and st.st_mtime_ns])
    return out


def results_page(title: str, facts: Sequence[str], rows: Sequence[ResultRow], digest: str | None) -> str:
    """A Markdown page of results: the title, a list of ``facts`` (data, code, command), a warning line for
    each evaluation on data other than its checkpoint's training data, for evaluations on several datasets
    and for evaluations whose data is not ``digest`` (the dataset the page is about), then the tables."""
    named = [
        (row.label if seed is None else f"{row.label} (seed {seed})", summary)
        for row in rows
        for seed, summary in zip(row.seeds or [None] * len(row.summaries), row.summaries, strict=True)
    ]
    warnings = [line for line in dataset_lines(named) if line.startswith(">")]
    other = sorted({str(s.get("dataset_digest")) for _, s in named} - {str(digest)})
    if other:
        warnings.append(
            f"> **Warning, dataset mismatch:** evaluations ran on data of digest {', '.join(other)}, "
            f"not on this page's dataset `{digest}`."
        )
    lines = [f"# {title}", "", *(f"- {fact}" for fact in facts), ""]
    for warning in warnings:
        lines += [warning, ""]
    return "\n".join(lines + tables_markdown(rows))
