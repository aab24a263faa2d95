"""The per-scene part of dataset generation (see :mod:`envs.datasets.generate`).

:class:`DatasetSpec` holds every argument that determines a dataset. :func:`build_scene` makes one scene: it
generates house ``k`` from the seed ``SeedSequence(seed, spawn_key=(k, 0))``, saves it as
``scenes/house_XXXXX.glb`` (+ sidecar), samples its episodes with ``SeedSequence(seed, spawn_key=(k, 1))`` and
writes them to ``.work/scene_XXXXX.json.gz``. Every file goes through a temporary file renamed over the
target, so a crash or a kill leaves either the previous state or the complete file, never half of one.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.datasets.episodes import EpisodeConfig, EpisodeSampler
from envs.fileio import atomic_write
from envs.render import CameraSpec
from envs.scenes.generate import generate_house
from envs.scenes.io import save_scene
from envs.sim import SimConfig, Simulator

logger = logging.getLogger(__name__)

#: Bumped when the intermediate or final format changes, so stale work folders are refused.
FORMAT_VERSION = 1

#: Sampling attempts allowed per wanted episode before a scene settles for fewer.
ATTEMPTS_PER_EPISODE = 3


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a generated dataset (stored in ``.work/manifest.json``).

    Attributes:
        n_scenes: number of houses.
        episodes_per_scene: train episodes per training scene, and episodes per unseen scene.
        seed: master seed.
        n_unseen_scenes: scenes kept out of training (val_unseen gets the first half, rounded up; test the
            rest).
        val_seen_per_scene: val_seen episodes per training scene.
        episode: how episodes are sampled.
    """

    n_scenes: int
    episodes_per_scene: int
    seed: int
    n_unseen_scenes: int
    val_seen_per_scene: int = 2
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)

    def __post_init__(self) -> None:
        for name in ("n_scenes", "episodes_per_scene", "seed", "n_unseen_scenes", "val_seen_per_scene"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.n_scenes < 1 or self.episodes_per_scene < 1:
            raise ValueError(
                f"n_scenes and episodes_per_scene must be >= 1, got {self.n_scenes} and "
                f"{self.episodes_per_scene}"
            )
        if self.n_unseen_scenes >= self.n_scenes:
            raise ValueError(
                f"n_unseen_scenes ({self.n_unseen_scenes}) must leave at least one of the {self.n_scenes} "
                "scenes for training"
            )

    def roles(self) -> list[str]:
        """The split role of each scene: "train" (train + val_seen), "val_unseen" or "test"."""
        n_train = self.n_scenes - self.n_unseen_scenes
        n_val = (self.n_unseen_scenes + 1) // 2
        return ["train"] * n_train + ["val_unseen"] * n_val + ["test"] * (self.n_unseen_scenes - n_val)

    def to_dict(self) -> dict:
        """JSON form (the manifest)."""
        return {"format_version": FORMAT_VERSION, **asdict(self)}


def scene_name(index: int) -> str:
    """File stem of scene ``index``: ``house_00012``."""
    return f"house_{index:05d}"


def _seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=key)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def json_bytes(obj: Any, compress: bool) -> bytes:
    """Deterministic JSON: compact and gzip-compressed (zero timestamp), or indented text."""
    if compress:
        return gzip.compress(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
    return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()


def work_dir(out: Path) -> Path:
    return out / ".work"


def work_file(out: Path, index: int) -> Path:
    return work_dir(out) / f"scene_{index:05d}.json.gz"


def _sim_config() -> SimConfig:
    # Episode generation only navigates (expert rollouts step with observe=False): the camera is never used.
    return SimConfig(cameras=(CameraSpec(uuid="probe", width=1, height=1, modalities=("depth",)),))


def _house(spec: DatasetSpec, index: int, out: Path):
    """Generate house ``index`` and save it under ``out/scenes``."""
    house_seed = int(_seed_sequence(spec.seed, index, 0).generate_state(1)[0] % 2**31)
    scene = generate_house(house_seed)
    scene.name = scene_name(index)
    save_scene(scene, out / "scenes" / scene_name(index))
    return scene, house_seed


def _sample_split(sampler: EpisodeSampler, rng, index: int, split: str, wanted: int, seen: set) -> dict:
    """``wanted`` episodes of one split (fewer if the house allows fewer), none repeating one in ``seen``."""
    episodes, gt = [], {}
    for _ in range(wanted * ATTEMPTS_PER_EPISODE):
        if len(episodes) == wanted:
            break
        episode_id = f"{index}-{split}-{len(episodes)}"
        found = sampler.sample(rng, episode_id)
        if found is None:
            continue
        key = (tuple(found.episode.start_position), tuple(found.episode.goal_position))
        if key not in seen:
            seen.add(key)
            episodes.append(found.episode.to_dict())
            gt[episode_id] = found.gt.to_dict()
    if len(episodes) < wanted:
        logger.warning("%s: %d of %d %s episodes found", scene_name(index), len(episodes), wanted, split)
    return {"episodes": episodes, "gt": gt}


def build_scene(out: str | Path, spec: DatasetSpec, index: int) -> Path:
    """Make scene ``index`` of a dataset: its house files and its episodes, written atomically to ``.work``.

    Returns:
        The path of the scene's intermediate file.
    """
    out = Path(out)
    role = spec.roles()[index]
    scene, house_seed = _house(spec, index, out)
    sim = Simulator(scene, _sim_config())
    try:
        sampler = EpisodeSampler(sim, spec.episode, scene_id=f"{scene_name(index)}.glb")
        rng = np.random.default_rng(_seed_sequence(spec.seed, index, 1))
        wanted = {"train": spec.episodes_per_scene, "val_seen": spec.val_seen_per_scene}
        wanted = wanted if role == "train" else {role: spec.episodes_per_scene}
        seen: set = set()
        splits = {split: _sample_split(sampler, rng, index, split, n, seen) for split, n in wanted.items()}
    finally:
        sim.close()
    record = {"format_version": FORMAT_VERSION, "index": index, "scene": scene_name(index)}
    record.update(house_seed=house_seed, role=role, splits=splits)
    path = work_file(out, index)
    atomic_write(path, json_bytes(record, compress=True))
    return path


def is_scene_done(out: Path, spec: DatasetSpec, index: int) -> bool:
    """Whether scene ``index``'s work file exists; re-saves its house if the scene files went missing."""
    if not work_file(out, index).exists():
        return False
    if not (out / "scenes" / f"{scene_name(index)}.glb").exists():
        _house(spec, index, out)
    return True


def remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files of writers that died (``.<name>.<pid>.<random>.tmp`` of a dead pid)."""
    folders = [work_dir(out), out]
    for tmp in (p for folder in folders if folder.is_dir() for p in folder.glob(".*.tmp")):
        pid = tmp.name.split(".")[-3]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def load_scene_record(out: Path, index: int) -> dict:
    path = work_file(out, index)
    record = json.loads(gzip.decompress(path.read_bytes()))
    if record.get("format_version") != FORMAT_VERSION or record.get("index") != index:
        raise ValueError(
            f"{path}: intermediate file of another format or scene; delete {work_dir(out)} and rerun"
        )
    return record
