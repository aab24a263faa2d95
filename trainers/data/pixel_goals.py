"""System-2 pixel-goal samples from the expert episodes of a trajectory store (InternVLA-N1, anchors §2.5).

For agents whose :class:`agents.contract.SampleSpec` has ``kind="pixel_goal"``. Every ``sample_every`` steps
``t`` of each expert episode (and its last step), one query:

- ``history``: the main camera's frames at ``unique(floor(linspace(0, t - 1, history)))`` (none at t = 0),
  ``current``: its frame at t, both colour-augmented (:mod:`trainers.data.augment`) when ``augment``;
- ``lookdown`` / ``lookdown_depth``: the agent's look-down camera at the pose of step t, never augmented;
- the target (:mod:`envs.tasks.pixel_goal`): **pixel** when an expert path point ``min_goal_frames`` to
  ``max_goal_frames`` steps ahead is visible in the look-down view (the last point of the first visible run;
  answer ``"{row} {col}"``), else **turn** when the expert turns first (the turns until its first other
  action, at most ``max_arrows``; answer ``"←←"``), **stop** at the last step (answer ``"STOP"``, repeated
  ``stop_repeat`` times in the index); other steps (the expert moves forward but the path is out of sight)
  are dropped.

Targets need the look-down depth, so the index is built when the dataset is made (one depth render per
query); items render their frames again on read (stored main-camera frames are read when present). Only
episodes the expert drove (executed actions equal to the labels) are used: a DAgger episode's future path is
not the expert's. Each item's augmentation is drawn from ``(seed, epoch, index)``:
:class:`PixelGoalBatchSampler` hands the epoch to the items with their indices, so items are the same in any
worker and after a restart.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from agents.contract import SampleSpec
from envs.datasets.store import Episode, TrajectoryStore
from envs.nav.geometry import agent_frame_deltas, yaws_from_quaternions
from envs.render import CameraSpec
from envs.tasks.pixel_goal import (
    STOP_TEXT,
    check_pixel,
    choose_pixel_goal,
    pixel_answer,
    turn_answer,
    turn_arrows,
)
from trainers.data.augment import colour_augment, sample_rng
from trainers.data.dataset import stack_or_list
from trainers.data.frames import FRAME_MODES, SCENE_CACHE_SIZE, FrameSource
from trainers.data.windows import WindowBatchSampler

logger = logging.getLogger(__name__)

#: Look-down pitch (degrees, negative looks down) when no look-down camera is given.
DEFAULT_LOOKDOWN_PITCH = -30.0
#: Item values whose shapes differ between items; collated as lists.
RAGGED_KEYS = ("history",)


def lookdown_camera(camera: CameraSpec, pitch: float = DEFAULT_LOOKDOWN_PITCH, **changes: Any) -> CameraSpec:
    """The main camera pitched by ``pitch`` degrees with RGB and depth, uuid ``lookdown``; ``changes``
    (``width``, ``height``, ``hfov``, ...) override its other fields."""
    return dataclasses.replace(camera, uuid="lookdown", pitch=pitch, modalities=("rgb", "depth"), **changes)


def history_steps(t: int, n: int) -> np.ndarray:
    """(K,) int64 history steps of query ``t``: ``unique(floor(linspace(0, t - 1, n)))``, K = min(t, n)."""
    if t <= 0 or n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, t - 1, n).astype(np.int64))


def step_target(
    spec: SampleSpec, camera: CameraSpec, ep: Episode, t: int, depth: np.ndarray
) -> tuple[str, str, tuple[int, int], int] | None:
    """The target of query ``t`` of ``ep``: ``(kind, answer, (row, col), goal_step)`` for ``pixel`` and
    ``turn`` queries (pixel and goal step -1 for a turn), None when the query is dropped. ``depth`` is the
    look-down camera's (H, W, 1) view at step t. The STOP query of the last step is not made here."""
    last = ep.n_steps - 1
    lo, hi = t + spec.min_goal_frames, min(t + spec.max_goal_frames, last)
    if lo <= hi:
        k, pixel = choose_pixel_goal(
            camera, ep.positions[t], ep.rotations[t], ep.positions[lo : hi + 1], depth
        )
        if k >= 0:
            where = f"episode {ep.episode_id!r} step {t}"
            row, col = check_pixel(pixel, camera.height, camera.width, where)
            return "pixel", pixel_answer(row, col), (row, col), lo + k
    arrows = turn_arrows(ep.actions[t:], spec.max_arrows)
    if arrows:
        return "turn", turn_answer(arrows), (-1, -1), -1
    return None


class PixelGoalDataset(Dataset):
    """System-2 queries of the expert episodes of a trajectory store; see the module docstring.

    Args:
        store_dir: the trajectory store.
        scenes_dir: folder the episodes' ``scene_id`` paths are relative to.
        camera: the main camera (as the environment's).
        spec: the agent's sample (``kind="pixel_goal"``).
        lookdown: the look-down camera (rendered with RGB and depth whatever its modalities); None: the main
            camera pitched 30° down (:func:`lookdown_camera`).
        frames: ``auto``, ``render`` or ``stored`` (main camera only; see :class:`FrameSource`).
        rounds: only these rounds (None: all).
        transform: the agent's per-item transform, run where items are read (the loader's workers).
        seed: base seed of the augmentation.
        scene_cache_size: renderers kept per process.

    Items (keys exact): ``episode_id`` (str), ``step`` (int t), ``instruction_text`` (str), ``history``
    (K, H, W, 3) uint8 with K in 0..``spec.history`` (oldest first), ``current`` (H, W, 3) uint8,
    ``lookdown`` (h, w, 3) uint8, ``lookdown_depth`` (h, w, 1) float32 metres, ``kind`` (``pixel`` | ``turn``
    | ``stop``), ``answer`` (str), ``pixel`` (2,) int64 (row, col) in the look-down image or (-1, -1); with
    ``spec.system1_points`` also ``system1_step`` (int s), ``system1_goal_rgb`` / ``system1_rgb`` (H, W, 3)
    uint8 and ``system1_goal_depth`` / ``system1_depth`` (H, W, 1) float32 metres of steps t and s, and
    ``system1_path`` (N, 3) float32 ``(dx, dy, dyaw)`` of poses s..end in the frame of pose s. An
    index is an int or an ``(epoch, int)`` pair (the epoch seeds the augmentation; an int uses
    :attr:`epoch`).

    Attributes:
        counts: samples per kind in the index (``stop`` counts the repeats), ``dropped`` queries and
            ``skipped_episodes`` (not driven by the expert).
    """

    def __init__(
        self,
        store_dir: str | Path,
        scenes_dir: str | Path,
        camera: CameraSpec,
        spec: SampleSpec,
        lookdown: CameraSpec | None = None,
        frames: str = "auto",
        rounds: Sequence[int] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        seed: int = 0,
        scene_cache_size: int = SCENE_CACHE_SIZE,
    ) -> None:
        if spec.kind != "pixel_goal":
            raise ValueError(f"PixelGoalDataset needs a SampleSpec with kind='pixel_goal', got {spec.kind!r}")
        if frames not in FRAME_MODES:
            raise ValueError(f"PixelGoalDataset: frames must be one of {FRAME_MODES}, got {frames!r}")
        self.spec, self.transform, self.seed, self.epoch = spec, transform, int(seed), 0
        self.rounds = None if rounds is None else list(rounds)
        base = lookdown if lookdown is not None else lookdown_camera(camera)
        self.lookdown = dataclasses.replace(base, modalities=("rgb", "depth"))
        self.store = TrajectoryStore(store_dir, readonly=True)
        main = dataclasses.replace(camera, modalities=("rgb",))  # the queries show RGB only
        self.source = FrameSource(self.store, scenes_dir, main, (), None, frames, scene_cache_size)
        self.refresh()

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation plain int indices draw."""
        self.epoch = int(epoch)

    def refresh(self) -> int:
        """Index the queries of every committed expert episode (of the chosen rounds); returns the length."""
        self.store.refresh()
        rows: list[tuple[int, int, str, str, tuple[int, int], int]] = []
        counts = collections.Counter({"pixel": 0, "turn": 0, "stop": 0, "dropped": 0, "skipped_episodes": 0})
        for i in range(len(self.store)):
            if self.rounds is not None and int(self.store.meta(i)["round"]) not in self.rounds:
                continue
            ep = self.store.get(i, frames=False)
            if (ep.actions < 0).any():
                raise ValueError(
                    f"{self.store.root}: episode {ep.episode_id!r} holds waypoint labels; pixel-goal samples "
                    "need discrete expert actions (collect with action_mode=discrete)"
                )
            if not np.array_equal(ep.actions, ep.executed):
                counts["skipped_episodes"] += 1
                continue
            found, dropped = self._episode_rows(i, ep)
            rows += found
            counts.update(r[2] for r in found)
            counts["dropped"] += dropped
        self.episodes = np.array([r[0] for r in rows], np.int64)
        self.steps = np.array([r[1] for r in rows], np.int64)
        self.kinds = [r[2] for r in rows]
        self.answers = [r[3] for r in rows]
        self.pixels = np.array([r[4] for r in rows], np.int64).reshape(-1, 2)
        self.goal_steps = np.array([r[5] for r in rows], np.int64)
        self.system1_steps = self.steps.copy()
        if self.spec.system1_points:
            self._expand_system1()
        self.counts = dict(counts)
        logger.info(
            "pixel-goal samples of %s: %d pixel, %d turn, %d stop (x%d), %d queries dropped, "
            "%d non-expert episodes skipped",
            self.store.root, counts["pixel"], counts["turn"], counts["stop"], self.spec.stop_repeat,
            counts["dropped"], counts["skipped_episodes"],
        )  # fmt: skip
        return len(self.episodes)

    def _expand_system1(self) -> None:
        """Keep the pixel-goal queries only, each repeated for its System-1 frames: every 2nd step from the
        query step to its goal step, at most ``spec.system1_points`` of them (InternVLA-N1's dual systems)."""
        keep = [i for i, kind in enumerate(self.kinds) if kind == "pixel"]
        rows, s1 = [], []
        for i in keep:
            steps = list(range(int(self.steps[i]), int(self.goal_steps[i]) + 1, 2))[
                : self.spec.system1_points
            ]
            rows += [i] * len(steps)
            s1 += steps
        idx = np.array(rows, np.int64)
        self.episodes, self.steps = self.episodes[idx], self.steps[idx]
        self.kinds, self.answers = [self.kinds[i] for i in rows], [self.answers[i] for i in rows]
        self.pixels, self.goal_steps = self.pixels[idx].reshape(-1, 2), self.goal_steps[idx]
        self.system1_steps = np.array(s1, np.int64)

    def _system1_values(self, ep: Episode, t: int, s: int) -> dict[str, Any]:
        """The System-1 values of an item: RGB-D of the query frame ``t`` and of frame ``s`` (never
        augmented), and the poses from ``s`` to the episode's end in the frame of pose ``s``."""
        camera = dataclasses.replace(self.source.camera, modalities=("rgb", "depth"))
        views = self.source.render(ep.scene_id, camera, ep.positions[[t, s]], ep.rotations[[t, s]])
        yaws = yaws_from_quaternions(ep.rotations[s:])
        path = agent_frame_deltas(ep.positions[s:], yaws, ep.positions[s], float(yaws[0]))
        return {
            "system1_step": s,
            "system1_goal_rgb": views["rgb"][0],
            "system1_goal_depth": views["depth"][0],
            "system1_rgb": views["rgb"][1],
            "system1_depth": views["depth"][1],
            "system1_path": path,
        }

    def _episode_rows(self, index: int, ep: Episode) -> tuple[list[tuple], int]:
        """The index rows of one episode (its pixel and turn queries, then its STOP query repeated) and the
        number of its queries dropped."""
        spec, last = self.spec, ep.n_steps - 1
        steps = list(range(0, last, spec.sample_every))
        rows = []
        if steps:
            depth_only = dataclasses.replace(self.lookdown, modalities=("depth",))
            depths = self.source.render(ep.scene_id, depth_only, ep.positions[steps], ep.rotations[steps])
            for t, depth in zip(steps, depths["depth"], strict=True):
                target = step_target(spec, self.lookdown, ep, t, depth)
                if target is not None:
                    rows.append((index, t, *target))
        dropped = len(steps) - len(rows)
        return rows + [(index, last, "stop", STOP_TEXT, (-1, -1), -1)] * spec.stop_repeat, dropped

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.epoch, int(key))
        index, t = int(self.episodes[i]), int(self.steps[i])
        ep = self.store.get(index, frames=False)
        steps = [*history_steps(t, self.spec.history).tolist(), t]
        rgb = self.source.main_frames(index, ep, steps)["rgb"]
        if self.spec.augment:
            rgb = colour_augment(rgb, sample_rng(self.seed, epoch, i))
        down = self.source.render(ep.scene_id, self.lookdown, ep.positions[[t]], ep.rotations[[t]])
        item = {
            "episode_id": ep.episode_id,
            "step": t,
            "instruction_text": ep.instruction_text,
            "history": rgb[:-1],
            "current": rgb[-1],
            "lookdown": down["rgb"][0],
            "lookdown_depth": down["depth"][0],
            "kind": self.kinds[i],
            "answer": self.answers[i],
            "pixel": self.pixels[i].copy(),
        }
        if self.spec.system1_points:
            item.update(self._system1_values(ep, t, int(self.system1_steps[i])))
        return self.transform(item) if self.transform is not None else item


def collate_pixel_goals(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: ``history`` (and any other :data:`RAGGED_KEYS`) as a list of B arrays always; the other
    values stacked into (B, ...) tensors when they can be, else lists of B (strings, ragged arrays)."""
    return {
        key: [it[key] for it in items] if key in RAGGED_KEYS else stack_or_list([it[key] for it in items])
        for key in items[0]
    }


class PixelGoalBatchSampler(WindowBatchSampler):
    """:class:`trainers.data.windows.WindowBatchSampler` whose batches hold ``(epoch, index)`` pairs, so that
    :class:`PixelGoalDataset` items draw their augmentation from the epoch; seeding, sharding and restarts
    as the window sampler."""

    with_epoch = True


def main(argv: list[str] | None = None) -> int:
    """Count the pixel-goal samples of a store (``python -m trainers.data.pixel_goals --help``)."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m trainers.data.pixel_goals", description=main.__doc__)
    p.add_argument("--store", required=True, type=Path, help="trajectory store of expert episodes")
    p.add_argument("--scenes", required=True, type=Path, help="scene folder (DATASET/scenes)")
    p.add_argument("--size", type=int, default=128, help="look-down image side in pixels (default 128)")
    p.add_argument(
        "--pitch", type=float, default=DEFAULT_LOOKDOWN_PITCH, help="look-down pitch (default -30)"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    camera = CameraSpec(width=args.size, height=args.size)
    spec = SampleSpec(kind="pixel_goal")
    data = PixelGoalDataset(args.store, args.scenes, camera, spec, lookdown_camera(camera, args.pitch))
    print(json.dumps({"samples": len(data), **data.counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
