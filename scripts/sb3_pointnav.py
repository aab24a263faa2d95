"""Reference client: Stable-Baselines3's PPO on the same PointNav environments as ``trainer=ppo``.

    python scripts/sb3_pointnav.py --data-dir DIR --run-dir runs/sb3 --total-steps 10000 [--num-envs 4]

The environments are :mod:`trainers.rl.envs`'s (depth-only camera, the task's geodesic progress plus
habitat's success bonus and slack penalty, the same seeded episode schedule) behind a wrapper that gives
SB3 a ``Dict`` of ``depth`` (1, S, S) uint8 (clipped to 0.5–5 m, scaled to 0–255: an image for SB3's
NatureCNN) and ``pointgoal`` (3,) ``[rho / 5 clipped to 1, cos θ, sin θ]``; the policy is SB3's
``MultiInputPolicy`` (NatureCNN + MLP, feed-forward: SB3 has no recurrent PPO). PPO settings follow
``trainer=ppo``: rollout T per environment, 2 epochs, minibatches of T·N/2, lr 2.5e-4, γ 0.99, λ 0.95,
clip 0.2, entropy 0.01, value 0.5, max grad norm 0.2. The learning curve goes to ``RUN/metrics.jsonl`` in
the trainers' format (``rollout/success``, ``rollout/spl``, ``rollout/reward`` at the environment-step
count), then ``final/success`` and ``final/spl`` of deterministic episodes on ``--eval-split``'s first
``--eval-episodes`` episodes (the ones ``system1_pointnav`` evaluates ``trainer=ppo`` on).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from agents.baselines.ddppo.agent import DDPPOAgent  # noqa: E402
from agents.contract import interface_of  # noqa: E402
from trainers.rl.envs import make_pointnav_env  # noqa: E402

logger = logging.getLogger("sb3_pointnav")


class SB3Observation(gym.ObservationWrapper):
    """``depth`` -> (1, S, S) uint8 over [min, max] metres; ``pointgoal`` -> ``[rho / max_goal, cos,
    sin]``."""

    def __init__(self, env: gym.Env, min_depth: float = 0.5, max_depth: float = 5.0, max_goal: float = 5.0):
        super().__init__(env)
        h, w, _ = env.observation_space["depth"].shape
        self.lo, self.hi, self.max_goal = min_depth, max_depth, max_goal
        self.observation_space = spaces.Dict(
            {
                "depth": spaces.Box(0, 255, (1, h, w), np.uint8),
                "pointgoal": spaces.Box(-1.0, 1.0, (3,), np.float32),
            }
        )

    def observation(self, obs: dict) -> dict:
        """See the class docstring."""
        d = (np.clip(np.nan_to_num(obs["depth"], nan=self.hi), self.lo, self.hi) - self.lo) / (
            self.hi - self.lo
        )
        rho, theta = float(obs["pointgoal"][0]), float(obs["pointgoal"][1])
        goal = np.array([min(rho / self.max_goal, 1.0), np.cos(theta), np.sin(theta)], np.float32)
        return {"depth": (d[..., 0] * 255).astype(np.uint8)[None], "pointgoal": goal}

    def snapshot(self) -> dict:
        """Forwarded to the inner environment (vector ``env_method``)."""
        return self.env.snapshot()


def make_env(
    data_dir: str, split: str, size: int, max_steps: int | None, slot: int, seed: int, order: str = "random"
) -> gym.Env:
    """One wrapped environment (module level: picklable for subprocess workers), its camera as DD-PPO's."""
    height = interface_of(DDPPOAgent).cameras[0].mount_height
    return SB3Observation(
        make_pointnav_env(
            data_dir, split, size, 90.0, max_steps, slot, 1 << 30, seed, 2.5, -0.01, order, height
        )
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, log the curve, evaluate; returns the final metrics."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--eval-split", default="val_unseen")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--total-steps", type=int, default=10000)
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--rollout-steps", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--max-episode-steps", type=int, default=100)
    p.add_argument("--vector", choices=("sync", "async"), default="sync")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from trainers.metrics import MetricsLogger

    torch.set_num_threads(1)
    fns = [
        functools.partial(
            make_env, args.data_dir, args.split, args.size, args.max_episode_steps, i, args.seed
        )
        for i in range(args.num_envs)
    ]
    venv = DummyVecEnv(fns) if args.vector == "sync" else SubprocVecEnv(fns, start_method="forkserver")
    metrics = MetricsLogger(args.run_dir, ["jsonl"], "navgym", config=vars(args))

    class Curve(BaseCallback):
        """Logs the ended episodes' measures and the collection rate after every rollout."""

        def _on_rollout_start(self) -> None:
            self.episodes, self.start = [], time.perf_counter()

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "ep_success" in info:
                    self.episodes.append(info)
            return True

        def _on_rollout_end(self) -> None:
            row = {"rollout/episodes": len(self.episodes)}
            if self.episodes:
                for key, name in (("ep_success", "success"), ("ep_spl", "spl"), ("ep_return", "reward")):
                    row[f"rollout/{name}"] = float(np.mean([e[key] for e in self.episodes]))
                row["rollout/episode_length"] = float(np.mean([e["ep_length"] for e in self.episodes]))
            steps = args.rollout_steps * args.num_envs
            row["time/env_steps_per_s"] = steps / max(time.perf_counter() - self.start, 1e-9)
            metrics.log(row, self.num_timesteps)
            logger.info("env step %d: %s", self.num_timesteps, {k: round(v, 4) for k, v in row.items()})

    model = PPO(
        "MultiInputPolicy", venv, n_steps=args.rollout_steps,
        batch_size=args.rollout_steps * args.num_envs // 2,
        n_epochs=2, learning_rate=2.5e-4, gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.01,
        vf_coef=0.5, max_grad_norm=0.2, seed=args.seed, device="cpu", verbose=0,
    )  # fmt: skip
    model.learn(total_timesteps=args.total_steps, callback=Curve())
    venv.close()
    model.save(Path(args.run_dir) / "sb3_ppo.zip")

    final: dict[str, float] = {}
    if args.eval_episodes:
        env = make_env(args.data_dir, args.eval_split, args.size, args.max_episode_steps, 0, 0, "file")
        n_split = len(env.unwrapped.dataset.episodes)
        results = []
        for _ in range(min(args.eval_episodes, n_split)):
            obs, _ = env.reset()
            while True:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = env.step(int(action))
                if terminated or truncated:
                    results.append(info)
                    break
        env.close()
        final = {
            "final/success": float(np.mean([r["ep_success"] for r in results])),
            "final/spl": float(np.mean([r["ep_spl"] for r in results])),
            "final/episodes": len(results),
        }
        metrics.log(final, model.num_timesteps)
        logger.info("final: %s", final)
    metrics.close()
    return final


if __name__ == "__main__":
    main()
