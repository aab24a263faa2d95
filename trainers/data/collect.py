"""Collecting training episodes into a trajectory store: the expert's, or a DAgger mixture's.

Every episode runs through :func:`envs.rollout.rollout` (the one rollout loop) with two hooks:
:class:`BetaMixing` labels each step with the environment's shortest-path expert and executes the expert's
action with probability β, else the policy's (sampled) action; :class:`StoreWriter` commits the finished
episode to the store: the poses at which observations were taken, the expert labels (``actions``), the
executed actions, the DAgger round, and as extras the episode's ``slot`` in the round's plan, the geodesic
distance to the goal at each step (``geodesic``, for the progress target), ``beta``, the ``task``, the
``goal_position`` and the final metrics. The task is any goal task (``vln``, ``pointnav``, ``imagenav``); in
the
environment's ``waypoint`` action mode the expert's labels are its next path points (``Episode.labels``,
(T, n_waypoints, 3) float32) and ``actions`` / ``executed`` hold -1.

**Plans and resumption.** Round ``r`` collects ``plan[k]`` for slots ``k = 0..n-1``: a permutation of the
split's episode ids seeded by ``(seed, r)``, repeated until ``n`` slots are filled (so ids are unique within
a round whenever ``n`` does not exceed the split). A slot already stored for the round is skipped, so a killed
collection resumes where it stopped, and an expert store collected beforehand (same seed and count) serves as
DAgger's round 0. Each slot's randomness (β coin flips, the policy's sampling) is seeded by
``(seed, round, slot)``, so an episode does not depend on which rank collects it or on interruptions.
Under ``torch.distributed`` rank ``r`` collects slots ``r::world_size`` and appends to the same store
(its writer lock makes concurrent appends safe); readers order episodes by ``(round, slot)``.

Command line::

    python -m trainers.data.collect --data data/navgym_r2r --split train --out data/expert_store
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from envs.datasets.store import Episode, TrajectoryStore
from envs.env import NavEnv
from envs.render import CameraSpec
from envs.rollout import EpisodeResult, RolloutHook, rollout
from envs.sim import SimConfig
from trainers.distributed import shard

logger = logging.getLogger(__name__)


def episode_plan(episode_ids: Sequence[str], n_episodes: int | None, seed: int, round: int) -> list[str]:
    """The episode id of every slot of a round: seeded permutations of ``episode_ids`` cut to ``n_episodes``.

    Args:
        episode_ids: the split's episode ids.
        n_episodes: slots in the round (None: one pass over the split).
        seed: run seed.
        round: DAgger round (0 for expert data).
    """
    ids = [str(e) for e in episode_ids]
    if not ids:
        raise ValueError("episode_plan: the split has no episodes")
    n = len(ids) if n_episodes is None else int(n_episodes)
    if n < 1:
        raise ValueError(f"episode_plan: n_episodes must be >= 1 or None, got {n_episodes!r}")
    rng = np.random.default_rng([int(seed), int(round)])
    plan: list[str] = []
    while len(plan) < n:
        plan.extend(ids[i] for i in rng.permutation(len(ids)))
    return plan[:n]


def stored_slots(store: TrajectoryStore, round: int) -> set[int]:
    """Slots of ``round`` already committed to ``store`` (episodes without a slot count by store order)."""
    store.refresh()
    slots = set()
    for position, i in enumerate(store.filter(round=round)):
        slots.add(int(store.get(i, frames=False).extras.get("slot", position)))
    return slots


def round_totals(store: TrajectoryStore, round: int) -> tuple[int, int, float]:
    """``(episodes, steps, successes)`` of round ``round`` in ``store``, whichever run collected them.

    A collection resumed after a kill reports the whole round, not only the episodes collected since;
    successes come from each episode's ``extras["metrics"]["success"]``.
    """
    store.refresh()
    n, steps, success = 0, 0, 0.0
    for i in store.filter(round=round):
        episode = store.get(i, frames=False)
        n, steps = n + 1, steps + episode.n_steps
        success += float(episode.extras.get("metrics", {}).get("success", 0.0))
    return n, steps, success


def slot_seed(seed: int, round: int, slot: int) -> int:
    """The seed of one slot's randomness (β coin flips and policy sampling)."""
    return int(np.random.SeedSequence([int(seed), int(round), int(slot)]).generate_state(1)[0])


class BetaMixing(RolloutHook):
    """DAgger's mixture (Ross et al. 2011; VLN-CE): label every step with the expert, execute it with prob. β.

    ``choose_action`` records ``env.unwrapped.expert_action()`` as the label and returns it with probability
    ``beta``, else the policy's action (sampled when the rollout runs with ``deterministic=False``, as in
    VLN-CE). When the executed action differs from the policy's, the agent is told through
    ``record_actions`` so that its previous-action input is the executed action. The labels land in
    ``EpisodeResult.expert_actions``.

    Args:
        beta: probability of executing the expert's action, in [0, 1].
        agent: the acting agent (for ``record_actions``), or None when the policy is the expert itself.
        seed: seed of the coin flips (reseed per episode with :meth:`reseed`).
        record_frames: also keep the observations (``rgb``, ``depth``) each action was chosen from.
    """

    def __init__(self, beta: float, agent: Any = None, seed: int = 0, record_frames: bool = False) -> None:
        if not 0.0 <= float(beta) <= 1.0:
            raise ValueError(f"BetaMixing: beta must lie in [0, 1], got {beta!r}")
        self.beta, self.agent, self.record_frames = float(beta), agent, record_frames
        self.rng = np.random.default_rng(seed)
        self.labels: list[int] = []
        self.frames: dict[str, list[np.ndarray]] = {}

    def reseed(self, seed: int) -> None:
        """Restart the coin flips from ``seed``."""
        self.rng = np.random.default_rng(seed)

    def on_episode_start(self, env: gym.Env, obs: dict, info: dict) -> None:
        """Start new label and frame lists."""
        self.labels, self.frames = [], {"rgb": [], "depth": []}

    def choose_action(self, env: gym.Env, obs: dict, action: Any) -> Any:
        """The expert's action with probability β, else ``action``; records the expert's label.

        Labels are the environment's expert in its action mode: an int, or (n_waypoints, 3) float32 waypoints.
        """
        label = env.unwrapped.expert_action()
        discrete = np.ndim(label) == 0
        label = int(label) if discrete else np.asarray(label, np.float32)
        self.labels.append(label)
        if self.record_frames:
            for key in self.frames:
                self.frames[key].append(np.asarray(obs[key]).copy())
        if self.beta >= 1.0 or self.rng.random() < self.beta:
            executed = label
        else:
            executed = int(action) if discrete else np.asarray(action, np.float32)
        if not np.array_equal(executed, action) and hasattr(self.agent, "record_actions"):
            self.agent.record_actions(np.asarray([executed], dtype=np.int64 if discrete else np.float32))
        return executed

    def on_episode_end(self, env: gym.Env, result: EpisodeResult) -> None:
        """Attach the labels."""
        result.expert_actions = list(self.labels)


class StoreWriter(RolloutHook):
    """Commits each finished episode to a store (runs after the hook that sets ``expert_actions``).

    Args:
        store: the trajectory store (writable).
        round: DAgger round recorded with the episodes.
        beta: β recorded in the episodes' extras.
        mixing: the :class:`BetaMixing` hook of the same rollout (its frames are stored when it recorded any).
    """

    def __init__(self, store: TrajectoryStore, round: int, beta: float, mixing: BetaMixing) -> None:
        self.store, self.round, self.beta, self.mixing = store, int(round), float(beta), mixing
        self.slot = 0
        self.geodesic: list[float] = []

    def on_episode_end(self, env: gym.Env, result: EpisodeResult) -> None:
        """Build the :class:`Episode` (poses where actions were chosen, labels, executed actions); append
        it."""
        task = env.unwrapped.task
        n = len(result.actions)
        frames = {}
        if self.mixing.record_frames:
            frames = {k: np.stack(v) for k, v in self.mixing.frames.items()}
        discrete = env.unwrapped.action_mode == "discrete"
        no_ids = np.full(n, -1, np.int64)
        extras = {
            "slot": self.slot,
            "beta": self.beta,
            "task": task.name,
            "geodesic": np.asarray(task.distances[:n], np.float32),
            "start_geodesic": float(task.start_geodesic),
            "metrics": {k: float(v) for k, v in result.metrics.items() if np.isfinite(v)},
        }
        if task.goal is not None:
            extras["goal_position"] = [float(v) for v in task.goal]
        episode = Episode(
            episode_id=result.episode_id,
            scene_id=result.scene_id,
            instruction_text=result.instruction,
            positions=result.positions[:n],
            rotations=result.rotations[:n],
            actions=np.asarray(result.expert_actions, np.int64) if discrete else no_ids,
            executed=np.asarray(result.actions, np.int64) if discrete else no_ids,
            labels=None if discrete else np.asarray(result.expert_actions, np.float32),
            round=self.round,
            frames=frames,
            extras=extras,
        )
        self.store.append(episode)


def make_env(
    data_dir: str | Path,
    split: str,
    width: int,
    height: int,
    hfov: float = 90.0,
    task: str = "vln",
    camera: CameraSpec | None = None,
    cameras: Sequence[CameraSpec] = (),
    **kwargs: Any,
) -> NavEnv:
    """The ``task`` environment over ``data_dir/split`` (scenes in ``data_dir/scenes``), episodes in file
    order.

    Args:
        data_dir, split: the dataset (R2R-CE layout).
        width, height, hfov: the main camera, at the default height unless ``camera`` is given.
        task: ``vln``, ``pointnav``, ``imagenav`` or ``explore``.
        camera: the main camera in full (a mount height of its own), or None.
        cameras: extra agent-mounted cameras (their observations are ``<uuid>_rgb`` / ``<uuid>_depth``).
        **kwargs: other :class:`envs.env.NavEnv` arguments (``action_mode``, ``n_waypoints``,
            ``max_episode_steps``).
    """
    split_dir = Path(data_dir) / split
    if not split_dir.exists():
        raise FileNotFoundError(
            f"{split_dir}: no such split folder (expected the R2R-CE layout DIR/{split}/)"
        )
    default = CameraSpec(width=width, height=height, hfov=hfov)
    main = camera or default
    sim_config = SimConfig(cameras=(main, *cameras)) if cameras or main != default else None
    return NavEnv(
        task, episodes=split_dir, width=width, height=height, hfov=hfov, sim_config=sim_config, shuffle=False,
        **kwargs,
    )  # fmt: skip


def collect(
    env: NavEnv,
    store: TrajectoryStore,
    plan: Sequence[str],
    round: int,
    beta: float,
    agent: Any = None,
    seed: int = 0,
    store_frames: bool = False,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> list[EpisodeResult]:
    """Collect this rank's missing slots of ``plan`` into ``store``.

    Args:
        env: the environment over the plan's split.
        store: where episodes are appended.
        plan: episode id of each slot (:func:`episode_plan`).
        round: DAgger round recorded with the episodes.
        beta: probability of executing the expert's action; 1 runs the expert alone (``agent`` unused).
        agent: the policy for β < 1 (acts with sampled actions).
        seed: run seed (each slot is seeded by ``(seed, round, slot)``).
        store_frames: store the observed RGB and depth frames with the episodes.
        rank, world_size: this process's share is slots ``rank::world_size``.
        progress: show a progress bar.

    Returns:
        The results of the episodes collected now (not those skipped).
    """
    if beta < 1.0 and agent is None:
        raise ValueError(f"collect: beta={beta} < 1 needs an agent to act")
    done = stored_slots(store, round)
    by_id = {ep.episode_id: ep for ep in env.dataset.episodes}
    todo = [k for k in shard(range(len(plan)), rank, world_size) if k not in done]
    todo.sort(key=lambda k: (by_id[plan[k]].scene_id, k))  # scenes stay loaded while their episodes run
    mixing = BetaMixing(beta, agent, record_frames=store_frames)
    writer = StoreWriter(store, round, beta, mixing)
    hooks = [mixing, writer]
    # With beta = 1 the hook executes the expert's label whatever the policy says: skip the policy's cost.
    policy = agent if beta < 1.0 else (lambda obs: 0)
    results, refused = [], []
    for slot in tqdm(
        todo, desc=f"collect round {round} (beta={beta:.3f})", disable=not progress, leave=False
    ):
        s = slot_seed(seed, round, slot)
        mixing.reseed(s)
        torch.manual_seed(s)
        writer.slot = slot
        try:
            results += rollout(env, policy, episode_ids=[plan[slot]], hooks=hooks, deterministic=False)
        except ValueError as err:  # an episode the environment cannot start (start off the navigable area)
            refused.append(plan[slot])
            logger.warning("skipping slot %d: %s", slot, err)
    if refused and len(refused) == len(todo) > 1:
        raise RuntimeError(f"round {round}: none of {len(todo)} episodes could be run; first error above")
    if refused:
        logger.warning("round %d: %d episodes could not be run: %s", round, len(refused), refused[:20])
    store.refresh()
    return results


def collect_expert(
    dataset_dir: str | Path,
    split: str,
    store_dir: str | Path,
    n_episodes: int | None = None,
    store_frames: bool = False,
    width: int = 64,
    height: int = 64,
    hfov: float = 90.0,
    seed: int = 0,
    max_episode_steps: int | None = None,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
    task: str = "vln",
    action_mode: str = "discrete",
    n_waypoints: int = 4,
) -> TrajectoryStore:
    """Run the shortest-path expert over a split and store its episodes as round 0 (resumable).

    Args:
        dataset_dir: dataset root in the R2R-CE layout (``DIR/{split}/{split}.json.gz``, ``DIR/scenes``).
        split: the split to collect (``train``).
        store_dir: the trajectory store (created when missing; slots already stored are skipped).
        n_episodes: how many slots (None: every episode of the split once).
        store_frames: also store RGB (T,H,W,3) uint8 and depth (T,H,W,1) float32 frames.
        width, height, hfov: the camera (only matters with ``store_frames``).
        seed: plan seed (the same as the DAgger run that will reuse this store as its round 0).
        max_episode_steps: step limit (None: the task's 500).
        progress: show a progress bar.
        rank, world_size: collect slots ``rank::world_size`` only (several processes can fill one store).
        task: the task whose expert runs (``vln``, ``pointnav``, ``imagenav``; exploration has no expert).
        action_mode: ``discrete`` (labels are action ids) or ``waypoint`` (labels are the expert's next
            ``n_waypoints`` path points, stored as ``Episode.labels``).
        n_waypoints: waypoints per label in waypoint mode.

    Returns:
        The store.
    """
    env = make_env(
        dataset_dir, split, width, height, hfov, task=task, action_mode=action_mode, n_waypoints=n_waypoints,
        max_episode_steps=max_episode_steps,
    )  # fmt: skip
    try:
        store = TrajectoryStore(store_dir)
        plan = episode_plan([ep.episode_id for ep in env.dataset.episodes], n_episodes, seed, 0)
        results = collect(
            env, store, plan, 0, 1.0, seed=seed, store_frames=store_frames, rank=rank, world_size=world_size,
            progress=progress,
        )  # fmt: skip
    finally:
        env.close()
    logger.info("collected %d expert episodes; %s holds %d", len(results), store_dir, len(store))
    return store


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    p = argparse.ArgumentParser(prog="python -m trainers.data.collect", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="dataset root (R2R-CE layout)")
    p.add_argument("--split", default="train", help="split to collect (default train)")
    p.add_argument("--out", required=True, type=Path, help="trajectory store folder (resumed when it exists)")
    p.add_argument("--n-episodes", type=int, default=None, help="slots to collect (default: the whole split)")
    p.add_argument("--store-frames", action="store_true", help="store RGB-D frames (default: render on read)")
    p.add_argument("--size", type=int, default=64, help="camera side in pixels for stored frames")
    p.add_argument("--seed", type=int, default=0, help="plan seed (default 0)")
    p.add_argument(
        "--task", default="vln", choices=("vln", "pointnav", "imagenav"), help="task (default vln)"
    )
    p.add_argument(
        "--action-mode",
        default="discrete",
        choices=("discrete", "waypoint"),
        help="label form (default discrete)",
    )
    p.add_argument(
        "--n-waypoints", type=int, default=4, help="waypoints per label in waypoint mode (default 4)"
    )
    p.add_argument(
        "--shard", default="0/1", help="K/N: collect slots K::N only (run N such processes at once)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = p.parse_args(argv)
    try:
        rank, world_size = (int(x) for x in args.shard.split("/"))
        if not 0 <= rank < world_size:
            raise ValueError
    except ValueError:
        p.error(f"--shard must be K/N with 0 <= K < N, got {args.shard!r}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    collect_expert(
        args.data,
        args.split,
        args.out,
        n_episodes=args.n_episodes,
        store_frames=args.store_frames,
        width=args.size,
        height=args.size,
        seed=args.seed,
        progress=not args.no_progress,
        rank=rank,
        world_size=world_size,
        task=args.task,
        action_mode=args.action_mode,
        n_waypoints=args.n_waypoints,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
