"""MetricsLogger: JSONL rows, validation, non-finite values, resumed runs, optional sinks."""

import importlib.util
import json
import logging

import numpy as np
import pytest
import torch

from benchmarks.report import load_run_metrics
from trainers.metrics import MetricsLogger, read_metrics


def test_jsonl_rows_are_flushed_per_call_and_read_back(tmp_path):
    with MetricsLogger(tmp_path / "run") as log:
        log.log({"train/loss": 0.5, "train/lr": np.float32(1e-3)}, step=1)
        # Readable before close: each call is flushed.
        assert read_metrics(tmp_path / "run")[0]["train/loss"] == 0.5
        log.log({"eval/success": torch.tensor(0.25), "rollout/ep_len": np.int64(37)}, step=2)
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["train/lr"] == pytest.approx(1e-3) and rows[1]["eval/success"] == 0.25
    assert rows[1]["rollout/ep_len"] == 37.0 and all(isinstance(r["time"], float) for r in rows)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["event"] == "open" and len(lines) == 3
    with pytest.raises(RuntimeError, match="closed"):
        log.log({"train/loss": 1.0}, step=3)


def test_bad_metrics_are_rejected_and_non_finite_logged_as_null(tmp_path, caplog):
    with MetricsLogger(tmp_path) as log:
        with pytest.raises(ValueError, match="namespaced '<group>/<name>'"):
            log.log({"loss": 1.0}, step=0)
        with pytest.raises(TypeError, match="'train/name': expected a real number, got str"):
            log.log({"train/name": "abc"}, step=0)
        with pytest.raises(ValueError, match="step must be an int >= 0"):
            log.log({"train/loss": 1.0}, step=-1)
        with caplog.at_level(logging.WARNING, logger="trainers.metrics"):
            log.log({"train/loss": float("nan"), "train/acc": 0.5}, step=1)
            log.log({"train/loss": float("inf")}, step=2)
        assert sum("train/loss" in r.message for r in caplog.records) == 1  # warned once per key
    rows = read_metrics(tmp_path)
    assert rows == [
        {"step": 1, "time": rows[0]["time"], "train/loss": None, "train/acc": 0.5},
        {"step": 2, "time": rows[1]["time"], "train/loss": None},
    ]
    with pytest.raises(ValueError, match="unknown sinks"):
        MetricsLogger(tmp_path, sinks=("jsonl", "mlflow"))


def test_resumed_run_supersedes_steps_logged_after_the_checkpoint(tmp_path):
    with MetricsLogger(tmp_path) as log:
        for step in range(1, 6):
            log.log({"train/loss": float(step)}, step=step)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/lo')  # killed mid-line
    with MetricsLogger(tmp_path) as log:  # resumed from a checkpoint at step 3
        for step in range(4, 7):
            log.log({"train/loss": 10.0 * step}, step=step)
    rows = read_metrics(tmp_path)
    assert [(r["step"], r["train/loss"]) for r in rows] == [(1, 1), (2, 2), (3, 3), (4, 40), (5, 50), (6, 60)]
    assert len(read_metrics(tmp_path, keep_superseded=True)) == 8


def test_resumed_run_keeps_other_rows_logged_at_its_checkpoint_step(tmp_path):
    # A DAgger round ends with an evaluation logged at the checkpoint's step; the resumed run logs its next
    # collection at that same step, and the training row after the checkpoint again.
    with MetricsLogger(tmp_path) as log:
        log.log({"train/loss": 1.0}, step=10)
        log.log({"eval/success": 0.35}, step=10)
        log.log({"collect/round": 4.0}, step=10)
        log.log({"train/loss": 2.0}, step=20)
    with MetricsLogger(tmp_path) as log:  # resumed from the checkpoint at step 10, after its evaluation
        log.log({"collect/round": 4.0, "collect/success": 0.4}, step=10)
        log.log({"train/loss": 3.0}, step=20)
    rows = [{k: v for k, v in r.items() if k != "time"} for r in read_metrics(tmp_path)]
    assert rows == [
        {"step": 10, "train/loss": 1.0},
        {"step": 10, "eval/success": 0.35},
        {"step": 10, "collect/round": 4.0, "collect/success": 0.4},
        {"step": 20, "train/loss": 3.0},
    ]
    assert [{k: v for k, v in r.items() if k != "time"} for r in load_run_metrics(tmp_path)] == rows


def test_disabled_logger_writes_nothing(tmp_path):
    with MetricsLogger(tmp_path / "rank1", enabled=False) as log:
        log.log({"train/loss": 1.0}, step=0)
    assert not (tmp_path / "rank1").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_missing_tensorboard_names_the_extra(tmp_path):
    with pytest.raises(ImportError, match=r"pip install navgym\[logging\]"):
        MetricsLogger(tmp_path, sinks=("jsonl", "tensorboard"))


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_missing_wandb_names_the_extra(tmp_path):
    with pytest.raises(ImportError, match=r"'wandb'.*pip install navgym\[logging\]"):
        MetricsLogger(tmp_path, sinks=("wandb",))


def test_tensorboard_sink_writes_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLogger(tmp_path, sinks=("jsonl", "tensorboard"), config={"lr": 1e-3}) as log:
        log.log({"train/loss": 0.5, "train/bad": float("nan")}, step=3)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(3, 0.5)]
    assert "train/bad" not in events.Tags()["scalars"]


def test_wandb_sink_runs_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with MetricsLogger(tmp_path, sinks=("wandb",), run_name="t") as log:
        assert log._wandb.settings.mode == "offline"
        log.log({"train/loss": 0.5}, step=1)
    assert list((tmp_path / "wandb").glob("offline-run-*"))
