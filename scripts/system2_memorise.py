"""Can a fresh System 2 memorise a handful of pixel-goal queries through its images alone?

    python scripts/system2_memorise.py --data data/navgym_r2r --split train --n-episodes 20 \
        [--queries 64] [--updates 400] [--lr 1e-3] [--keep-text] [--n-history 0] [agent.FIELD=VALUE ...]

A check of the vision path, not a result: the first ``--queries`` pixel queries of the split's expert episodes
(collected into ``--store`` as by ``scripts/pixel_goal_accuracy.py``) are asked with one fixed instruction and
``--n-history`` history frames (0: the current and look-down frames only), so the images are all that tells
them apart; a newly built agent (its default config plus the ``agent.FIELD=VALUE`` overrides) is trained on
them alone (batches of 8, Adam) and then answers them. If the answers do not beat the queries' median pixel
(``constant_pixel``), no image information reaches the answer; if they do, a model that fails on the full data
fails to learn, not to see. ``--keep-text`` keeps each query's own instruction (then the text can tell them
apart too). Prints the loss every 50 updates and the metrics
(:func:`envs.tasks.pixel_goal.pixel_goal_metrics`) of the model's answers and of the constant pixel.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pixel_goal_accuracy import collect_store, constant_pixel, null_nan  # noqa: E402

from agents import make_agent  # noqa: E402
from agents.contract import agent_cameras, interface_of  # noqa: E402
from envs.tasks.pixel_goal import pixel_goal_metrics  # noqa: E402
from trainers.data.pixel_goals import PixelGoalDataset  # noqa: E402

#: The one instruction every query is asked with (without ``--keep-text``).
FIXED_TEXT = "go to the goal"
BATCH = 8


def pixel_queries(agent, data: Path, store: Path, n: int, size: int, keep_text: bool, n_history: int) -> list:
    """The first ``n`` pixel queries of ``store`` as the agent's items (no augmentation)."""
    cameras = agent_cameras(interface_of(agent), size, size, 90.0)
    lookdown = next(c for c in cameras if c.uuid == agent.sample.lookdown)
    spec = dataclasses.replace(agent.sample, augment=False)
    dataset = PixelGoalDataset(store, data / "scenes", cameras[0], spec, lookdown)
    items = []
    for i in range(len(dataset)):
        item = dataset[i]
        if str(item["kind"]) != "pixel":
            continue
        item = dict(item)
        if not keep_text:
            item["instruction_text"] = FIXED_TEXT
        history = np.asarray(item["history"])
        keep = np.unique(np.linspace(0, len(history) - 1, n_history).round().astype(int)) if n_history else []
        item["history"] = history[keep] if len(history) else history
        items.append(item)
        if len(items) == n:
            return items
    raise ValueError(f"{store}: only {len(items)} pixel queries, asked for {n} (collect more episodes)")


def memorise(agent, items: list, updates: int, lr: float, seed: int = 0) -> list[float]:
    """Train ``agent`` on ``items`` alone; returns the loss of every update."""
    transform = agent.item_transform()
    encoded = [transform(dict(item)) for item in items]
    optimiser = torch.optim.Adam(agent.parameters(), lr=lr)
    rng, losses = np.random.default_rng(seed), []
    agent.train()
    for update in range(updates):
        chosen = rng.choice(len(encoded), min(BATCH, len(encoded)), replace=False)
        batch = {key: [encoded[i][key] for i in chosen] for key in encoded[0]}
        loss, _ = agent.loss(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if update % 50 == 0 or update == updates - 1:
            print(f"update {update}: loss {losses[-1]:.4f}", flush=True)
    return losses


def main(argv: list[str] | None = None) -> dict:
    """Command line; see the module docstring. Returns the printed result."""
    p = argparse.ArgumentParser(prog="python scripts/system2_memorise.py", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="VLN dataset root (R2R-CE layout)")
    p.add_argument("--split", default="train")
    p.add_argument("--n-episodes", type=int, default=20, help="expert episodes to collect")
    p.add_argument(
        "--store", type=Path, default=None, help="expert store (default: runs/memorise/store_SPLIT)"
    )
    p.add_argument("--queries", type=int, default=64)
    p.add_argument("--updates", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--keep-text", action="store_true", help="keep each query's own instruction")
    p.add_argument("--n-history", type=int, default=0, help="history frames per query")
    p.add_argument("--size", type=int, default=64, help="camera side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help="agent.FIELD=VALUE (a YAML value)")
    args = p.parse_args(argv)
    config: dict = {"name": "system2", "n_history": args.n_history}
    for override in args.overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.startswith("agent."):
            raise SystemExit(f"system2_memorise: overrides are agent.FIELD=VALUE, got {override!r}")
        config[key.removeprefix("agent.")] = yaml.safe_load(value)
    store = args.store or Path("runs/memorise") / f"store_{args.split}"
    if not (store / "store.json").exists():
        collect_store(args.data, args.split, store, args.n_episodes)
    torch.manual_seed(args.seed)
    agent = make_agent("system2", config, instructions=[FIXED_TEXT])
    items = pixel_queries(agent, args.data, store, args.queries, args.size, args.keep_text, args.n_history)
    start = time.perf_counter()
    losses = memorise(agent, items, args.updates, args.lr, args.seed)
    agent.eval()
    answers = [
        agent.generate(item["instruction_text"], list(item["history"]), item["current"], item["lookdown"])
        for item in items
    ]
    row, col = constant_pixel(items)
    result = {
        "queries": len(items), "updates": args.updates, "lr": args.lr, "seconds": time.perf_counter() - start,
        "first_loss": losses[0], "last_loss": float(np.mean(losses[-10:])),
        "model": null_nan(pixel_goal_metrics(answers, items)),
        "constant_pixel": null_nan(pixel_goal_metrics([f"{row} {col}"] * len(items), items)),
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
