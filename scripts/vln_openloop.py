"""Open-loop agreement of a discrete VLN checkpoint with the expert, and, for RDP, whether its diffusion head
uses its condition.

    OMP_NUM_THREADS=1 python scripts/vln_openloop.py CHECKPOINT --data DATA_DIR [--split val_unseen]
                                                     [--episodes 10] [--set FIELD=VALUE ...]
                                                     [--out FILE.json]

A closed-loop evaluation mixes every cause of failure; this asks "on the expert's own path, does the agent
choose the expert's action?". Each of the first ``--episodes`` episodes of the split is driven by the expert;
at every step the agent acts (``deterministic=False``, as DAgger collects) and is then told the expert's
action (``record_actions``: the executed history stays the expert's, and a plan that disagreed is dropped).
Printed: the agreement and the confusion matrix (rows: expert STOP, FORWARD, LEFT, RIGHT; columns: agent).

For RDP it also prints the **condition sensitivity** of the head's prediction ``p`` (the noise or the clean
plan, per ``prediction_type``) at several diffusion timesteps: the mean ``|p(x_t, t, c_i) − p(x_t, t, c_j)|``
between the condition tokens of different episodes on the same noisy plan, next to the mean ``|p|``. A
value near 0 at every timestep means the head ignores its condition and samples the same plan distribution
whatever it sees (with ``deterministic=True``, the same plan).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.base import NUM_ACTIONS, STOP, Agent  # noqa: E402
from agents.checkpoints import find_agent_dir  # noqa: E402
from agents.rdp.network import STEP_DIM  # noqa: E402
from benchmarks.base import BENCHMARKS  # noqa: E402
from envs.rollout import batch_observation  # noqa: E402

#: Diffusion timesteps at which the condition sensitivity is measured, evenly spread over the schedule.
N_PROBE_TIMESTEPS = 5
#: Expert steps taken before the states whose condition tokens the sensitivity compares.
PROBE_STEP = 5


def agreement(agent: Agent, env: Any, episode_ids: list[str], max_steps: int = 500) -> dict[str, Any]:
    """Agreement with the expert along its own path (see the module docstring)."""
    confusion = np.zeros((NUM_ACTIONS, NUM_ACTIONS), np.int64)
    for episode_id in episode_ids:
        obs, _ = env.reset(options={"episode_id": episode_id})
        agent.reset(1)
        for _ in range(max_steps):
            action = int(agent.act(batch_observation(obs), deterministic=False)[0])
            expert = int(env.unwrapped.expert_action())
            confusion[expert, action] += 1
            agent.record_actions(np.array([expert]))
            obs, _, terminated, truncated, _ = env.step(expert)
            if terminated or truncated or expert == STOP:
                break
    total = int(confusion.sum())
    return {
        "steps": total,
        "agreement": float(np.trace(confusion) / max(total, 1)),
        "confusion": confusion.tolist(),
    }


def condition_sensitivity(
    agent: Any, env: Any, episode_ids: list[str], seed: int = 0
) -> list[dict[str, float]]:
    """RDP: per timestep, how much the head's prediction changes with another episode's condition tokens."""
    c, net = agent.config, agent.net
    rows = []
    with torch.no_grad():
        for episode_id in episode_ids:
            obs, _ = env.reset(options={"episode_id": episode_id})
            for _ in range(PROBE_STEP):
                obs, *_ = env.step(int(env.unwrapped.expert_action()))
            b = batch_observation(obs)
            text, valid = net.encode_text(*agent.tokenize(b["instruction_text"]))
            vision = net.encode_frames(*agent.frames(b["rgb"], b["depth"]))
            odometry = torch.as_tensor(np.asarray(b["odometry"], np.float32), device=agent.device)
            none, hidden = np.full((1, 1), -1), torch.zeros(1, c.hidden_size, device=agent.device)
            states, _ = net.recurrent(vision[:, None], agent.steps(none), odometry[:, None], hidden)
            history = agent.steps(np.full((1, c.n_prev_actions), -1))
            cond, _ = net.condition(vision, states[:, 0], text, valid, odometry, history)
            rows.append(net.finish_condition(cond, None))
        cond = torch.cat(rows)
        other = torch.roll(torch.arange(len(cond)), 1)
        generator = torch.Generator().manual_seed(seed)
        out = []
        last = c.num_train_timesteps - 1
        for t in sorted({int(round(v)) for v in np.linspace(0, last, N_PROBE_TIMESTEPS)}):
            noisy = torch.randn((len(cond), c.horizon, STEP_DIM), generator=generator).to(agent.device)
            timesteps = torch.full((len(cond),), t, dtype=torch.long, device=agent.device)
            predicted = net.head(noisy, timesteps, cond)
            changed = (predicted - net.head(noisy, timesteps, cond[other])).abs().mean()
            out.append({"timestep": t, "change": float(changed), "magnitude": float(predicted.abs().mean())})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint (or its agent/ folder)")
    parser.add_argument("--data", type=Path, required=True, help="a generated VLN dataset folder")
    parser.add_argument("--split", default="val_unseen")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=VALUE", help="agent config overrides (YAML values)"
    )
    parser.add_argument("--out", type=Path, help="also write the numbers here as JSON")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects FIELD=VALUE, got {item!r}")
        overrides[field] = yaml.safe_load(value)
    torch.manual_seed(0)
    agent = Agent.load(find_agent_dir(args.checkpoint), overrides=overrides).eval()
    bench = BENCHMARKS.get(f"vln_{args.split}").build(args.data, n_episodes=args.episodes)
    env = bench.env_for(agent)
    try:
        result: dict[str, Any] = {"checkpoint": str(args.checkpoint), "split": args.split}
        result.update(agreement(agent, env, list(bench.episode_ids)))
        print(f"open-loop agreement with the expert: {result['agreement']:.3f} over {result['steps']} steps")
        print("confusion (rows: expert STOP, FORWARD, LEFT, RIGHT; columns: agent):")
        for row in result["confusion"]:
            print("  ", " ".join(f"{v:5d}" for v in row))
        if agent.name == "rdp":
            result["condition_sensitivity"] = condition_sensitivity(agent, env, list(bench.episode_ids))
            for row in result["condition_sensitivity"]:
                print(
                    f"t={row['timestep']:2d}: |p(c_i) - p(c_j)| {row['change']:.3f}   "
                    f"|p| {row['magnitude']:.3f}"
                )
    finally:
        bench.close()
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
