"""Collection speed of the PPO trainer's environments: environment steps per second with N workers.

    python scripts/ddppo_speed.py --data-dir DIR [--workers 1 2 4] [--steps 200] [--size 64]

For each N, ``AsyncVectorEnv`` with N PointNav environments (one process and EGL context each,
:func:`trainers.rl.envs.make_vector_env`) steps with the small DD-PPO agent choosing the actions (sampled),
ended episodes reset as in training; prints N, steps/s over ``steps`` vector steps after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents import make_agent  # noqa: E402
from trainers.rl.envs import make_vector_env  # noqa: E402


def measure(data_dir: str, n: int, steps: int, size: int, vector: str = "async") -> float:
    """Environment steps per second of ``n`` workers over ``steps`` vector steps."""
    agent = make_agent("ddppo").eval()
    envs = make_vector_env(data_dir, "train", n, size, max_episode_steps=100, vector=vector)
    try:
        obs, _ = envs.reset(seed=0)
        agent.reset(n)
        start = None
        for i in range(steps + 10):
            if i == 10:
                start = time.perf_counter()
            actions = agent.act(obs, deterministic=False)
            obs, _, term, trunc, _ = envs.step(actions)
            done = np.logical_or(term, trunc)
            if done.any():
                fresh, _ = envs.reset(options={"reset_mask": done})
                obs = {
                    k: np.where(done.reshape(-1, *[1] * (v.ndim - 1)), fresh[k], v) for k, v in obs.items()
                }
                agent.reset(n, np.flatnonzero(done))
        return steps * n / (time.perf_counter() - start)
    finally:
        envs.close()


def main() -> None:
    """Print steps/s per worker count."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--vector", choices=("async", "sync"), default="async")
    args = p.parse_args()
    torch.set_num_threads(1)
    print("workers  env_steps_per_s")
    for n in args.workers:
        print(f"{n:7d}  {measure(args.data_dir, n, args.steps, args.size, args.vector):15.1f}", flush=True)


if __name__ == "__main__":
    main()
