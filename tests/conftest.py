"""Shared fixtures: the Habitat test scenes that sit beside the checkout."""

import os
from pathlib import Path

import pytest

ASSETS = Path(
    os.environ.get(
        "NAVGYM_TEST_SCENES",
        Path(__file__).resolve().parents[1].parent / "shared" / "assets" / "habitat_test_scenes",
    )
)


@pytest.fixture(scope="session")
def habitat_scenes() -> Path:
    """Folder of the Habitat test scenes; skips when it is absent."""
    if not (ASSETS / "simple_room.glb").exists():
        pytest.skip(f"Habitat test scenes not found in {ASSETS} (set NAVGYM_TEST_SCENES)")
    return ASSETS


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A 4-scene generated VLN dataset in the R2R-CE layout (train/val_seen on 2 houses; val_unseen, test)."""
    from envs.datasets.generate import generate_dataset

    root = tmp_path_factory.mktemp("tiny_dataset")
    generate_dataset(
        root,
        n_scenes=4,
        episodes_per_scene=2,
        seed=0,
        n_unseen_scenes=2,
        val_seen_per_scene=1,
        progress=False,
    )
    return root


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_home(tmp_path_factory):
    """Keep the default dataset of ``gymnasium.make`` out of the user's cache during tests."""
    if "NAVGYM_DATA_DIR" not in os.environ:
        os.environ["NAVGYM_DATA_DIR"] = str(tmp_path_factory.mktemp("navgym_data"))
    yield
