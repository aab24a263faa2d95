"""Parameter counts and CPU latency of RDP's configurations.

    OMP_NUM_THREADS=1 python -m agents.rdp.measure [--configs default paper] [--plans 5] [--threads 1]

For each configuration: parameters (total, trainable, and per part: RGB tower, instruction tower, depth
encoder, the rest) and the latency of one plan (an ``act`` call that re-plans: frame encoding, GRU step,
fusion, ``num_inference_steps`` guided denoising steps, decoding; the instruction's encoding is cached as
in an episode) and of one step that executes a planned action. ``paper`` is built with a randomly initialised
CLIP ViT-B/16 (LongCLIP's 248 text positions) and DD-PPO ResNet-50, and times with a word-level stand-in for
CLIP's tokenizer (:class:`WordTokenizer`): counts and timings do not depend on the weights.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
import torch

from agents.rdp.agent import RDPAgent
from agents.rdp.config import RDPConfig

logger = logging.getLogger(__name__)

INSTRUCTION = "walk out of the kitchen, turn left at the sofa and stop in front of the white door " * 3
CONFIGS = {"default": RDPConfig, "paper": RDPConfig.paper}


def parameter_counts(agent: RDPAgent) -> dict[str, float]:
    """Millions of parameters: ``total``, ``trainable`` and per part."""
    net = agent.net

    def millions(params: Any) -> float:
        return sum(p.numel() for p in params) / 1e6

    parts = {
        "rgb": millions(net.rgb_encoder.parameters()),
        "instruction": millions(net.instruction_encoder.parameters()),
        "depth": millions(net.depth_encoder.parameters()),
    }
    total = millions(agent.parameters())
    return {
        "total": total,
        "trainable": millions(p for p in agent.parameters() if p.requires_grad),
        **parts,
        "rest": total - sum(parts.values()),
    }


class WordTokenizer:
    """A stand-in for CLIP's tokenizer when timing a CLIP tower without tokenizer files: one id per word
    (CLIP's BPE gives about one token per common word) between start and end tokens."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __call__(self, texts: list[str], max_length: int, **_: Any) -> dict[str, torch.Tensor]:
        rows = [[self.vocab_size - 2, *(hash(w) % (self.vocab_size - 2) for w in t.split())] for t in texts]
        rows = [r[: max_length - 1] + [self.vocab_size - 1] for r in rows]
        ids = torch.full((len(rows), max(map(len, rows))), self.vocab_size - 1, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
        return {"input_ids": ids, "attention_mask": mask}


def step_latencies(agent: RDPAgent, n_plans: int) -> tuple[float, float]:
    """Median milliseconds of ``act`` on one environment for calls that plan and calls that execute a
    planned action, over about ``n_plans`` plans (after one warm-up plan)."""
    c = agent.config
    rng = np.random.default_rng(0)
    obs = {
        "rgb": rng.integers(0, 256, (1, c.rgb_size, c.rgb_size, 3), dtype=np.uint8),
        "depth": rng.uniform(0.5, 5.0, (1, c.depth_size, c.depth_size, 1)).astype(np.float32),
        "instruction_text": [INSTRUCTION],
        "odometry": np.zeros((1, 3), np.float32),
    }
    agent.reset(1)
    times: dict[bool, list[float]] = {True: [], False: []}
    with torch.inference_mode():
        agent.act(obs)
        for _ in range((n_plans + 1) * c.len_traj_act):
            plans = not agent._plans[0]
            start = time.perf_counter()
            agent.act(obs)
            times[plans].append(time.perf_counter() - start)
    return tuple(1e3 * float(np.median(times[k])) if times[k] else float("nan") for k in (True, False))


def main(argv: list[str] | None = None) -> None:
    """Print the counts and latencies (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--plans", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    logger.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    for name in args.configs:
        config = CONFIGS[name]()
        torch.manual_seed(0)
        agent = RDPAgent(config, instructions=[INSTRUCTION]).eval()
        counts = ", ".join(f"{k} {v:.2f} M" for k, v in parameter_counts(agent).items())
        logger.info("%s: parameters: %s", name, counts)
        if config.text_encoder == "clip" and agent.tokenizer is None:
            agent.tokenizer = WordTokenizer(agent.clip_config.text_config.vocab_size)
        plan, step = step_latencies(agent, args.plans)
        logger.info(
            "%s: %d thread(s): %.1f ms per plan, %.1f ms per step executing one",
            name,
            args.threads,
            plan,
            step,
        )


if __name__ == "__main__":
    main()
