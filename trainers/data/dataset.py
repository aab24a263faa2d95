"""Whole-trajectory training data from a trajectory store: render on read, padding, length-bucketed batches.

This is the data of agents whose ``sample`` is ``SampleSpec(kind="trajectory")`` (Seq2Seq, CMA, RDP); windows
around one step with a history and future poses are :mod:`trainers.data.windows`; both render through
:class:`trainers.data.frames.FrameSource` and carry the episode's poses (``positions`` (T,3) metres, ``yaws``
(T,) radians, world frame) and ``goal_position`` (3,) so that agents build pose targets from them.

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

Throughput (render on read vs stored frames, training samples/s): ``python -m trainers.data.bench``.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from envs.datasets.store import Episode, TrajectoryStore
from envs.render import CameraSpec
from trainers.data.augment import colour_augment, sample_rng
from trainers.data.frames import FRAME_MODES, SCENE_CACHE_SIZE, FrameSource, pose_fields

logger = logging.getLogger(__name__)


class TrajectoryDataset(Dataset):
    """Episodes of a trajectory store, ordered by ``(round, slot)``, with frames
    (``SampleSpec(kind="trajectory")``).

    Args:
        store_dir: the trajectory store.
        scenes_dir: folder that the episodes' ``scene_id`` paths are relative to (for rendering).
        camera: the camera to render with (same width, height and HFOV as the environment's).
        frames: ``"auto"`` (stored frames when an episode has them, else render), ``"render"`` or
            ``"stored"``.
        rounds: only these DAgger rounds (None: all).
        scene_cache_size: renderers kept per worker.
        extra_cameras: other agent-mounted cameras, rendered at every step (``<uuid>_rgb`` /
        ``<uuid>_depth``).
        goal_camera: renders ``imagegoal`` at the goal pose when given.
        transform: the agent's per-item transform (:meth:`agents.base.Agent.item_transform`), run where the
            item is read (the loader's workers).
        augment: colour-augment the main camera's RGB (:mod:`trainers.data.augment`), one draw per episode
            so that the whole trajectory is seen under one lighting; the draw is seeded by ``(seed, epoch,
            item)``, the epoch coming with the index (``(epoch, i)`` from a sampler made ``with_epoch``).
        seed: base seed of the augmentation.

    Items are dicts: ``episode_id``, ``instruction_text``, ``round``, ``rgb`` (T,H,W,3) uint8, ``depth``
    (T,H,W,1) float32 metres, ``actions`` (T,) int64 expert labels, ``executed`` (T,) int64 executed actions,
    ``progress`` (T,) float32 in [-1, 1]: ``(d0 - d_t) / d0`` with ``d`` the stored geodesic distance to the
    goal (VLN-CE's oracle progress), or the Euclidean analogue toward the last pose without stored distances;
    ``positions`` (T,3) and ``yaws`` (T,) float32 poses, ``goal_position`` (3,) float32, ``labels`` (T,...)
    float32 when the episode has continuous labels, and the extra cameras' frames. An index is an int or an
    ``(epoch, int)`` pair (an int draws epoch 0's augmentation).
    """

    def __init__(
        self,
        store_dir: str | Path,
        scenes_dir: str | Path,
        camera: CameraSpec,
        frames: str = "auto",
        rounds: Sequence[int] | None = None,
        scene_cache_size: int = SCENE_CACHE_SIZE,
        extra_cameras: Sequence[CameraSpec] = (),
        goal_camera: CameraSpec | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        if frames not in FRAME_MODES:
            raise ValueError(
                f"TrajectoryDataset: frames must be 'auto', 'render' or 'stored', got {frames!r}"
            )
        self.augment, self.seed = bool(augment), int(seed)
        self.store_dir, self.scenes_dir = Path(store_dir), Path(scenes_dir)
        self.camera, self.frames, self.rounds = camera, frames, None if rounds is None else list(rounds)
        self.store = TrajectoryStore(self.store_dir, readonly=True)
        self.source = FrameSource(
            self.store, scenes_dir, camera, extra_cameras, goal_camera, frames, scene_cache_size
        )
        self.transform = transform
        self._keys: dict[int, tuple[int, int]] = {}
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

    def episode(self, i: int) -> Episode:
        """The stored episode of item ``i`` (frames included when they will be used)."""
        index = self.indices[i]
        return self.store.get(index, frames=self.source.uses_stored(index))

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = index if isinstance(index, tuple) else (0, index)
        ep = self.episode(i)
        steps = range(ep.n_steps)
        frames = self.source.frames(self.indices[i], ep, steps, steps)
        if self.augment and "rgb" in frames:
            rng = sample_rng(self.seed, epoch, i)
            frames["rgb"] = colour_augment(frames["rgb"], rng, per_frame=False)
        item = {
            "episode_id": ep.episode_id,
            "instruction_text": ep.instruction_text,
            "round": ep.round,
            **frames,
            "actions": ep.actions,
            "executed": ep.executed,
            "progress": progress_target(ep),
            **pose_fields(ep),
        }
        if ep.labels is not None:
            item["labels"] = ep.labels
        return self.transform(item) if self.transform is not None else item

    def render(self, ep: Episode) -> dict[str, np.ndarray]:
        """``rgb`` (T,H,W,3) uint8 and ``depth`` (T,H,W,1) float32 rendered at the episode's stored poses."""
        return self.source.render(ep.scene_id, self.camera, ep.positions, ep.rotations)


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


#: Item keys holding one entry per step (padded along T by :func:`collate_trajectories`), besides the extra
#: cameras' ``<uuid>_rgb`` / ``<uuid>_depth``.
STEP_KEYS = ("rgb", "depth", "positions", "yaws", "labels")
_LABEL_KEYS = ("actions", "executed", "progress")
_TEXT_KEYS = ("instruction_text", "episode_id")


def is_step_key(key: str) -> bool:
    """Whether a trajectory item's ``key`` has one entry per step."""
    return key in STEP_KEYS or key.endswith(("_rgb", "_depth"))


def collate_trajectories(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad whole trajectories into the batch of ``Agent.loss``.

    Returns:
        ``rgb`` (B,T,H,W,3) uint8, ``depth`` (B,T,H,W,1) float32, ``actions`` (B,T) int64 expert labels (0
        when padded), ``prev_actions`` (B,T) int64 executed action of the previous step (−1 at t=0 and when
        padded), ``mask`` (B,T) bool, ``progress`` (B,T) float32, ``lengths`` (B,) int64, ``instruction_text``
        and ``episode_id`` lists of B strings; every other per-step array of the items (``positions``
        (B,T,3), ``yaws`` (B,T), ``labels``, extra cameras) zero-padded to (B,T,...), and per-episode arrays
        (``goal_position`` (B,3), ``imagegoal``) stacked. T is the longest trajectory.
    """
    lengths = [len(it["actions"]) for it in items]
    b, t = len(items), max(lengths)
    out = {
        "actions": torch.zeros((b, t), dtype=torch.int64),
        "prev_actions": torch.full((b, t), -1, dtype=torch.int64),
        "mask": torch.zeros((b, t), dtype=torch.bool),
        "progress": torch.zeros((b, t), dtype=torch.float32),
    }
    for k, (it, n) in enumerate(zip(items, lengths, strict=True)):
        out["actions"][k, :n] = torch.from_numpy(np.asarray(it["actions"], np.int64))
        out["prev_actions"][k, 1:n] = torch.from_numpy(np.asarray(it["executed"], np.int64)[: n - 1])
        out["mask"][k, :n] = True
        out["progress"][k, :n] = torch.from_numpy(np.asarray(it["progress"], np.float32))
    for key in items[0]:
        if key in _LABEL_KEYS or key in _TEXT_KEYS or key == "round":
            continue
        values = [np.ascontiguousarray(it[key]) for it in items]
        if is_step_key(key):
            padded = np.zeros((b, t, *values[0].shape[1:]), dtype=values[0].dtype)
            for k, (v, n) in enumerate(zip(values, lengths, strict=True)):
                padded[k, :n] = v
            out[key] = torch.from_numpy(padded)
        else:
            out[key] = stack_or_list(values)
    out["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    out["instruction_text"] = [it["instruction_text"] for it in items]
    out["episode_id"] = [it["episode_id"] for it in items]
    return out


def stack_or_list(values: Sequence[Any]) -> Any:
    """A (B, ...) tensor of same-shaped numeric arrays, else the list of values (strings, ragged arrays)."""
    arrays = [np.asarray(v) for v in values]
    numeric = all(a.dtype.kind in "biuf" for a in arrays)
    if numeric and all(a.shape == arrays[0].shape for a in arrays):
        return torch.from_numpy(np.stack(arrays))
    return list(values)


class EpochBatchSampler(Sampler[list[int]], abc.ABC):
    """Batches of one epoch seeded by ``(seed, epoch)``, sharded across ranks and restartable mid-epoch.

    A subclass says how an epoch's items become batches (:meth:`all_batches`); rank ``r`` of
    ``world_size`` takes batches ``r::world_size``, cut to the same count on every rank. :meth:`set_epoch`
    picks the epoch and :meth:`set_start` skips the first batches of the rank's share (resuming a checkpoint
    taken mid-epoch). With ``with_epoch`` (class attribute or argument) batches hold ``(epoch, index)`` pairs,
    so that items seeded by their epoch (colour augmentation) are the same in any worker and after a restart.

    Args:
        batch_size: items per batch (per rank).
        shuffle: permute items and batches (else dataset order).
        drop_last: drop a last smaller batch.
        seed: base seed.
        rank, world_size: this process's share.
        with_epoch: yield ``(epoch, index)`` pairs (None: the class's default).
    """

    with_epoch = False

    def __init__(
        self,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        rank: int,
        world_size: int,
        with_epoch: bool | None = None,
    ) -> None:
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch, self.start = 0, 0
        if with_epoch is not None:
            self.with_epoch = bool(with_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order (and start from its first batch)."""
        self.epoch, self.start = int(epoch), 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` batches of this rank's share of the epoch."""
        self.start = int(start)

    @abc.abstractmethod
    def all_batches(self, rng: np.random.Generator) -> list[list[int]]:
        """Every rank's batches of the epoch, in order, drawing from the epoch's ``rng``."""

    def full_batches(self, batches: list[list[int]]) -> list[list[int]]:
        """``batches`` without a smaller one when ``drop_last``."""
        return [b for b in batches if len(b) == self.batch_size] if self.drop_last else batches

    def epoch_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch, from the first one."""
        batches = self.all_batches(np.random.default_rng([self.seed, self.epoch]))
        per_rank = len(batches) // self.world_size
        return batches[self.rank :: self.world_size][:per_rank]

    def __iter__(self) -> Iterator[list[Any]]:
        for batch in self.epoch_batches()[self.start :]:
            yield [(self.epoch, i) for i in batch] if self.with_epoch else batch

    def __len__(self) -> int:
        return max(0, len(self.epoch_batches()) - self.start)


class LengthBucketBatchSampler(EpochBatchSampler):
    """VLN-CE's batching of whole trajectories, sharded across ranks and restartable mid-epoch.

    Per epoch: a permutation seeded by ``(seed, epoch)`` is cut into blocks of ``batch_size * block_batches``
    items, each block sorted by length (so padding stays small) and cut into batches, and the batches of
    all blocks are shuffled. Sharding and restarts: :class:`EpochBatchSampler`.

    Args:
        lengths: (N,) trajectory lengths.
        batch_size: trajectories per batch (per rank).
        block_batches: batches per sorted block (VLN-CE preloads 100 batches).
        shuffle: permute items and batches (else file order).
        drop_last: drop a last smaller batch (VLN-CE: yes).
        seed: base seed.
        rank, world_size: this process's share.
        with_epoch: yield ``(epoch, index)`` pairs (for a dataset that augments).
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
        with_epoch: bool = False,
    ) -> None:
        if batch_size < 1 or block_batches < 1:
            raise ValueError(f"batch_size and block_batches must be >= 1, got {batch_size}, {block_batches}")
        super().__init__(batch_size, shuffle, drop_last, seed, rank, world_size, with_epoch)
        self.lengths = np.asarray(lengths, np.int64)
        self.block_batches = int(block_batches)

    def all_batches(self, rng: np.random.Generator) -> list[list[int]]:
        """Length-sorted blocks cut into batches, the batches shuffled."""
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        block = self.batch_size * self.block_batches
        batches = []
        for lo in range(0, n, block):
            chunk = order[lo : lo + block]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)
            ]
        batches = self.full_batches(batches)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches


def make_loader(
    dataset: Dataset,
    sampler: Sampler[list[int]],
    num_workers: int = 0,
    collate: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] = collate_trajectories,
) -> DataLoader:
    """A DataLoader of collated batches; workers (if any) are spawned and persist across epochs.

    The loader draws its base seed from a generator of its own: opening an iterator (every epoch, and
    mid-epoch after a resume) leaves the global RNG alone, so a loss that draws from it (a diffusion head's
    noise and timesteps) draws after a resume exactly what the uninterrupted run drew.
    """
    extra: dict[str, Any] = {"generator": torch.Generator().manual_seed(0)}
    if num_workers > 0:
        extra.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=2)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers, **extra)
