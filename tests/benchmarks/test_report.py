"""Evaluation reports: the Markdown table, well-formed PNG plots, readable MP4 videos, the command line."""

import json
import math

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from agents import make_agent
from benchmarks.report import load_evaluations, load_run_metrics, main, write_report
from benchmarks.vln import VLNBenchmark
from trainers.metrics import MetricsLogger


@pytest.fixture(scope="module")
def evals(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("evals")
    bench = VLNBenchmark(tiny_dataset / "val_unseen", width=32, height=32, n_episodes=1, n_videos=1)
    try:
        for name in ("expert", "forward"):
            bench.run(make_agent(name), root / name)
    finally:
        bench.close()
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    with MetricsLogger(run) as log:
        for step in range(0, 50, 5):
            log.log({"train/loss": 2.0 / (1 + step)}, step)
        log.log({"eval/success": 0.25, "eval/spl": 0.2}, 25)
        log.log({"eval/success": 0.5, "eval/spl": float("nan")}, 45)
    return run


def _png_ok(path):
    image = Image.open(path)
    image.verify()
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] >= 150 and image.shape[1] >= 200
    assert image.std() > 0  # not a blank canvas


def test_report_has_the_table_plots_and_videos(evals, run_dir, tmp_path):
    report = write_report([evals / "expert", evals / "forward"], runs=[run_dir], out=tmp_path / "report")
    text = report.read_text()
    header = (
        "| agent | benchmark | split | episodes | SR | SPL | OSR | NE (m) | nDTW | SDTW | TL (m) | steps |"
    )
    assert header in text
    expert = json.loads((evals / "expert" / "summary.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith("| expert |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["expert", "vln_val_unseen", "val_unseen", "1"]
    assert float(cells[4]) == pytest.approx(100 * expert["metrics"]["success"], abs=0.05)
    assert float(cells[7]) == pytest.approx(expert["metrics"]["navigation_error"], abs=0.005)
    assert any(line.startswith("| forward |") for line in text.splitlines())
    for name in ("learning_curves.png", "by_reference_length.png", "actions.png"):
        assert f"]({name})" in text
        _png_ok(tmp_path / "report" / name)
    video = next((evals / "expert" / "videos").glob("*.mp4"))
    assert "../" in text and video.name in text
    record = json.loads((evals / "expert" / "episodes.jsonl").read_text().splitlines()[0])
    with imageio.get_reader(video) as reader:
        shapes = [frame.shape for frame in reader]  # list(reader) fails: ffmpeg reports nframes=inf
    assert len(shapes) == len(record["actions"]) + 1 > 1
    assert len(set(shapes)) == 1 and shapes[0][2] == 3 and shapes[0][0] > 32


def test_a_parent_folder_counts_as_its_evaluations(evals):
    labels = sorted(ev.label for ev in load_evaluations(evals))
    assert labels == ["expert", "forward"]
    with pytest.raises(FileNotFoundError, match="summary.json"):
        load_evaluations(evals / "expert" / "videos")


def test_run_metrics_reader_keeps_finite_values_and_drops_superseded_rows(run_dir):
    rows = load_run_metrics(run_dir)
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(0, 50, 5))
    assert rows[-1]["eval/spl"] is None and math.isclose(rows[-1]["eval/success"], 0.5)
    with MetricsLogger(run_dir) as log:  # a run resumed from its step-30 checkpoint
        log.log({"train/loss": 9.0}, 30)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 35, "trai')  # killed mid-line
    rows = load_run_metrics(run_dir)
    assert max(r["step"] for r in rows) == 30 and rows[-1]["train/loss"] == 9.0
    assert [r["step"] for r in rows if "train/loss" in r] == [0, 5, 10, 15, 20, 25, 30]


def test_command_line(evals, tmp_path):
    assert main([str(evals), "--out", str(tmp_path / "cli")]) == 0
    text = (tmp_path / "cli" / "report.md").read_text()
    assert "| expert |" in text and "| forward |" in text and "learning_curves.png" not in text
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
