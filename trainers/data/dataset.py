"""Whole-trajectory training data from a trajectory store: render on read, padding, length-bucketed batches.

:class:`TrajectoryDataset` yields one stored episode per item with its frames either **re-rendered** from the
stored poses (the default for episodes stored without frames: a trajectory stays a few kilobytes, and DAgger
aggregation costs almost no disk) or read from the store when it holds them. Rendering happens in the
DataLoader workers: each worker lazily creates its own EGL context on its first item and keeps one renderer
per scene (an LRU cache). The renderer is the simulator's (:class:`envs.render.Renderer` with the same
camera), without the navigation grid a full :class:`envs.sim.Simulator` would build, which rendering does not
need; frames equal ``Simulator.render_at`` at the same pose. EGL does not survive ``fork``, so loaders with
workers start them with ``spawn`` (:func:`make_loader`).

:func:`collate_trajectories` pads items to ``(B, T, ...)`` in the batch layout of ``Agent.loss``;
:class:`LengthBucketBatchSampler` makes VLN-CE's batches (sort by length within blocks of 100 batches,
shuffle the batches), seeded per epoch, sharded across ranks, and restartable mid-epoch.

Throughput benchmark (render on read vs stored frames, and training samples/s per agent)::

    python -m trainers.data.dataset --bench --data data/navgym_r2r --workers 1
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from envs.render import CameraSpec
from trainers.data.store import Episode, TrajectoryStore

logger = logging.getLogger(__name__)


class TrajectoryDataset(Dataset):
    """Episodes of a trajectory store, ordered by ``(round, slot)``, with frames.

    Args:
        store_dir: the trajectory store.
        scenes_dir: folder that the episodes' ``scene_id`` paths are relative to (for rendering).
        camera: the camera to render with (same width, height and HFOV as the environment's).
        frames: ``"auto"`` (stored frames when an episode has them, else render), ``"render"`` or
            ``"stored"``.
        rounds: only these DAgger rounds (None: all).
        scene_cache_size: renderers kept per worker.

    Items are dicts: ``episode_id``, ``instruction_text``, ``round``, ``rgb`` (T,H,W,3) uint8, ``depth``
    (T,H,W,1) float32 metres, ``actions`` (T,) int64 expert labels, ``executed`` (T,) int64 executed actions,
    ``progress`` (T,) float32 in [-1, 1]: ``(d0 - d_t) / d0`` with ``d`` the stored geodesic distance to the
    goal (VLN-CE's oracle progress), or the Euclidean analogue toward the last pose without stored distances.
    """

    def __init__(
        self,
        store_dir: str | Path,
        scenes_dir: str | Path,
        camera: CameraSpec,
        frames: str = "auto",
        rounds: Sequence[int] | None = None,
        scene_cache_size: int = 8,
    ) -> None:
        if frames not in ("auto", "render", "stored"):
            raise ValueError(
                f"TrajectoryDataset: frames must be 'auto', 'render' or 'stored', got {frames!r}"
            )
        self.store_dir, self.scenes_dir = Path(store_dir), Path(scenes_dir)
        self.camera, self.frames, self.rounds = camera, frames, None if rounds is None else list(rounds)
        self.scene_cache_size = scene_cache_size
        self.store = TrajectoryStore(self.store_dir, readonly=True)
        self._keys: dict[int, tuple[int, int]] = {}
        self._renderers: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self.refresh()

    def refresh(self) -> int:
        """See episodes committed since the last refresh; returns the dataset's length."""
        self.store.refresh()
        for i in range(len(self.store)):
            if i not in self._keys:
                meta = self.store.meta(i)
                extras = self.store.get(i, frames=False).extras
                self._keys[i] = (int(meta["round"]), int(extras.get("slot", i)))
        chosen = [i for i in self._keys if self.rounds is None or self._keys[i][0] in self.rounds]
        self.indices = sorted(chosen, key=lambda i: (self._keys[i], i))
        all_lengths = self.store.lengths()
        self.lengths = all_lengths[self.indices] if self.indices else np.zeros(0, np.int64)
        return len(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_renderers"] = collections.OrderedDict()  # GL objects stay in the process that made them
        return state

    def episode(self, i: int) -> Episode:
        """The stored episode of item ``i`` (frames included when stored)."""
        return self.store.get(self.indices[i], frames=self.frames != "render")

    def __getitem__(self, i: int) -> dict[str, Any]:
        ep = self.episode(i)
        if self.frames == "stored" and not {"rgb", "depth"} <= set(ep.frames):
            raise KeyError(f"{self.store_dir}: episode {ep.episode_id!r} has no stored rgb/depth frames")
        frames = ep.frames if {"rgb", "depth"} <= set(ep.frames) else self.render(ep)
        return {
            "episode_id": ep.episode_id,
            "instruction_text": ep.instruction_text,
            "round": ep.round,
            "rgb": frames["rgb"],
            "depth": frames["depth"],
            "actions": ep.actions,
            "executed": ep.executed,
            "progress": progress_target(ep),
        }

    def _renderer(self, scene_id: str) -> Any:
        from envs.render import Renderer
        from envs.scenes import load_scene

        if scene_id not in self._renderers:
            self._renderers[scene_id] = Renderer(load_scene(self.scenes_dir / scene_id))
            while len(self._renderers) > self.scene_cache_size:
                self._renderers.popitem(last=False)[1].release()
        self._renderers.move_to_end(scene_id)
        return self._renderers[scene_id]

    def render(self, ep: Episode) -> dict[str, np.ndarray]:
        """``rgb`` (T,H,W,3) uint8 and ``depth`` (T,H,W,1) float32 rendered at the episode's stored poses."""
        renderer = self._renderer(ep.scene_id)
        views = [renderer.render(self.camera, p, r) for p, r in zip(ep.positions, ep.rotations, strict=True)]
        return {k: np.stack([v[k] for v in views]) for k in ("rgb", "depth")}


def progress_target(ep: Episode) -> np.ndarray:
    """(T,) float32 progress in [-1, 1]: ``(d0 - d_t) / d0`` (see :class:`TrajectoryDataset`)."""
    if "geodesic" in ep.extras:
        d = np.asarray(ep.extras["geodesic"], np.float64)
        d0 = float(ep.extras.get("start_geodesic", d[0]))
    else:
        d = np.linalg.norm(ep.positions - ep.positions[-1], axis=1).astype(np.float64)
        d0 = float(d[0])
    if not np.isfinite(d0) or d0 <= 0:
        return np.ones(len(d), np.float32)
    return np.clip((d0 - d) / d0, -1.0, 1.0).astype(np.float32)


def blank_inputs(obs: dict[str, Any], blank: Sequence[str]) -> dict[str, Any]:
    """A copy of a batch or an observation with inputs blanked for ablations (the input is not modified).

    ``"instruction"`` makes every ``instruction_text`` empty (all PAD tokens) and zeroes ``instruction`` token
    ids; ``"vision"`` zeroes ``rgb`` and ``depth``. Works on numpy arrays and tensors.
    """
    out = dict(obs)
    if "instruction" in blank:
        texts = obs.get("instruction_text", [])
        out["instruction_text"] = "" if isinstance(texts, str) else [""] * len(texts)
        if "instruction" in obs:
            out["instruction"] = _zeros_like(obs["instruction"])
    if "vision" in blank:
        for key in ("rgb", "depth"):
            if key in obs:
                out[key] = _zeros_like(obs[key])
    return out


def _zeros_like(x: Any) -> Any:
    return torch.zeros_like(x) if isinstance(x, torch.Tensor) else np.zeros_like(np.asarray(x))


def collate_trajectories(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad whole trajectories into the batch of ``Agent.loss``.

    Returns:
        ``rgb`` (B,T,H,W,3) uint8, ``depth`` (B,T,H,W,1) float32, ``actions`` (B,T) int64 expert labels (0
        when padded), ``prev_actions`` (B,T) int64 executed action of the previous step (−1 at t=0 and when
        padded), ``mask`` (B,T) bool, ``progress`` (B,T) float32, ``lengths`` (B,) int64, ``instruction_text``
        and ``episode_id`` lists of B strings; T is the longest trajectory.
    """
    lengths = [len(it["actions"]) for it in items]
    b, t = len(items), max(lengths)
    h, w = items[0]["rgb"].shape[1:3]
    out = {
        "rgb": torch.zeros((b, t, h, w, 3), dtype=torch.uint8),
        "depth": torch.zeros((b, t, h, w, 1), dtype=torch.float32),
        "actions": torch.zeros((b, t), dtype=torch.int64),
        "prev_actions": torch.full((b, t), -1, dtype=torch.int64),
        "mask": torch.zeros((b, t), dtype=torch.bool),
        "progress": torch.zeros((b, t), dtype=torch.float32),
    }
    for k, (it, n) in enumerate(zip(items, lengths, strict=True)):
        out["rgb"][k, :n] = torch.from_numpy(np.ascontiguousarray(it["rgb"]))
        out["depth"][k, :n] = torch.from_numpy(np.ascontiguousarray(it["depth"], dtype=np.float32))
        out["actions"][k, :n] = torch.from_numpy(np.asarray(it["actions"], np.int64))
        out["prev_actions"][k, 1:n] = torch.from_numpy(np.asarray(it["executed"], np.int64)[: n - 1])
        out["mask"][k, :n] = True
        out["progress"][k, :n] = torch.from_numpy(np.asarray(it["progress"], np.float32))
    out["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    out["instruction_text"] = [it["instruction_text"] for it in items]
    out["episode_id"] = [it["episode_id"] for it in items]
    return out


class LengthBucketBatchSampler(Sampler[list[int]]):
    """VLN-CE's batching of whole trajectories, sharded across ranks and restartable mid-epoch.

    Per epoch: a permutation seeded by ``(seed, epoch)`` is cut into blocks of ``batch_size * block_batches``
    items, each block sorted by length (so padding stays small) and cut into batches, and the batches of
    all blocks are shuffled. Rank ``r`` of ``world_size`` takes batches ``r::world_size``, cut to the same
    count on every rank. :meth:`set_epoch` picks the epoch and :meth:`set_start` skips the first batches of
    the rank's share (resuming a checkpoint taken mid-epoch).

    Args:
        lengths: (N,) trajectory lengths.
        batch_size: trajectories per batch (per rank).
        block_batches: batches per sorted block (VLN-CE preloads 100 batches).
        shuffle: permute items and batches (else file order).
        drop_last: drop a last smaller batch (VLN-CE: yes).
        seed: base seed.
        rank, world_size: this process's share.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        block_batches: int = 100,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or block_batches < 1:
            raise ValueError(f"batch_size and block_batches must be >= 1, got {batch_size}, {block_batches}")
        self.lengths = np.asarray(lengths, np.int64)
        self.batch_size, self.block_batches = int(batch_size), int(block_batches)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order (and start from its first batch)."""
        self.epoch, self.start = int(epoch), 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` batches of this rank's share of the epoch."""
        self.start = int(start)

    def epoch_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch, from the first one."""
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        block = self.batch_size * self.block_batches
        batches = []
        for lo in range(0, n, block):
            chunk = order[lo : lo + block]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)
            ]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        per_rank = len(batches) // self.world_size
        return batches[self.rank :: self.world_size][:per_rank]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.start :]

    def __len__(self) -> int:
        return max(0, len(self.epoch_batches()) - self.start)


def make_loader(
    dataset: TrajectoryDataset, sampler: LengthBucketBatchSampler, num_workers: int = 0
) -> DataLoader:
    """A DataLoader of padded batches; workers (if any) are spawned and persist across epochs."""
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = {"multiprocessing_context": "spawn", "persistent_workers": True, "prefetch_factor": 2}
    return DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate_trajectories, num_workers=num_workers, **extra
    )


def _loader_rate(dataset: TrajectoryDataset, batch_size: int, workers: int, seed: int = 0) -> float:
    """Trajectory steps per second the loader delivers over one epoch, after its first batch (start-up)."""
    loader = make_loader(dataset, LengthBucketBatchSampler(dataset.lengths, batch_size, seed=seed), workers)
    it = iter(loader)
    next(it)
    start, steps = time.perf_counter(), 0
    for batch in it:
        steps += int(batch["mask"].sum())
    return steps / max(time.perf_counter() - start, 1e-9)


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
    """Throughput of render-on-read vs stored frames (per worker count) and of training (seq2seq, cma).

    Collects ``n_episodes`` expert episodes twice into temporary stores (with and without frames).
    """
    import tempfile

    from envs.datasets.r2r import load_episodes
    from trainers.data.collect import collect_expert

    camera = CameraSpec(width=size, height=size)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, stored in (("render", False), ("stored", True)):
            store = Path(tmp) / mode
            collect_expert(data_dir, "train", store, n_episodes, stored, size, size, progress=False)
            dataset = TrajectoryDataset(store, Path(data_dir) / "scenes", camera, frames=mode)
            for n in workers:
                out[f"loader/{mode}/workers={n}"] = _loader_rate(dataset, batch_size, n)
        vocab = load_episodes(Path(data_dir) / "train", Path(data_dir) / "scenes").vocab
        for name in ("seq2seq", "cma"):
            out[f"train/{name}"] = _train_rate(name, dataset, batch_size, vocab)
    return out


def main(argv: list[str] | None = None) -> int:
    """``--bench``: print trajectory steps per second of data loading and training."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m trainers.data.dataset", description=__doc__.split("\n")[0])
    p.add_argument("--bench", action="store_true", help="run the throughput benchmark")
    p.add_argument("--data", type=Path, required=True, help="dataset root (R2R-CE layout)")
    p.add_argument("--episodes", type=int, default=24, help="expert episodes to load (default 24)")
    p.add_argument("--batch-size", type=int, default=4, help="trajectories per batch (default 4)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="worker counts (default 0 1)")
    p.add_argument("--size", type=int, default=64, help="camera side in pixels (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    if not args.bench:
        p.error("nothing to do: pass --bench")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    results = bench(args.data, args.episodes, args.batch_size, args.workers, args.size)
    for key, rate in results.items():
        print(f"{key:32s} {rate:9.1f} trajectory steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
