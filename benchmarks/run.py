"""The evaluation entry point: agents on one benchmark, per-episode JSONL + summary + report per evaluation.

    python benchmarks/run.py agent=random benchmark=vln_val_unseen data.dir=data/navgym_r2r
    python benchmarks/run.py agent=cma checkpoint=runs/cma/checkpoints/last benchmark=vln_val_unseen
    python benchmarks/run.py "agents=[expert,random,runs/cma/checkpoints/last]" benchmark.n_episodes=50

Config: ``configs/eval.yaml`` + ``configs/benchmark/<name>.yaml`` against ``benchmarks/config.py``.
"""

import logging
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from agents.hydra_configs import check_known_keys  # noqa: E402
from benchmarks.config import (  # noqa: E402
    agent_entries,
    build_benchmark,
    explicit_agent_fields,
    output_dirs,
    register_configs,
)
from benchmarks.report import write_report  # noqa: E402
from envs.fileio import atomic_write, removed_on_failure  # noqa: E402

logger = logging.getLogger("benchmarks.run")
register_configs()


@hydra.main(config_path="../configs", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Evaluate every agent of ``cfg`` on the same episodes, then write the report."""
    check_known_keys(cfg)
    entries = agent_entries(cfg, explicit_agent_fields(list(HydraConfig.get().overrides.task), cfg))
    bench = build_benchmark(cfg)
    out, dirs = output_dirs(cfg, [e.label for e in entries])
    # A failed evaluation (a bad scene or start shows only when its episode runs) leaves nothing behind.
    with removed_on_failure(out):
        atomic_write(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True).encode())
        try:
            for entry, folder in zip(entries, dirs, strict=True):
                random.seed(cfg.benchmark.seed)
                np.random.seed(cfg.benchmark.seed)
                torch.manual_seed(cfg.benchmark.seed)
                summary, _ = bench.run(
                    entry.agent, folder, label=entry.label, checkpoint=entry.checkpoint,
                    deterministic=cfg.benchmark.deterministic, progress=cfg.progress, camera=entry.camera,
                )  # fmt: skip
                logger.info("%s on %s: %s -> %s", entry.label, bench.name, summary["metrics"], folder)
        finally:
            bench.close()
        if cfg.report:
            report = write_report(dirs, runs=[e.run_dir for e in entries if e.run_dir is not None], out=out)
            logger.info("report: %s", report)


if __name__ == "__main__":
    main()
