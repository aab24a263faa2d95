"""The small generated dataset that ``gymnasium.make("NavGym/VLN-v0")`` uses when given no episodes.

It is generated once (a few houses, a few episodes each: well under a minute on 2 cores) into
``$NAVGYM_DATA_DIR/default-small`` (default ``~/.cache/navgym/default-small``) and reused afterwards. The
generator is deterministic and resumable, so concurrent or interrupted first uses end with the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

from envs.datasets.generate import generate_dataset

DEFAULT_SEED = 0
DEFAULT_N_SCENES = 4
DEFAULT_EPISODES_PER_SCENE = 4


def data_home() -> Path:
    """Where NavGym keeps generated data: ``$NAVGYM_DATA_DIR`` or ``~/.cache/navgym``."""
    return Path(os.environ.get("NAVGYM_DATA_DIR", Path.home() / ".cache" / "navgym"))


def default_dataset_dir() -> Path:
    """The default small dataset's folder, generating it on first use."""
    root = data_home() / "default-small"
    if not (root / "test" / "test.json.gz").exists():
        generate_dataset(
            root,
            n_scenes=DEFAULT_N_SCENES,
            episodes_per_scene=DEFAULT_EPISODES_PER_SCENE,
            seed=DEFAULT_SEED,
            n_unseen_scenes=2,
            val_seen_per_scene=2,
            progress=False,
        )
    return root
