"""Parameter count and CPU generation latency of the tiny System 2.

    OMP_NUM_THREADS=1 python -m agents.system2.measure [--queries 10] [--history 8] [--threads 1]

Builds the default (tiny) model with its tokenizer trained on a few instructions and times ``generate`` for
one query (greedy, ``max_new_tokens`` tokens; up to 8 history frames and the current one), then for a query
that continues after ``↓`` with the look-down image. Timings do not depend on the weights: an untrained model
always generates ``max_new_tokens`` tokens (it never emits the end token early), the worst case.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from agents.system2.agent import System2Agent
from agents.system2.config import System2Config

INSTRUCTION = "walk out of the kitchen, turn left at the sofa and stop in front of the white door"
log = logging.getLogger(__name__)


def measure(queries: int = 10, history: int = 8, size: int = 128) -> dict[str, float]:
    """``params_m`` (millions), ``query_ms`` and ``lookdown_query_ms`` (median ms per ``generate``)."""
    torch.manual_seed(0)
    agent = System2Agent(System2Config(), instructions=[INSTRUCTION]).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (history + 2, size, size, 3), dtype=np.uint8)

    def median_ms(lookdown) -> float:
        times = []
        for _ in range(queries + 1):  # the first call warms up
            start = time.perf_counter()
            agent.generate(INSTRUCTION, list(frames[:history]), frames[history], lookdown)
            times.append(1e3 * (time.perf_counter() - start))
        return float(np.median(times[1:]))

    return {
        "params_m": sum(p.numel() for p in agent.parameters()) / 1e6,
        "query_ms": median_ms(None),
        "lookdown_query_ms": median_ms(frames[-1]),
        "max_new_tokens": agent.config.max_new_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--history", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = measure(args.queries, args.history)
    log.info(
        "system2 tiny: %.2f M parameters; generate (%d new tokens, %d history frames, %d thread(s)): %.1f ms "
        "per query, %.1f ms per look-down query",
        out["params_m"], out["max_new_tokens"], args.history, args.threads, out["query_ms"],
        out["lookdown_query_ms"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
