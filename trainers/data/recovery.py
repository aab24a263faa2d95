"""On-policy recovery data for System-1 window agents: the states a trained policy drives into, and the
expert's paths out of them (a DAgger round, Ross et al. 2011, for agents that learn from driven trajectories).

A System-1 dataset's trajectories are the expert's own (:mod:`envs.datasets.system1`): they keep 0.2 m of
clearance, so the states a policy reaches once it drifts against an obstacle (pressed against a box, sliding
along a wall) are states its data never held. DAgger's answer is to visit them with the policy and label them
with the expert. Window agents (NavDP) learn the future poses of a trajectory, so the label of a visited state
is a whole expert trajectory from it:

1. **Roll out** the checkpoint on episodes of the dataset's ``train`` split in the System-1 point-goal
   benchmark's environment (the evaluation protocol: its camera, stuck and arrival rules, synchronous
   planning), through :func:`envs.rollout.rollout`, recording the poses after every step and whether the step
   slid along an obstacle (``info["collided"]``). Each finished episode is appended to ``rollouts.jsonl`` in
   the work folder (``OUT.work/``), so a killed run resumes at the next episode.
2. **Pick recovery states** (:func:`recovery_starts`): the pose after each colliding step that starts a run
   of collisions, at least ``min_gap`` steps after the previous pick, at most ``max_starts`` per episode
   (evenly spread over the candidates), plus the last pose of an episode that ended stuck; poses within the
   arrival radius of the goal are left out.
3. **Drive the expert** from each state to the episode's goal exactly as the dataset generator does (plan,
   smooth, drive the waypoint controller from the state's heading:
   :func:`envs.datasets.trajectories.plan_and_drive`; critic labels from the scene's distance field:
   :func:`envs.datasets.critic.critic_labels`).
4. **Aggregate**: ``OUT`` is a trajectory store holding the base store's episodes and the recovery
   trajectories as the next round (1 after the dataset's store, whose episodes are round 0; 2 after a store
   this module made, and so on; extras as the dataset's plus ``recovery_of`` and ``recovery_step``), written
   beside ``OUT`` and renamed into place when complete, with ``recovery.json`` (arguments, counts, the
   rollouts' metrics) and ``rollouts.jsonl``. Train on it with ``data.init_store=OUT``.

Command line::

    python -m trainers.data.recovery --data data/navgym_s1 --checkpoint runs/navdp_s1/checkpoints/last \\
        --out runs/navdp_s1/recovery1 --episodes 240
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agents import load_agent
from benchmarks.base import BENCHMARKS, TerminationHook
from benchmarks.config import checkpoint_of, find_agent_dir, training_camera
from envs.datasets.critic import critic_labels, obstacle_distance_field
from envs.datasets.r2r import load_episodes
from envs.datasets.store import Episode, TrajectoryStore
from envs.datasets.system1_work import System1Spec, navigation_simulator
from envs.datasets.trajectories import plan_and_drive
from envs.fileio import atomic_write
from envs.nav.geometry import yaw_from_quaternion, yaws_from_quaternions
from envs.rollout import RolloutHook, rollout

logger = logging.getLogger(__name__)

#: Metres from the goal within which a state is not worth a recovery trajectory (the benchmark's arrival).
NEAR_GOAL = 1.0


def recovery_starts(collided, stuck: bool, max_starts: int, min_gap: int, lead: int = 0) -> list[int]:
    """Pose indices (into the episode's T+1 poses, 0 = the reset) to drive the expert from.

    Args:
        collided: (T,) bools, step ``t`` (from pose ``t`` to pose ``t + 1``) slid along an obstacle.
        stuck: the episode ended stuck; its last pose ``T`` is a candidate too.
        max_starts: the most poses returned; more candidates are thinned evenly (first and last kept).
        min_gap: the fewest steps between two candidates (a run of collisions gives one).
        lead: each candidate moved this many steps earlier (not before pose 0): 0 is the pose pressed
            against the obstacle, 1 the pose the colliding step was chosen from, more the approach to it.

    Returns:
        Sorted pose indices (distinct).
    """
    collided = np.asarray(collided, bool)
    candidates: list[int] = []
    for t in np.flatnonzero(collided):
        if (t == 0 or not collided[t - 1]) and (not candidates or t + 1 - candidates[-1] >= min_gap):
            candidates.append(int(t) + 1)
    end = len(collided)
    if stuck and end > 0 and (not candidates or end - candidates[-1] >= min_gap):
        candidates.append(end)
    if len(candidates) > max_starts:
        keep = np.unique(np.round(np.linspace(0, len(candidates) - 1, max_starts)).astype(int))
        candidates = [candidates[k] for k in keep]
    return sorted({max(c - lead, 0) for c in candidates})


class CollisionLog(RolloutHook):
    """Records, per episode, whether each step slid along an obstacle (``info["collided"]``)."""

    def __init__(self) -> None:
        self.collided: dict[str, list[bool]] = defaultdict(list)

    def on_step(self, env, obs, action, reward, terminated, truncated, info) -> None:
        """Append this step's flag."""
        self.collided[info["episode_id"]].append(bool(info["collided"]))


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSONL file (a line cut off by a kill is dropped)."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines() if line]


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "ab") as f:
        f.write(json.dumps(record).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def roll_out(
    agent_dir: Path, data: Path, episode_ids: list[str], log: Path, seed: int, progress: bool
) -> None:
    """Run the agent of ``agent_dir`` (:func:`benchmarks.config.find_agent_dir`) on ``episode_ids`` of
    ``data``'s train split (System-1 point-goal protocol), appending one record per episode to ``log``;
    episodes already there are skipped."""
    done = {r["episode_id"] for r in _read_lines(log)}
    if log.is_file():  # drop a line cut off by a kill before appending after it
        with open(log, "rb+") as f:
            f.truncate(f.read().rfind(b"\n") + 1)
    todo = [e for e in episode_ids if e not in done]
    if not todo:
        return
    agent = load_agent(agent_dir)
    bench = BENCHMARKS.get("system1_pointnav").build(data, split="train", episode_ids=todo, seed=seed)
    try:
        env = bench.env_for(agent, training_camera(*checkpoint_of(agent_dir)))
        for episode_id in tqdm(todo, desc="recovery rollouts", unit="episode", disable=not progress):
            torch.manual_seed(seed)
            ends, collisions = TerminationHook(), CollisionLog()
            (result,) = rollout(env, agent, episode_ids=[episode_id], seed=seed, hooks=[ends, collisions])
            _append_line(log, {
                "episode_id": episode_id, "scene_id": result.scene_id,
                "termination": ends.reasons.get(episode_id, "timeout"), "metrics": result.metrics,
                "positions": np.round(result.positions, 4).tolist(),
                "yaws": [round(float(yaw_from_quaternion(q)), 5) for q in result.rotations],
                "collided": collisions.collided[episode_id],
            })  # fmt: skip
    finally:
        bench.close()


def _drive_from(sim, field, record: dict, t: int, goal: np.ndarray, rng: np.random.Generator):
    """(drive, labels) of the expert from pose ``t`` of a rollout record to ``goal``; None when the state is
    near the goal or the expert cannot reach it from there."""
    start = np.asarray(record["positions"][t], np.float64)
    if math.hypot(start[0] - goal[0], start[2] - goal[2]) < NEAR_GOAL:
        return None
    drive = plan_and_drive(sim, start, goal, rng, start_yaw=float(record["yaws"][t]))
    if drive is None or not drive.reached:
        return None
    yaws = yaws_from_quaternions(drive.rotations)
    return drive, critic_labels(sim.grid, field, drive.positions, yaws, int(rng.integers(2**31)))


def _episode(
    scene_id: str, record: dict, t: int, goal: np.ndarray, found, geodesic: float, slot: int, round: int
):
    """The store episode of the expert drive ``found`` = (drive, labels) from pose ``t``."""
    drive, labels = found
    n = len(drive.positions)
    extras = {
        "goal_position": goal.tolist(), "geodesic_distance": geodesic, "task": "pointnav",
        "scene_set": Path(scene_id).stem.rsplit("_", 1)[0], "smoothed": drive.smoothed, "slot": slot,
        "recovery_of": record["episode_id"], "recovery_step": t,
    }  # fmt: skip
    return Episode(
        f"{record['episode_id']}-{t}", scene_id, "", drive.positions, drive.rotations, np.full(n, -1),
        np.full(n, -1), round=round, labels=labels, extras=extras,
    )  # fmt: skip


def dataset_info(data: Path) -> tuple[System1Spec, str | None]:
    """The :class:`System1Spec` and the digest recorded in ``data/info.json``.

    Raises:
        FileNotFoundError: no ``info.json`` (not a finished System-1 dataset).
        ValueError: its ``spec`` is not a System-1 dataset's; the message names the file and the fields.
    """
    path = data / "info.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: --data must be a System-1 dataset (envs.datasets.system1)"
        )
    info = json.loads(path.read_text())
    spec = info.get("spec")
    try:
        fields = System1Spec(**{k: v for k, v in (spec or {}).items() if k != "format_version"})
    except TypeError as err:
        raise ValueError(f"{path}: 'spec' is not a System-1 dataset's ({err}); got {spec!r}") from None
    return fields, info.get("digest")


def recovery_episodes(
    data: Path, spec: System1Spec, goals: dict[str, np.ndarray], records: list[dict], args, round: int
):
    """Yield the store episodes (of DAgger round ``round``) of every rollout record, scene by scene with one
    simulator each; ``goals`` maps the train split's episode ids to their goals."""
    by_scene: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_scene[record["scene_id"]].append(record)
    slot = 0
    for scene_id in sorted(by_scene):
        sim = navigation_simulator(data / "scenes" / scene_id, spec)
        try:
            field = obstacle_distance_field(sim.grid, sim.config.body.radius)
            for record in by_scene[scene_id]:
                goal = goals[record["episode_id"]]
                rng = np.random.default_rng([args.seed, int(record["episode_id"])])
                stuck = record["termination"] == "stuck"
                starts = recovery_starts(record["collided"], stuck, args.max_starts, args.min_gap, args.lead)
                for t in starts:
                    found = _drive_from(sim, field, record, t, goal, rng)
                    if found is not None:
                        geodesic = float(sim.geodesic_distance(found[0].positions[0], goal))
                        yield _episode(scene_id, record, t, goal, found, geodesic, slot, round)
                        slot += 1
        finally:
            sim.close()


def choose_episodes(ids: list[str], n: int | None, seed: int) -> list[str]:
    """``n`` of the episode ``ids`` drawn without replacement by ``seed`` (all when None), sorted."""
    if n is None or n >= len(ids):
        return sorted(ids, key=int)
    return sorted(np.random.default_rng(seed).choice(ids, size=n, replace=False).tolist(), key=int)


def arguments_record(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments that determine the result (``args.json`` of the work folder; paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "progress"}


def make_recovery_store(args: argparse.Namespace) -> dict[str, Any]:
    """Roll out, pick, drive and aggregate (module docstring); returns the ``recovery.json`` record.

    Raises:
        FileExistsError: ``args.out`` exists.
        FileNotFoundError: no dataset, split or checkpoint where the arguments say (nothing is written).
        ValueError: the work folder holds a run of other arguments, or ``--data`` is not a System-1 dataset.
    """
    out = Path(args.out)
    if out.exists():
        raise FileExistsError(f"{out} exists; give another --out or delete it")
    spec, digest = dataset_info(args.data)  # bad inputs fail before anything is written
    split = load_episodes(args.data / "train", args.data / "scenes").episodes
    goals = {e.episode_id: np.asarray(e.goals[0].position, np.float64) for e in split}
    episode_ids = choose_episodes(list(goals), args.episodes, args.seed)
    agent_dir = find_agent_dir(Path(args.checkpoint))
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    record = arguments_record(args)
    saved = work / "args.json"
    if saved.is_file() and json.loads(saved.read_text()) != record:
        raise ValueError(f"{work} holds a run with other arguments ({saved}); delete it or use another --out")
    atomic_write(saved, json.dumps(record, indent=1).encode())
    log = work / "rollouts.jsonl"
    roll_out(agent_dir, args.data, episode_ids, log, args.seed, args.progress)
    records = [r for r in _read_lines(log) if r["episode_id"] in set(episode_ids)]
    staging = work / "store"
    shutil.rmtree(staging, ignore_errors=True)  # a store half-made by a killed run is made again
    shutil.copytree(
        args.store or args.data / "trajectories", staging, ignore=shutil.ignore_patterns(".lock", ".tmp-*")
    )
    store = TrajectoryStore(staging)
    base, steps = len(store), 0
    round = 1 + max(store.rounds(), default=0)
    for episode in recovery_episodes(args.data, spec, goals, records, args, round):
        store.append(episode)
        steps += episode.n_steps
    summary = {
        **record, "data_digest": digest,
        "rollouts": len(records), "round": round, "base_episodes": base,
        "recovery_episodes": len(store) - base, "recovery_steps": steps,
        "rollout_metrics": {k: float(np.mean([r["metrics"][k] for r in records])) for k in ("success", "spl")}
        | {"stuck": float(np.mean([r["termination"] == "stuck" for r in records])),
           "collision_share": float(np.mean([np.mean(r["collided"] or [0]) for r in records]))},
    }  # fmt: skip
    atomic_write(staging / "recovery.json", json.dumps(summary, indent=1).encode())
    shutil.move(str(log), staging / "rollouts.jsonl")
    os.replace(staging, out)
    shutil.rmtree(work)
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainers.data.recovery",
        description="Roll a System-1 checkpoint out on a System-1 dataset's training episodes and add the "
        "expert's trajectories from the states where it hit obstacles to a copy of the dataset's store. "
        "Rerun the same command to resume.",
    )
    p.add_argument("--data", required=True, type=Path, help="a System-1 dataset (envs.datasets.system1)")
    p.add_argument("--checkpoint", required=True, help="the policy: a run, checkpoint or agent folder")
    p.add_argument("--out", required=True, type=Path, help="the aggregated store to write (must not exist)")
    p.add_argument("--store", type=Path, help="the base store (default: DATA/trajectories)")
    p.add_argument("--episodes", type=int, help="training episodes to roll out (default: all)")
    p.add_argument("--max-starts", type=int, default=3, help="recovery trajectories per episode (default 3)")
    p.add_argument("--min-gap", type=int, default=10, help="steps between two recovery states (default 10)")
    p.add_argument(
        "--lead", type=int, default=0,
        help="steps before each collision to drive the expert from (default 0: the pose after it)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="episode choice, rollouts and labels (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.max_starts < 1 or args.min_gap < 1 or (args.episodes is not None and args.episodes < 1):
        raise SystemExit("error: --max-starts, --min-gap and --episodes must be at least 1")
    if args.lead < 0:
        raise SystemExit(f"error: --lead must be 0 or more, got {args.lead}")
    try:
        summary = make_recovery_store(args)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    logger.info("recovery store %s: %s", args.out, {k: summary[k] for k in ("rollouts", "recovery_episodes",
                "recovery_steps", "rollout_metrics")})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
