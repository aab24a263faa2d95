"""The single training entry point (Hydra; primary config ``configs/train.yaml``, schema ``TrainConfig``).

    python trainers/run.py agent=cma trainer=dagger data.dir=data/navgym_r2r [run_dir=runs/x] [resume=true]
    python trainers/run.py ... run_dir=runs/x overwrite=true    # a used run folder: empty it first
    torchrun --nproc_per_node 2 trainers/run.py agent=seq2seq trainer=bc data.dir=... device=cpu

Any config key can be overridden (``trainer.rounds=5``, ``logger.sinks=[jsonl,tensorboard]``,
``experiment=vlnce_dagger``); a misspelt key fails at composition, naming it, and so does a key added with
``+key=value`` that the schema does not know. A run folder that already holds a run is refused unless
``resume=true`` or ``overwrite=true``, and one that another training is writing is refused outright.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

# A checkout runs its own packages, whichever NavGym is installed (as benchmarks/run.py does).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from envs.fileio import removed_on_failure  # noqa: E402
from trainers import distributed  # noqa: E402
from trainers.base import make_trainer  # noqa: E402
from trainers.config import register_configs, to_config  # noqa: E402
from trainers.run_folder import check_inputs, claim_run_dir, holds_results  # noqa: E402

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> dict[str, float]:
    """Compose, validate, claim the run folder, train (or resume); returns the final evaluation metrics.

    Inputs are checked before any output exists; a run that fails before saving a checkpoint or an episode
    leaves nothing behind.
    """
    config = to_config(cfg)
    check_inputs(config)
    info = distributed.init_distributed(device=None if config.device == "auto" else config.device)
    try:
        with contextlib.ExitStack() as held:
            config.run_dir = claim_run_dir(config, info.is_main, hold=held)
            cleanup = removed_on_failure(config.run_dir, keep=lambda: holds_results(config))
            with cleanup if info.is_main else contextlib.nullcontext():
                return make_trainer(config, info).learn()
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    main()
