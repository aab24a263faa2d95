"""Training-data throughput: render on read vs stored frames per loader worker count, and training samples/s.

OMP_NUM_THREADS=1 python -m trainers.data.bench --data data/navgym_r2r --workers 0 1 --episodes 40
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agents.contract import SampleSpec
from envs.render import CameraSpec
from trainers.data.dataset import LengthBucketBatchSampler, TrajectoryDataset, make_loader
from trainers.data.windows import WindowBatchSampler, WindowDataset, collate_windows

#: The window measured: NavDP-like history, RDP-like horizon.
WINDOW = SampleSpec(kind="window", history=4, stride=2, horizon=8)


def _loader_rate(dataset: TrajectoryDataset, batch_size: int, workers: int, seed: int = 0) -> float:
    """Trajectory steps per second the loader delivers over one epoch, after its first batch (start-up)."""
    loader = make_loader(dataset, LengthBucketBatchSampler(dataset.lengths, batch_size, seed=seed), workers)
    it = iter(loader)
    next(it)
    start, steps = time.perf_counter(), 0
    for batch in it:
        steps += int(batch["mask"].sum())
    return steps / max(time.perf_counter() - start, 1e-9)


def _window_rate(dataset: WindowDataset, batch_size: int, workers: int, seed: int = 0) -> float:
    """Windows per second the loader delivers over one epoch, after its first batch (start-up)."""
    sampler = WindowBatchSampler(len(dataset), batch_size, seed=seed)
    it = iter(make_loader(dataset, sampler, workers, collate_windows))
    next(it)
    start, windows = time.perf_counter(), 0
    for batch in it:
        windows += len(batch["episode_id"])
    return windows / max(time.perf_counter() - start, 1e-9)


def _train_rate(agent_name: str, dataset: TrajectoryDataset, batch_size: int, vocab: Any) -> float:
    """Trajectory steps per second of ``Agent.loss`` + backward + Adam on pre-loaded batches."""
    from agents import make_agent

    agent = make_agent(agent_name, vocab=vocab)
    optimizer = torch.optim.Adam(agent.parameters(), lr=2.5e-4)
    batches = list(make_loader(dataset, LengthBucketBatchSampler(dataset.lengths, batch_size), 0))
    agent.loss(batches[0])[0].backward()  # warm-up
    start, steps = time.perf_counter(), 0
    for batch in batches[1:]:
        loss, _ = agent.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += int(batch["mask"].sum())
    return steps / max(time.perf_counter() - start, 1e-9)


def bench(data_dir: Path, n_episodes: int, batch_size: int, workers: Sequence[int], size: int) -> dict:
    """Throughput of render-on-read vs stored frames (per worker count; trajectories and windows) and of
    training (seq2seq, cma).

    Collects ``n_episodes`` expert episodes twice into temporary stores (with and without frames).
    """
    import tempfile

    from envs.datasets.r2r import load_episodes
    from trainers.data.collect import collect_expert

    camera = CameraSpec(width=size, height=size)
    down = CameraSpec(uuid="down", width=size, height=size, pitch=-30.0, modalities=("rgb",))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, stored in (("render", False), ("stored", True)):
            store = Path(tmp) / mode
            collect_expert(data_dir, "train", store, n_episodes, stored, size, size, progress=False)
            dataset = TrajectoryDataset(store, Path(data_dir) / "scenes", camera, frames=mode)
            windows = WindowDataset(store, Path(data_dir) / "scenes", camera, WINDOW, [down], frames=mode)
            for n in workers:
                out[f"loader/{mode}/workers={n}"] = _loader_rate(dataset, batch_size, n)
                out[f"windows/{mode}/workers={n}"] = _window_rate(windows, 8 * batch_size, n)
        vocab = load_episodes(Path(data_dir) / "train", Path(data_dir) / "scenes").vocab
        for name in ("seq2seq", "cma"):
            out[f"train/{name}"] = _train_rate(name, dataset, batch_size, vocab)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print trajectory steps per second of data loading and training."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m trainers.data.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="dataset root (R2R-CE layout)")
    p.add_argument("--episodes", type=int, default=24, help="expert episodes to load (default 24)")
    p.add_argument("--batch-size", type=int, default=4, help="trajectories per batch (default 4)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="worker counts (default 0 1)")
    p.add_argument("--size", type=int, default=64, help="camera side in pixels (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    results = bench(args.data, args.episodes, args.batch_size, args.workers, args.size)
    for key, rate in results.items():
        unit = "windows/s" if key.startswith("windows/") else "trajectory steps/s"
        print(f"{key:32s} {rate:9.1f} {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
