"""Metrics logger with an always-on JSONL sink and optional TensorBoard and Weights & Biases sinks.

On-disk layout::

    <run>/metrics.jsonl     one object per line, appended and flushed per call:
                              {"event": "open", "time": t, "run_name": ...}     when a logger opens the file
                              {"step": s, "time": t, "train/loss": 0.42, ...}   per ``log`` call
    <run>/tensorboard/      event files of the TensorBoard sink (``sinks`` contains "tensorboard")
    <run>/wandb/            offline Weights & Biases run (``sinks`` contains "wandb")

Metric keys are namespaced ``<group>/<name>`` (``train/loss``, ``eval/success``, ``time/fps``); values are
finite real numbers. A non-finite value (NaN, inf) does not stop training: it is written as ``null`` in the
JSONL file, left out of the other sinks, and warned about once per key; deciding whether a NaN loss should end
the run is the trainer's business. TensorBoard and W&B come with the ``logging`` extra
(``pip install navgym[logging]``); asking for one that is not installed is an error, not a silent no-op.
W&B runs offline unless the environment sets ``WANDB_MODE``, so no network is needed.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SINKS = ("jsonl", "tensorboard", "wandb")
METRICS_FILE = "metrics.jsonl"


def _missing(sink: str, package: str) -> ImportError:
    return ImportError(
        f"MetricsLogger sink {sink!r} needs the {package!r} package, which is not installed: "
        f"pip install navgym[logging] (or drop {sink!r} from sinks)"
    )


def _to_float(key: str, value: Any) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # 0-d torch tensor or numpy array/scalar
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"metric {key!r}: expected a real number, got {type(value).__name__} {value!r}")


def _cut_torn_tail(path: Path) -> None:
    """Drops a last line without its newline (a writer killed mid-line) so the next row starts cleanly."""
    if not path.is_file():
        return
    with open(path, "r+b") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            logger.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - keep)
            f.truncate(keep)


class MetricsLogger:
    """Writes scalar metrics to ``<run>/metrics.jsonl`` and the optional sinks.

    Args:
        run_dir: The run folder (created).
        sinks: Any of ``"jsonl"`` (always on), ``"tensorboard"``, ``"wandb"``.
        project: W&B project name.
        run_name: Run name shown by W&B (default: the run folder's name).
        config: Resolved run config (a dict) recorded by W&B and TensorBoard.
        enabled: False makes every call a no-op and writes nothing (ranks other than the main one).

    Raises:
        ValueError: An unknown sink name.
        ImportError: A requested optional sink whose package is missing (names ``navgym[logging]``).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        sinks: tuple[str, ...] | list[str] = ("jsonl",),
        project: str = "navgym",
        run_name: str | None = None,
        config: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> None:
        unknown = sorted(set(sinks) - set(SINKS))
        if unknown:
            raise ValueError(f"MetricsLogger: unknown sinks {unknown}; valid sinks are {list(SINKS)}")
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.run_name = run_name or self.run_dir.name
        self._warned: set[str] = set()
        self._file = self._tb = self._wandb = None
        self._closed = False
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if "tensorboard" in sinks:
            self._tb = self._open_tensorboard(config)
        if "wandb" in sinks:
            self._wandb = self._open_wandb(project, config)
        _cut_torn_tail(self.run_dir / METRICS_FILE)
        self._file = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")
        self._write({"event": "open", "time": round(time.time(), 3), "run_name": self.run_name})

    def _open_tensorboard(self, config: dict[str, Any] | None) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise _missing("tensorboard", "tensorboard") from err
        writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        if config is not None:
            writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
        return writer

    def _open_wandb(self, project: str, config: dict[str, Any] | None) -> Any:
        try:
            import wandb
        except ImportError as err:
            raise _missing("wandb", "wandb") from err
        mode = os.environ.get("WANDB_MODE", "offline")
        return wandb.init(
            project=project, name=self.run_name, config=config, dir=str(self.run_dir), mode=mode
        )

    def _write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Records ``metrics`` at ``step`` in every sink.

        Args:
            metrics: ``{"<group>/<name>": value}``; values are Python/numpy numbers or 0-d tensors.
            step: Global training step (int >= 0), the x axis of every sink.

        Raises:
            ValueError: A key that is not ``<group>/<name>``, or a bad step.
            TypeError: A value that is not a real number.
            RuntimeError: The logger was closed.
        """
        if not self.enabled:
            return
        if self._closed:
            raise RuntimeError(f"MetricsLogger for {self.run_dir} is closed")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"MetricsLogger.log: step must be an int >= 0, got {step!r}")
        values = {}
        for key, value in metrics.items():
            group, _, name = str(key).partition("/")
            if not group or not name:
                raise ValueError(
                    f"metric key {key!r}: expected a namespaced '<group>/<name>' such as 'train/loss'"
                )
            values[key] = _to_float(key, value)
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        for key in values.keys() - finite.keys() - self._warned:
            logger.warning("metric %r is %s at step %d; logged as null", key, values[key], step)
            self._warned.add(key)
        row = {"step": int(step), "time": round(time.time(), 3)}
        row.update({k: (v if k in finite else None) for k, v in values.items()})
        self._write(row)
        if self._tb is not None:
            for key, value in finite.items():
                self._tb.add_scalar(key, value, int(step))
        if self._wandb is not None and finite:
            self._wandb.log(finite, step=int(step))

    def close(self) -> None:
        """Flushes and closes every sink; further ``log`` calls raise. Closing twice is harmless."""
        if self._closed or not self.enabled:
            self._closed = True
            return
        self._closed = True
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | os.PathLike, keep_superseded: bool = False) -> list[dict[str, Any]]:
    """Metric rows of ``<run>/metrics.jsonl`` in file order (``null`` values read as None).

    A run resumed from a checkpoint logs again the steps it had logged after that checkpoint before it was
    stopped. Each logger opening starts a session; unless ``keep_superseded``, rows of earlier sessions that
    a later session logs again are dropped (:func:`supersede`), so each step appears with its final values.
    A torn last line (a writer killed mid-line) is ignored (and cut off by the next logger that opens the
    file).

    Raises:
        FileNotFoundError: No ``metrics.jsonl`` in ``run_dir``. A line that is not JSON is skipped with a
            warning naming the file and line, so plots survive a damaged log.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file (written by MetricsLogger)")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]  # the part after the last newline is empty or torn
    sessions: list[list[dict[str, Any]]] = [[]]
    for n, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            logger.warning("%s:%d: skipping a line that is not JSON (%s)", path, n, err)
            continue
        if row.get("event") == "open":
            sessions.append([])
        elif "step" in row:
            sessions[-1].append(row)
    if keep_superseded:
        return [row for rows in sessions for row in rows]
    result: list[dict[str, Any]] = []
    for rows in sessions:
        if rows:
            result = supersede(result, rows)
    return result


def supersede(earlier: list[dict[str, Any]], later: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``earlier`` that a resumed session logging ``later`` leaves standing, then ``later``.

    The later session starts at the step of its checkpoint: earlier rows after that step are superseded, and
    so are earlier rows at that step that log a key the later session logs there again. Rows at that step
    with other keys (an evaluation logged just before the checkpoint was saved) stand.
    """
    first = later[0]["step"]
    relogged = {k for row in later if row["step"] == first for k in row} - {"step", "time"}
    kept = [
        row
        for row in earlier
        if row["step"] < first or (row["step"] == first and not relogged & (set(row) - {"step", "time"}))
    ]
    return kept + later
