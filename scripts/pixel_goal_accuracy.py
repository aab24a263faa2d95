"""System 2's answers on held-out pixel-goal queries: pixel error, arrow and STOP accuracy.

    python scripts/pixel_goal_accuracy.py --checkpoint runs/s2/checkpoints/last --data data/navgym_r2r \
        --split val_unseen [--n-episodes 50] [--max-queries 500] [--out runs/s2/pixel_goals.json]

The expert's episodes of ``--split`` are collected once into ``--store`` (default ``<out dir>/store_<split>``,
reused on a rerun), turned into System-2 queries exactly as for training (:class:`PixelGoalDataset`, the
agent's own cameras and sample declaration, no colour augmentation), and each query is asked as the agent asks
it at run time (a ``↓`` answer is followed by the look-down image). The metrics are
:func:`envs.tasks.pixel_goal.pixel_goal_metrics`: median pixel error and the share within 5 % of the image
diagonal on pixel queries, exact arrow accuracy on turn queries, STOP accuracy, and the count of answers that
do not parse; with the mean generation latency per query (ms). ``constant_pixel`` scores the same queries
answered with one pixel, the median target of the pixel queries asked: a model below it has not learned
where the goal is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import load_agent  # noqa: E402
from agents.checkpoints import find_agent_dir  # noqa: E402
from agents.contract import agent_cameras, interface_of  # noqa: E402
from agents.system2.conversation import parse_answer  # noqa: E402
from envs.fileio import atomic_write  # noqa: E402
from envs.tasks.pixel_goal import pixel_goal_metrics  # noqa: E402
from trainers.data.pixel_goals import PixelGoalDataset  # noqa: E402

logger = logging.getLogger("pixel_goal_accuracy")


def collect_store(data: Path, split: str, store: Path, n_episodes: int | None) -> None:
    """The expert's episodes of ``split`` in ``store`` (``python -m trainers.data.collect``; resumable)."""
    command = [sys.executable, "-m", "trainers.data.collect", "--data", str(data), "--split", split]
    command += ["--out", str(store), "--no-progress"]
    if n_episodes is not None:
        command += ["--n-episodes", str(n_episodes)]
    subprocess.run(command, cwd=ROOT, check=True)


def answer(agent, item: dict) -> str:
    """The agent's final answer text to one query (the look-down turn follows a ``↓``)."""
    text = agent.generate(item["instruction_text"], list(item["history"]), item["current"])
    if parse_answer(text).kind == "lookdown":
        text = agent.generate(
            item["instruction_text"], list(item["history"]), item["current"], item["lookdown"]
        )
    return text


def evaluate(
    checkpoint: Path, data: Path, split: str, store: Path, max_queries: int | None, size: int = 64
) -> dict:
    """Metrics of ``checkpoint``'s answers on the queries of the episodes in ``store`` (camera ``size``
    pixels square, as ``data.width`` / ``data.height`` of its training)."""
    agent = load_agent(find_agent_dir(checkpoint)).eval()
    if agent.sample.kind != "pixel_goal":
        raise ValueError(f"{checkpoint}: agent {agent.name!r} does not answer pixel-goal queries")
    cameras = agent_cameras(interface_of(agent), size, size, 90.0)
    lookdown = next(c for c in cameras if c.uuid == agent.sample.lookdown)
    spec = dataclasses.replace(agent.sample, augment=False)
    dataset = PixelGoalDataset(store, data / "scenes", cameras[0], spec, lookdown)
    n = len(dataset) if max_queries is None else min(len(dataset), max_queries)
    samples, predictions, seconds = [], [], 0.0
    for i in range(n):
        item = dataset[i]
        start = time.perf_counter()
        predictions.append(answer(agent, item))
        seconds += time.perf_counter() - start
        samples.append(item)
    metrics = pixel_goal_metrics(predictions, samples)
    metrics["latency_ms"] = 1000.0 * seconds / max(n, 1)
    constant = constant_pixel(samples)
    baseline = {"pixel": list(constant), **pixel_goal_metrics([f"{constant[0]} {constant[1]}"] * n, samples)}
    return {
        "checkpoint": str(checkpoint), "split": split, "queries": n, "counts": dataset.counts,
        **null_nan(metrics), "constant_pixel": null_nan(baseline),
    }  # fmt: skip


def constant_pixel(samples: list[dict]) -> tuple[int, int]:
    """The median (row, col) target of the pixel queries among ``samples`` ((0, 0) without any)."""
    pixels = [np.asarray(s["pixel"]).reshape(2) for s in samples if str(s["kind"]) == "pixel"]
    if not pixels:
        return 0, 0
    row, col = np.median(np.stack(pixels), axis=0).round().astype(int)
    return int(row), int(col)


def null_nan(metrics: dict) -> dict:
    """NaN values as None (JSON null)."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    p = argparse.ArgumentParser(
        prog="python scripts/pixel_goal_accuracy.py", description=__doc__.split("\n")[0]
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a system2 agent folder, checkpoint or run")
    p.add_argument("--data", required=True, type=Path, help="VLN dataset root (R2R-CE layout)")
    p.add_argument("--split", default="val_unseen")
    p.add_argument("--n-episodes", type=int, default=None, help="expert episodes to collect (default: all)")
    p.add_argument("--max-queries", type=int, default=None, help="ask at most this many queries")
    p.add_argument(
        "--store", type=Path, default=None, help="expert store of the split (default: beside --out)"
    )
    p.add_argument("--size", type=int, default=64, help="camera side in pixels (the training data.width)")
    p.add_argument("--out", type=Path, default=Path("runs/pixel_goal_accuracy.json"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    store = args.store or args.out.parent / f"store_{args.split}"
    if not (store / "store.json").exists():
        collect_store(args.data, args.split, store, args.n_episodes)
    result = evaluate(args.checkpoint, args.data, args.split, store, args.max_queries, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, (json.dumps(result, indent=2) + "\n").encode())
    logger.info("%s", json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
