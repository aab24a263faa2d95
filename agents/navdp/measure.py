"""Parameter counts and CPU plan latency of NavDP's configurations.

    OMP_NUM_THREADS=1 python -m agents.navdp.measure [--configs default paper] [--plans 3] [--threads 1]

For each configuration: parameters (total, trainable, and per part: RGB-D backbone, image-goal encoder,
pixel-goal encoder, the denoiser with its critic and point encoder) beside the published 135.7 M (anchors
Part B §3), and the median latency of one plan (an ``act`` call on one environment: encoding the 8-frame
history and the depth, ``num_samples`` trajectories denoised in ``num_inference_steps`` batched steps,
critic scoring) after one warm-up plan. ``paper`` is built with random weights: counts and timings do not
depend on them.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from agents.navdp.agent import NavDPAgent
from agents.navdp.config import NavDPConfig

logger = logging.getLogger(__name__)

CONFIGS = {"default": NavDPConfig, "paper": NavDPConfig.paper}
#: NavDP's registered parameter count, millions (anchors Part B §3, InternNav's server config).
PUBLISHED_MILLIONS = 135.7


def parameter_counts(agent: NavDPAgent) -> dict[str, float]:
    """Millions of parameters: ``total``, ``trainable`` and per part."""
    net = agent.net

    def millions(params) -> float:
        return sum(p.numel() for p in params) / 1e6

    parts = {
        "rgbd_encoder": millions(net.rgbd_encoder.parameters()),
        "image_goal": millions(net.image_encoder.parameters()),
        "pixel_goal": millions(net.pixel_encoder.parameters()),
    }
    total = millions(agent.parameters())
    return {
        "total": total,
        "trainable": millions(p for p in agent.parameters() if p.requires_grad),
        **parts,
        "denoiser": total - sum(parts.values()),
    }


def plan_latency(agent: NavDPAgent, n_plans: int) -> float:
    """Median milliseconds of ``act`` (one plan) on one environment with a point goal."""
    size = agent.config.image_size
    rng = np.random.default_rng(0)
    obs = {
        "rgb": rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8),
        "depth": rng.uniform(0.2, 5.0, (1, size, size, 1)).astype(np.float32),
        "pointgoal": np.array([[3.0, 0.3]], np.float32),
    }
    agent.reset(1)
    times = []
    with torch.inference_mode():
        agent.act(obs)
        for _ in range(n_plans):
            start = time.perf_counter()
            agent.act(obs)
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    """Print the counts and latencies (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--plans", type=int, default=3, help="timed plans per configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    for name in args.configs:
        config = CONFIGS[name]()
        torch.manual_seed(0)
        agent = NavDPAgent(config).eval()
        counts = parameter_counts(agent)
        text = ", ".join(f"{k} {v:.2f} M" for k, v in counts.items())
        logger.info("%s: parameters: %s (published NavDP: %s M)", name, text, PUBLISHED_MILLIONS)
        ms = plan_latency(agent, args.plans)
        logger.info(
            "%s: %d thread(s): %.1f ms per plan of %d trajectories (%d denoising steps, %d px)",
            name, args.threads, ms, config.num_samples, config.num_inference_steps, config.image_size,
        )  # fmt: skip


if __name__ == "__main__":
    main()
