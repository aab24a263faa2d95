"""Open-loop fit of a NavDP checkpoint on its own training windows, by kind of window.

    OMP_NUM_THREADS=1 python scripts/navdp_openloop.py RUN_OR_CHECKPOINT [--windows 40] [--waypoint 4]
                                                        [--store DIR] [--scenes DIR] [--out FILE.json]

Closed-loop evaluation takes minutes per episode set and mixes every cause of failure; this asks the narrower
question "does the policy reproduce its labels where it was trained?" in seconds. Windows of the run's
trajectory store (``<run>/store``, else ``--store``) are drawn in a seeded order and sorted by their label at
waypoint ``k`` (``--waypoint``): **turn** windows, where the expert turns in place (``|dx| < 0.1 m``,
``|dyaw| > 0.3 rad``: facing an obstacle or away from the route, the states the policy must get right to
avoid collisions), and **move** windows (all others); ``--windows`` of each. For each window the agent plans
from the window's own history frames, depth and point goal, as ``act`` would, and the tool reports the mean
absolute error ``(dx, dy, dyaw)`` at waypoint ``k`` of

- the critic's best plan (what the agent follows),
- the mean of the ``num_samples`` plans (what the denoiser predicts on average),
- a plan that does not move (the mean ``|label|``: an error at or above it means the policy has not learnt
  that part of the label),

and **depth sensitivity**: the mean distance at waypoint ``k`` between the samples' mean plan on the real
depth and on a depth image of free space (every pixel at ``max_depth``). A policy that avoids obstacles
changes its plan when the obstacle disappears; a value near 0 means the depth input is ignored.

The agent is loaded with ``history_every=1`` so that the window's 8 history frames (4 control steps apart)
are exactly the frames it feeds its encoder; the camera is the run's training camera.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.base import Agent  # noqa: E402
from agents.checkpoints import find_agent_dir  # noqa: E402
from benchmarks.config import camera_of, saved_run_config  # noqa: E402
from envs.render import CameraSpec  # noqa: E402
from trainers.data.windows import WindowDataset  # noqa: E402

#: A label at the chosen waypoint is a turn in place below this forward motion (m) and above this turn (rad).
TURN_MAX_DX, TURN_MIN_DYAW = 0.1, 0.3
KINDS = ("turn", "move")


def window_kind(label: np.ndarray) -> str:
    """``turn`` when the (dx, dy, dyaw) label turns in place, else ``move``."""
    return "turn" if abs(label[0]) < TURN_MAX_DX and abs(label[2]) > TURN_MIN_DYAW else "move"


def _run_paths(checkpoint: Path) -> tuple[Path | None, Path | None, dict[str, Any]]:
    """(store, scenes, camera) from the checkpoint's saved run config; None where it does not say."""
    cfg = saved_run_config(checkpoint, checkpoint.parent.parent) or {}
    data, run_dir = cfg.get("data") or {}, cfg.get("run_dir")
    store = data.get("store") or (Path(run_dir) / "store" if run_dir else None)
    scenes = Path(data["dir"]) / "scenes" if data.get("dir") else None
    return (Path(store) if store else None), scenes, camera_of(cfg) or {}


def _plan(agent: Agent, item: dict[str, Any], depth: np.ndarray) -> dict[str, Any]:
    agent.reset(1)
    agent.prime_history(item["rgb"][None, :-1])
    obs = {"rgb": item["rgb"][-1][None], "depth": depth[None], "pointgoal": item["pointgoal"][None]}
    return agent.plan(obs, deterministic=True)


def measure(
    agent: Agent, dataset: WindowDataset, n_windows: int, waypoint: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per window kind: ``count``, ``best``/``mean``/``still`` mean absolute errors (3,) at ``waypoint``
    (1-based) and ``depth_sensitivity`` (m); see the module docstring."""
    k = waypoint - 1
    rows: dict[str, list[np.ndarray]] = {kind: [] for kind in KINDS}
    free_value = float(agent.config.max_depth)
    for i in np.random.default_rng(seed).permutation(len(dataset)):
        if all(len(r) >= n_windows for r in rows.values()):
            break
        item = dataset[int(i)]
        label = np.asarray(item["future"][k], np.float64)
        kind = window_kind(label)
        if len(rows[kind]) >= n_windows or not item["future_mask"][k]:
            continue
        planned = _plan(agent, item, item["depth"][-1])
        paths = planned["paths"][0].cpu().numpy()
        mean = paths.mean(axis=0)[k]
        free = _plan(agent, item, np.full_like(item["depth"][-1], free_value))["paths"][0].cpu().numpy()
        shift = float(np.linalg.norm(free.mean(axis=0)[k, :2] - mean[:2]))
        best = paths[int(planned["best"][0])][k]
        errors = [np.abs(best - label), np.abs(mean - label), np.abs(label)]
        rows[kind].append(np.concatenate([*errors, [shift]]))
    out = {}
    for kind, found in rows.items():
        if not found:
            out[kind] = {"count": 0}
            continue
        m = np.mean(found, axis=0)
        out[kind] = {
            "count": len(found),
            "best": m[0:3].round(4).tolist(),
            "mean": m[3:6].round(4).tolist(),
            "still": m[6:9].round(4).tolist(),
            "depth_sensitivity": round(float(m[9]), 4),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python scripts/navdp_openloop.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("checkpoint", type=Path, help="a NavDP run, checkpoint or agent folder")
    parser.add_argument("--windows", type=int, default=40, help="windows of each kind (default 40)")
    parser.add_argument("--waypoint", type=int, default=4, help="1-based waypoint compared (default 4)")
    parser.add_argument("--store", type=Path, help="trajectory store (default: the run's)")
    parser.add_argument("--scenes", type=Path, help="scenes folder (default: the run's data.dir/scenes)")
    parser.add_argument("--seed", type=int, default=0, help="order in which windows are drawn")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    agent_dir = find_agent_dir(args.checkpoint)
    store, scenes, camera = _run_paths(agent_dir.parent)
    store, scenes = args.store or store, args.scenes or scenes
    for name, path in (("--store", store), ("--scenes", scenes)):
        if path is None or not Path(path).exists():
            parser.error(f"{name}: {path} not found (the run's config names none that exists; give it)")
    agent = Agent.load(agent_dir, overrides={"history_every": 1})
    if agent.name != "navdp":
        parser.error(f"{agent_dir}: a {agent.name!r} checkpoint; this measures NavDP checkpoints")
    if not 1 <= args.waypoint <= agent.sample.horizon:
        parser.error(f"--waypoint must lie in 1..{agent.sample.horizon}, got {args.waypoint}")
    agent.eval()
    dataset = WindowDataset(store, scenes, CameraSpec(**camera), agent.sample)
    result = measure(agent, dataset, args.windows, args.waypoint, args.seed)
    print(f"{agent_dir}: |error| (dx m, dy m, dyaw rad) at waypoint {args.waypoint}")
    print("| windows | n | critic's best | samples' mean | no motion | depth sensitivity (m) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, r in result.items():
        if r["count"]:
            cells = [", ".join(f"{v:.3f}" for v in r[key]) for key in ("best", "mean", "still")]
            print(f"| {kind} | {r['count']} | {' | '.join(cells)} | {r['depth_sensitivity']:.3f} |")
    if args.out:
        doc = {"checkpoint": str(agent_dir), "waypoint": args.waypoint, **result}
        args.out.write_text(json.dumps(doc) + "\n")
    return result


if __name__ == "__main__":
    main()
