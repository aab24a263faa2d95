"""The single training entry point (Hydra; primary config ``configs/train.yaml``, schema ``TrainConfig``).

    python trainers/run.py agent=cma trainer=dagger data.dir=data/navgym_r2r [run_dir=runs/x] [resume=true]
    torchrun --nproc_per_node 2 trainers/run.py agent=seq2seq trainer=bc data.dir=... device=cpu

Any config key can be overridden (``trainer.rounds=5``, ``logger.sinks=[jsonl,tensorboard]``,
``experiment=vlnce_dagger``); a misspelt key fails at composition, naming it, and so does a key added with
``+key=value`` that the schema does not know.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# A checkout runs its own packages, whichever NavGym is installed (as benchmarks/run.py does).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from trainers import distributed  # noqa: E402
from trainers.base import make_trainer  # noqa: E402
from trainers.config import TrainConfig, register_configs, to_config  # noqa: E402

register_configs()


def resolve_run_dir(config: TrainConfig) -> str:
    """``run_dir``, else ``runs/<agent>-<trainer>-<timestamp>`` (with ``resume``: the newest such folder);
    under torchrun every rank takes rank 0's choice."""
    run_dir = config.run_dir
    if run_dir is None:
        prefix = f"{config.agent.name}-{config.trainer.name}-"
        if config.resume:
            found = sorted(Path("runs").glob(prefix + "*"))
            if not found:
                raise FileNotFoundError(f"resume=true: no run folder runs/{prefix}* to resume; give run_dir=")
            run_dir = str(found[-1])
        else:
            run_dir = f"runs/{prefix}{time.strftime('%Y%m%d-%H%M%S')}"
    return distributed.all_gather_objects(run_dir)[0]


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> dict[str, float]:
    """Compose, validate, pick the run folder, train (or resume); returns the final evaluation metrics."""
    config = to_config(cfg)
    info = distributed.init_distributed(device=None if config.device == "auto" else config.device)
    try:
        config.run_dir = resolve_run_dir(config)
        return make_trainer(config, info).learn()
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    main()
