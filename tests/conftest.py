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
