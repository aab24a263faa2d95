"""System-1 (NavDP) data: cluttered arenas and houses, evaluation episode splits, and driven training
trajectories with per-step critic labels.

Usage::

    python -m envs.datasets.system1 --out data/navgym_s1 --preset cpu
    python -m envs.datasets.system1 --out DIR --n-train-easy 4 --n-train-hard 4 --n-train-houses 2 \\
        --trajectories-per-scene 10 --n-eval-scenes 10 --eval-episodes-per-scene 20

Layout of ``DIR``::

    scenes/<set>_<k:05d>.glb (+ sidecar)   train_easy_*, train_hard_*, train_house_* (training scenes) and
                                            cluttered_easy_*, cluttered_hard_*, houses_* (evaluation scenes)
    {cluttered_easy,cluttered_hard,houses}/{split}.json.gz
                                            evaluation episodes (R2R-CE format: start_position,
                                            start_rotation, goals; empty instruction)
    {split}/start_goal_pairs/<scene>.npy    NavDP's form of the same pairs, (N, 5) float64
                                            [start_x, start_y, goal_x, goal_y, start_yaw] in a z-up frame:
                                            x = x, y = -z of the y-up world, yaw = heading from +x (the
                                            world yaw + pi/2, wrapped)
    train/train.json.gz                     one episode per training trajectory (its start, goal and a
                                            subsampled path), so trainers find the training split
    trajectories/                           a trajectory store (``envs.datasets.store``): per trajectory the
                                            poses of every control tick (0.1 s at 0.5 m/s), actions -1,
                                            ``labels`` (T, 74) critic labels, extras ``goal_position``,
                                            ``geodesic_distance``, ``task`` = pointnav, ``scene_set``,
                                            ``smoothed`` (and ``near_obstacle`` with
                                            ``--near-obstacle-starts``). Frames are rendered on read.
    info.json                               arguments, counts, label layout, format version and digest
    .work/                                  manifest and per-scene results (what makes a run resumable)

Evaluation scenes are never used for training (they are drawn from other seed keys). Evaluate on them with
``python benchmarks/run.py agent=expert benchmark=system1_pointnav benchmark.split=cluttered_easy
data.dir=DIR``; train on the store with ``python trainers/run.py agent=<window agent> trainer=bc
trainer.n_episodes=0 data.dir=DIR data.init_store=DIR/trajectories data.task=pointnav eval.split=houses``
(``trainer.n_episodes=0``: train on the store's episodes, collect none).

**Recovery starts** (``--near-obstacle-starts F``): a share F of the training trajectories starts next to an
obstacle, facing it (:func:`envs.datasets.trajectories.sample_near_obstacle_pair`), so the data holds the
states a policy reaches when it drifts toward an obstacle and the expert's turn away from it; the others start
uniformly. Uniform starts alone give few such states: 1.8 % of the ``cpu`` preset's windows turn in place.

**Critic labels** (``Episode.labels``, float32, :data:`CRITIC_LABEL_SIZE` = 74 per step):
``[value_expert, value_augmented, augmented_path (24, 3) row-major]``; the expert path is the window target of
``SampleSpec(kind="window", history=7, stride=4, horizon=24, future_stride=2)``; definitions in
:mod:`envs.datasets.critic`. Split them with :func:`critic_fields`.

**Determinism and resumability** as :mod:`envs.datasets.generate`: per-scene seeds
(:mod:`envs.datasets.system1_work`), per-scene results written atomically, finished scenes skipped on a rerun
with the same arguments, the split files, the store and ``info.json`` written last, and a rerun with other
arguments refused. The store is filled in scene order, so its bytes (and the digest) do not depend on
``--workers``.

**Presets** (measured on this machine, one core): ``cpu``: 6 easy + 6 hard arenas + 4 houses × 10
trajectories, 10 + 10 + 10 evaluation scenes × 10 pairs; ``cluster``: 400 + 400 + 200 training scenes × 50
trajectories, 10 + 10 + 10 evaluation scenes × 100 pairs (NavDP's benchmark size).
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import multiprocessing
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from envs.datasets.critic import (  # noqa: F401  (exported: the System-1 sample constants)
    CRITIC_LABEL_SIZE,
    FUTURE_STRIDE,
    HISTORY,
    HISTORY_STRIDE,
    HORIZON,
    critic_fields,
)
from envs.datasets.digest import digest_record
from envs.datasets.generate import check_manifest
from envs.datasets.r2r import Goal, Instruction, R2RDataset, VLNEpisode, save_episodes
from envs.datasets.scene_work import json_bytes, remove_stale_temporaries
from envs.datasets.store import Episode, TrajectoryStore
from envs.datasets.system1_work import (
    EVAL_SPLITS,
    FORMAT_VERSION,
    System1Spec,
    build_scene,
    load_work,
    start_rotation,
    work_file,
)
from envs.fileio import atomic_write
from envs.nav.geometry import yaw_from_quaternion

logger = logging.getLogger(__name__)

#: The window of NavDP's samples (the expert path of the critic labels is its future).
__all__ = ["CRITIC_LABEL_SIZE", "FUTURE_STRIDE", "HISTORY", "HISTORY_STRIDE", "HORIZON", "critic_fields"]
__all__ += ["PRESETS", "generate_system1", "main"]

PRESETS = {
    "cpu": dict(n_train_easy=6, n_train_hard=6, n_train_houses=4, trajectories_per_scene=10,
                n_eval_scenes=10, eval_episodes_per_scene=10),
    "cluster": dict(n_train_easy=400, n_train_hard=400, n_train_houses=200, trajectories_per_scene=50,
                    n_eval_scenes=10, eval_episodes_per_scene=100),
}  # fmt: skip


def _build_task(task: tuple[Path, System1Spec, str, int]) -> None:
    build_scene(*task)


def _run(out: Path, spec: System1Spec, workers: int, progress: bool) -> None:
    todo = [(s, k) for s, k in spec.units() if not work_file(out, s, k).exists()]
    total = len(spec.units())
    with tqdm(
        total=total, initial=total - len(todo), desc="scenes", unit="scene", disable=not progress
    ) as bar:
        if workers <= 1 or len(todo) <= 1:
            for s, k in todo:
                build_scene(out, spec, s, k)
                bar.update()
            return
        # spawn: workers must not inherit a parent's GL or thread state.
        with multiprocessing.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            for _ in pool.imap_unordered(_build_task, [(out, spec, s, k) for s, k in todo]):
                bar.update()


def _episode(episode_id: str, scene: str, start, yaw: float, goal, path, geodesic: float) -> VLNEpisode:
    return VLNEpisode(
        episode_id, episode_id, f"{scene}.glb", np.asarray(start), start_rotation(yaw),
        [Goal(np.asarray(goal))], np.asarray(path).reshape(-1, 3), Instruction(""),
        info={"geodesic_distance": geodesic},
    )  # fmt: skip


def navdp_pairs(items: list[dict]) -> np.ndarray:
    """(N, 5) float64 ``[start_x, start_y, goal_x, goal_y, start_yaw]`` in NavDP's z-up frame (see the
    module docstring) of start/goal records."""
    rows = []
    for it in items:
        (sx, _, sz), (gx, _, gz) = it["start"], it["goal"]
        yaw = (it["yaw"] + math.pi / 2 + math.pi) % (2 * math.pi) - math.pi
        rows.append([sx, -sz, gx, -gz, yaw])
    return np.asarray(rows, np.float64).reshape(-1, 5)


def _eval_splits(out: Path, spec: System1Spec) -> dict:
    info = {}
    for split in EVAL_SPLITS:
        episodes, scenes = [], []
        for k in range(spec.n_eval_scenes):
            record, _ = load_work(out, split, k)
            scenes.append(f"{record['scene']}.glb")
            for it in record["items"]:
                where = (record["scene"], it["start"], it["yaw"], it["goal"], it["path"], it["geodesic"])
                episodes.append(_episode(str(len(episodes)), *where))
            buffer = io.BytesIO()
            np.save(buffer, navdp_pairs(record["items"]))
            atomic_write(out / split / "start_goal_pairs" / f"{record['scene']}.npy", buffer.getvalue())
        if spec.n_eval_scenes:
            save_episodes(R2RDataset(episodes), out, split)
            info[split] = {"episodes": len(episodes), "scenes": scenes}
    return info


def _trajectory_episodes(out: Path, spec: System1Spec):
    """(train split episode, store fields) of every trajectory, in scene order."""
    units = [(s, k) for s, k in spec.units() if s not in EVAL_SPLITS]
    n = 0
    for s, k in units:
        record, arrays = load_work(out, s, k)
        ends = np.cumsum(arrays["lengths"])
        for it, end, length in zip(record["items"], ends, arrays["lengths"], strict=True):
            sl = slice(int(end - length), int(end))
            pos, rot = arrays["positions"][sl], arrays["rotations"][sl]
            yaw = yaw_from_quaternion(rot[0])
            ep = _episode(str(n), record["scene"], pos[0], yaw, it["goal"], it["path"], it["geodesic"])
            extras = {"goal_position": it["goal"], "geodesic_distance": it["geodesic"], "task": "pointnav",
                      "scene_set": s, "smoothed": it["smoothed"], "slot": n}  # fmt: skip
            if "near_obstacle" in it:
                extras["near_obstacle"] = it["near_obstacle"]
            yield ep, {"positions": pos, "rotations": rot, "labels": arrays["labels"][sl], "extras": extras}
            n += 1


def _write_store(out: Path, spec: System1Spec) -> dict:
    """Fill ``out/trajectories`` in scene order (episodes already there are kept); write the train split."""
    store = TrajectoryStore(out / "trajectories")
    have = set(store.episode_ids())
    episodes, steps = [], 0
    for ep, fields in _trajectory_episodes(out, spec):
        episodes.append(ep)
        steps += len(fields["positions"])
        if ep.episode_id in have:
            continue
        t = len(fields["positions"])
        store.append(
            Episode(ep.episode_id, ep.scene_id, "", fields["positions"], fields["rotations"],
                    np.full(t, -1), np.full(t, -1), labels=fields["labels"], extras=fields["extras"])
        )  # fmt: skip
    save_episodes(R2RDataset(episodes), out, "train")
    return {"episodes": len(episodes), "steps": steps, "scenes": len({e.scene_id for e in episodes})}


def generate_system1(out: str | Path, spec: System1Spec, workers: int = 1, progress: bool = True) -> dict:
    """Generate (or resume) a System-1 dataset in ``out`` (layout and guarantees: the module docstring).

    Returns:
        The ``info.json`` record.

    Raises:
        ValueError: ``out`` holds a dataset of other arguments or unrelated files.
    """
    out = Path(out)
    check_manifest(out, spec)
    remove_stale_temporaries(out)
    _run(out, spec, workers, progress)
    info = {"spec": spec.to_dict(), "scenes_dir": "scenes", "splits": _eval_splits(out, spec)}
    info["trajectories"] = _write_store(out, spec)
    info["splits"]["train"] = {"episodes": info["trajectories"]["episodes"]}
    info["critic_labels"] = {"size": CRITIC_LABEL_SIZE, "layout": "[value_expert, value_augmented, (24, 3)]"}
    info.update(format_version=FORMAT_VERSION, **digest_record(out))
    atomic_write(out / "info.json", json_bytes(info, compress=False))
    logger.info("System-1 dataset written to %s: %s", out, info["trajectories"])
    return info


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m envs.datasets.system1",
        description="Generate System-1 (NavDP) scenes, evaluation splits and training trajectories. "
        "Rerun the same command to resume. Presets: " + "; ".join(f"{k} = {v}" for k, v in PRESETS.items()),
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or a run to resume)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="sizes to start from; explicit flags override")
    for name in PRESETS["cpu"]:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--min-geodesic", type=float, default=2.0, help="metres (default 2)")
    p.add_argument("--max-geodesic", type=float, default=15.0, help="metres (default 15)")
    p.add_argument("--arena-size", type=float, default=8.0, help="arena floor side, metres (default 8)")
    p.add_argument(
        "--near-obstacle-starts", type=float, default=0.0,
        help="share of training trajectories starting next to an obstacle, facing it (default 0)",
    )  # fmt: skip
    workers = max(1, min(4, os.cpu_count() or 1))
    p.add_argument("--workers", type=int, default=workers, help=f"processes (default {workers})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sizes = dict(PRESETS[args.preset]) if args.preset else {}
    sizes.update({k: getattr(args, k) for k in PRESETS["cpu"] if getattr(args, k) is not None})
    if missing := sorted(set(PRESETS["cpu"]) - set(sizes)):
        raise SystemExit(f"error: give --preset or every size flag (missing {missing})")
    try:
        spec = System1Spec(
            **sizes, seed=args.seed, min_geodesic=args.min_geodesic, max_geodesic=args.max_geodesic,
            arena_size=args.arena_size, near_obstacle_starts=args.near_obstacle_starts,
        )  # fmt: skip
        generate_system1(args.out, spec, workers=args.workers, progress=not args.no_progress)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
