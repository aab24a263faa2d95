"""Windowed training samples: one time step of a stored episode with its history frames and future poses.

For agents whose :class:`agents.contract.SampleSpec` has ``kind="window"`` (NavDP, System 2, the System-1
baselines): item ``(episode, t)`` holds the main camera's frames at steps ``t - k * stride`` (``k =
history..0``,
clamped to the first step), the extra cameras and the image goal at ``t``, and the next ``horizon`` poses as
agent-frame ``(dx, dy, dyaw)`` targets (:func:`trainers.data.frames.future_targets`). Only those frames are
rendered (or read, when the store holds frames), so a window costs ``history + 1`` renders whatever the
episode's length.

:class:`WindowBatchSampler` shuffles the windows of all episodes per epoch (seeded), shards batches across
ranks and restarts mid-epoch, with the same methods as the trajectory sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from agents.contract import SampleSpec
from envs.datasets.store import TrajectoryStore
from envs.render import CameraSpec
from envs.tasks.pixel_goal import pixel_goal_mask
from envs.tasks.pointnav import polar_goal
from trainers.data.dataset import EpochBatchSampler, progress_target, stack_or_list
from trainers.data.frames import FRAME_MODES, SCENE_CACHE_SIZE, FrameSource, future_targets, pose_fields


def history_steps(t: int, history: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``t - k * stride`` for ``k = history..0`` clamped at 0, and a mask of the unclamped ones."""
    steps = t - stride * np.arange(history, -1, -1)
    return np.maximum(steps, 0), steps >= 0


class WindowDataset(Dataset):
    """Windows of the episodes of a trajectory store; see the module docstring.

    Args:
        store_dir: the trajectory store.
        scenes_dir: folder the episodes' ``scene_id`` paths are relative to.
        camera: the main camera (as the environment's).
        spec: the agent's sample (``kind="window"``).
        extra_cameras: other agent-mounted cameras, rendered at the current step only.
        goal_camera: renders ``imagegoal`` at the goal pose when given.
        frames: ``auto``, ``render`` or ``stored`` (main camera only; see :class:`FrameSource`).
        rounds: only these DAgger rounds (None: all).
        transform: the agent's per-item transform, run where items are read (the loader's workers).
        scene_cache_size: renderers kept per worker.

    Items: ``episode_id``, ``instruction_text``, ``step`` t, ``rgb`` (K+1,H,W,3) uint8 and ``depth``
    (K+1,H,W,1) float32 (oldest first, current last), ``history_mask`` (K+1,) bool, ``future`` (N,3) float32,
    ``future_mask`` (N,) bool, ``position`` (3,), ``yaw`` () and ``goal_position`` (3,) float32 world pose and
    goal, ``pointgoal`` (2,) float32 (distance, angle) in the frame of step t, ``action`` () int64 expert
    label, ``executed`` () int64, ``progress`` () float32, ``steps_left`` () int64 (steps from t to the
    episode's last step, where it reached its goal: the temporal-distance label of GNM, ViNT and NoMaD),
    ``labels`` (...) float32 when stored, and the extra
    cameras' ``<uuid>_rgb`` / ``<uuid>_depth`` and ``imagegoal`` when declared, and with
    ``spec.pixel_goal_mask`` ``pixelgoal`` (H,W) uint8 (the goal's box in the current frame, per its depth;
    see :func:`envs.tasks.pixel_goal.pixel_goal_mask`) and ``pixelgoal_visible`` () bool.
    """

    def __init__(
        self,
        store_dir: str | Path,
        scenes_dir: str | Path,
        camera: CameraSpec,
        spec: SampleSpec,
        extra_cameras: Sequence[CameraSpec] = (),
        goal_camera: CameraSpec | None = None,
        frames: str = "auto",
        rounds: Sequence[int] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        scene_cache_size: int = SCENE_CACHE_SIZE,
    ) -> None:
        if spec.kind != "window":
            raise ValueError(f"WindowDataset needs a SampleSpec with kind='window', got {spec.kind!r}")
        if frames not in FRAME_MODES:
            raise ValueError(f"WindowDataset: frames must be one of {FRAME_MODES}, got {frames!r}")
        self.spec, self.transform = spec, transform
        self.rounds = None if rounds is None else list(rounds)
        self.store = TrajectoryStore(store_dir, readonly=True)
        self.source = FrameSource(
            self.store, scenes_dir, camera, extra_cameras, goal_camera, frames, scene_cache_size
        )
        self.refresh()

    def refresh(self) -> int:
        """Index the windows of every committed episode (of the chosen rounds); returns the length."""
        self.store.refresh()
        episodes, steps = [], []
        for i in range(len(self.store)):
            meta = self.store.meta(i)
            if self.rounds is not None and int(meta["round"]) not in self.rounds:
                continue
            ts = np.arange(0, int(meta["n_steps"]), self.spec.sample_every)
            episodes.append(np.full(len(ts), i, np.int64))
            steps.append(ts)
        self.episodes = np.concatenate(episodes) if episodes else np.zeros(0, np.int64)
        self.steps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
        return len(self.episodes)

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index, t = int(self.episodes[i]), int(self.steps[i])
        ep = self.store.get(index, frames=False)
        spec = self.spec
        steps, history_mask = history_steps(t, spec.history, spec.stride)
        poses = pose_fields(ep)
        future, future_mask = future_targets(
            poses["positions"], poses["yaws"], t, spec.horizon, spec.future_stride
        )
        position, yaw = poses["positions"][t], poses["yaws"][t]
        item = {
            "episode_id": ep.episode_id,
            "instruction_text": ep.instruction_text,
            "step": t,
            **self.source.frames(index, ep, steps, [t]),
            "history_mask": history_mask,
            "future": future,
            "future_mask": future_mask,
            "position": position,
            "yaw": np.float32(yaw),
            "goal_position": poses["goal_position"],
            "pointgoal": polar_goal(position, float(yaw), poses["goal_position"]),
            "action": np.int64(ep.actions[t]),
            "executed": np.int64(ep.executed[t]),
            "progress": np.float32(progress_target(ep)[t]),
            "steps_left": np.int64(ep.n_steps - 1 - t),
        }
        for cam in self.source.extra_cameras:  # (1, ...) -> (...): extra cameras are taken at t only
            for m in cam.modalities:
                item[f"{cam.uuid}_{m}"] = item[f"{cam.uuid}_{m}"][0]
        if ep.labels is not None:
            item["labels"] = ep.labels[t]
        if spec.pixel_goal_mask:
            if "depth" not in item:
                raise ValueError("SampleSpec.pixel_goal_mask needs the depth modality on the main camera")
            mask, seen = pixel_goal_mask(
                self.source.camera, position, ep.rotations[t], poses["goal_position"], item["depth"][-1]
            )
            item["pixelgoal"], item["pixelgoal_visible"] = mask, np.bool_(seen)
        return self.transform(item) if self.transform is not None else item


def collate_windows(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack window items into (B, ...) tensors; strings and ragged values become lists of B."""
    return {key: stack_or_list([it[key] for it in items]) for key in items[0]}


class WindowBatchSampler(EpochBatchSampler):
    """Shuffled batches of windows, sharded across ranks and restartable mid-epoch.

    Per epoch a permutation seeded by ``(seed, epoch)`` is cut into batches of ``batch_size``; sharding,
    :meth:`set_epoch` and :meth:`set_start` as :class:`trainers.data.dataset.EpochBatchSampler`.

    Args:
        n_items: windows in the dataset.
        batch_size: windows per batch (per rank).
        shuffle: permute (else dataset order).
        drop_last: drop a last smaller batch.
        seed: base seed.
        rank, world_size: this process's share.
    """

    def __init__(
        self,
        n_items: int,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        super().__init__(batch_size, shuffle, drop_last, seed, rank, world_size)
        self.n_items = int(n_items)

    def all_batches(self, rng: np.random.Generator) -> list[list[int]]:
        """The epoch's permutation cut into batches."""
        order = rng.permutation(self.n_items) if self.shuffle else np.arange(self.n_items)
        size = self.batch_size
        return self.full_batches([order[i : i + size].tolist() for i in range(0, self.n_items, size)])


def sample_count(batch: dict[str, Any]) -> int:
    """Training samples in a batch: valid steps of padded trajectories, else windows."""
    if "mask" in batch:
        return int(batch["mask"].sum())
    return len(batch["episode_id"])
