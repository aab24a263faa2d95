"""The per-scene part of System-1 data generation (see :mod:`envs.datasets.system1`).

:class:`System1Spec` holds every argument that determines a dataset. Scene ``k`` of scene set ``s`` (the
index of its name in :data:`SCENE_SETS`) is drawn from ``SeedSequence(seed, spawn_key=(s, k, 0))`` and its
start/goal pairs and trajectories from ``SeedSequence(seed, spawn_key=(s, k, 1))``, so every scene is
independent of the others and of the order they are made in. :func:`build_scene` saves the scene under
``scenes/`` and writes its result atomically to ``.work/<scene>.npz``: evaluation scenes their start/goal
pairs, training scenes their driven trajectories with per-step critic labels.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from envs.datasets.critic import critic_labels, obstacle_distance_field
from envs.datasets.scene_work import json_bytes
from envs.datasets.trajectories import plan_and_drive, sample_near_obstacle_pair, sample_pair
from envs.fileio import atomic_write
from envs.nav.geometry import quaternion_from_yaw, yaws_from_quaternions
from envs.render import CameraSpec
from envs.scenes.arena import generate_arena
from envs.scenes.generate import generate_house
from envs.scenes.io import save_scene
from envs.sim import SimConfig, Simulator

logger = logging.getLogger(__name__)

#: Bumped when the intermediate or final format changes, so stale work folders are refused.
FORMAT_VERSION = 1
#: Scene sets in a fixed order (their index keys the seeds): three training sets, three evaluation splits.
SCENE_SETS = ("train_easy", "train_hard", "train_house", "cluttered_easy", "cluttered_hard", "houses")
EVAL_SPLITS = ("cluttered_easy", "cluttered_hard", "houses")
#: Draws allowed per wanted pair or trajectory before a scene settles for fewer.
ATTEMPTS = 4


@dataclass(frozen=True)
class System1Spec:
    """Everything that determines a System-1 dataset (stored in ``.work/manifest.json``).

    Attributes:
        n_train_easy, n_train_hard, n_train_houses: training scenes of each kind.
        trajectories_per_scene: driven trajectories per training scene.
        n_eval_scenes: scenes per evaluation split (NavDP: 10).
        eval_episodes_per_scene: start/goal pairs per evaluation scene (NavDP: 100).
        seed: master seed.
        min_geodesic, max_geodesic: metres between start and goal (both pairs and trajectories).
        arena_size: floor side of the arenas, metres.
        control_period: seconds per recorded pose (the waypoint controller's tick).
        speed: metres per second of the controller.
        near_obstacle_starts: share of training trajectories that start next to an obstacle, facing it
            (:func:`envs.datasets.trajectories.sample_near_obstacle_pair`: recovery states); 0 draws every
            start uniformly. Written to the manifest only when non-zero, so datasets made before the field
            existed keep their manifest, streams and digest.
    """

    n_train_easy: int
    n_train_hard: int
    n_train_houses: int
    trajectories_per_scene: int
    n_eval_scenes: int = 10
    eval_episodes_per_scene: int = 100
    seed: int = 0
    min_geodesic: float = 2.0
    max_geodesic: float = 15.0
    arena_size: float = 8.0
    control_period: float = 0.1
    speed: float = 0.5
    near_obstacle_starts: float = 0.0

    def __post_init__(self) -> None:
        counts = ("n_train_easy", "n_train_hard", "n_train_houses", "trajectories_per_scene", "n_eval_scenes")
        for name in (*counts, "eval_episodes_per_scene", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.n_train_easy + self.n_train_hard + self.n_train_houses < 1 or self.trajectories_per_scene < 1:
            raise ValueError("at least one training scene and one trajectory per scene are needed")
        if self.n_eval_scenes > 0 and self.eval_episodes_per_scene < 1:
            raise ValueError("eval_episodes_per_scene must be >= 1 when there are evaluation scenes")
        if not 0.5 <= self.min_geodesic < self.max_geodesic:
            raise ValueError(
                f"need 0.5 <= min_geodesic < max_geodesic, got {self.min_geodesic} and {self.max_geodesic}"
            )
        for name in ("arena_size", "control_period", "speed"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not 0.0 <= self.near_obstacle_starts <= 1.0:
            raise ValueError(f"near_obstacle_starts must lie in [0, 1], got {self.near_obstacle_starts!r}")

    def counts(self) -> dict[str, int]:
        """Scenes per scene set."""
        n = self.n_eval_scenes
        train = (self.n_train_easy, self.n_train_hard, self.n_train_houses)
        return dict(zip(SCENE_SETS, (*train, n, n, n), strict=True))

    def units(self) -> list[tuple[str, int]]:
        """Every (scene set, index) to make, training scenes first."""
        return [(s, k) for s, n in self.counts().items() for k in range(n)]

    def to_dict(self) -> dict:
        """JSON form (the manifest); ``near_obstacle_starts`` only when non-zero (see above)."""
        fields = asdict(self)
        if not self.near_obstacle_starts:
            del fields["near_obstacle_starts"]
        return {"format_version": FORMAT_VERSION, **fields}


def scene_name(scene_set: str, index: int) -> str:
    """File stem of a scene: ``cluttered_easy_00003``."""
    return f"{scene_set}_{index:05d}"


def work_file(out: Path, scene_set: str, index: int) -> Path:
    return out / ".work" / f"{scene_name(scene_set, index)}.npz"


def _seeds(spec: System1Spec, scene_set: str, index: int) -> tuple[int, np.random.SeedSequence]:
    key = SCENE_SETS.index(scene_set)
    scene_seed = int(
        np.random.SeedSequence(spec.seed, spawn_key=(key, index, 0)).generate_state(1)[0] % 2**31
    )
    return scene_seed, np.random.SeedSequence(spec.seed, spawn_key=(key, index, 1))


def make_scene(spec: System1Spec, scene_set: str, index: int, out: Path):
    """Generate scene ``index`` of ``scene_set`` and save it under ``out/scenes``."""
    scene_seed, _ = _seeds(spec, scene_set, index)
    if scene_set.endswith("house") or scene_set == "houses":
        scene = generate_house(scene_seed)
    else:
        scene = generate_arena(scene_seed, difficulty=scene_set.rsplit("_", 1)[1], size=spec.arena_size)
    scene.name = scene_name(scene_set, index)
    save_scene(scene, out / "scenes" / scene.name)
    return scene


def navigation_simulator(scene, spec: System1Spec) -> Simulator:
    """A simulator of ``scene`` (a :class:`envs.scenes.Scene` or a scene file) that drives trajectories as
    the dataset's do (its control period and speed); it only navigates: its one-pixel camera is never
    rendered."""
    probe = CameraSpec(uuid="probe", width=1, height=1, modalities=("depth",))
    config = SimConfig(cameras=(probe,), control_period=spec.control_period, max_linear_speed=spec.speed)
    return Simulator(scene, config)


def _pairs(sim: Simulator, spec: System1Spec, rng: np.random.Generator, n: int) -> list[dict]:
    pairs = []
    for _ in range(n * ATTEMPTS):
        if len(pairs) == n:
            break
        found = sample_pair(sim, rng, spec.min_geodesic, spec.max_geodesic)
        if found is not None:
            start, goal, d = found
            yaw = float(rng.uniform(-math.pi, math.pi))
            path = sim.shortest_path(start, goal)
            pairs.append(
                {"start": start.tolist(), "goal": goal.tolist(), "yaw": yaw, "geodesic": d, "path": path}
            )
    return pairs


def _trajectories(sim: Simulator, spec: System1Spec, rng: np.random.Generator, name: str) -> dict:
    field = obstacle_distance_field(sim.grid, sim.config.body.radius)
    arrays: dict[str, list] = {"positions": [], "rotations": [], "labels": [], "lengths": []}
    meta = []
    for _ in range(spec.trajectories_per_scene * ATTEMPTS):
        if len(meta) == spec.trajectories_per_scene:
            break
        # No draw at all when the share is 0: the streams of datasets made without the field stay the same.
        near = spec.near_obstacle_starts > 0 and rng.random() < spec.near_obstacle_starts
        if near:
            found = sample_near_obstacle_pair(sim, rng, spec.min_geodesic, spec.max_geodesic)
            yaw = found[3] if found is not None else None
        else:
            found, yaw = sample_pair(sim, rng, spec.min_geodesic, spec.max_geodesic), None
        drive = plan_and_drive(sim, found[0], found[1], rng, yaw) if found is not None else None
        if drive is None or not drive.reached:
            continue
        label_seed = int(rng.integers(2**31))
        labels = critic_labels(
            sim.grid, field, drive.positions, yaws_from_quaternions(drive.rotations), label_seed
        )
        for key, value in (
            ("positions", drive.positions),
            ("rotations", drive.rotations),
            ("labels", labels),
        ):
            arrays[key].append(value)
        arrays["lengths"].append(len(drive.positions))
        meta.append(
            {"goal": found[1].tolist(), "geodesic": found[2], "smoothed": drive.smoothed,
             "path": drive.path[:: max(1, len(drive.path) // 20)].tolist() + [drive.path[-1].tolist()],
             **({"near_obstacle": near} if spec.near_obstacle_starts > 0 else {})}
        )  # fmt: skip
    if len(meta) < spec.trajectories_per_scene:
        logger.warning("%s: %d of %d trajectories made", name, len(meta), spec.trajectories_per_scene)
    out = {k: np.concatenate(v) if v else np.zeros((0, 3)) for k, v in arrays.items() if k != "lengths"}
    return {**out, "lengths": np.asarray(arrays["lengths"], np.int64), "meta": meta}


def build_scene(out: str | Path, spec: System1Spec, scene_set: str, index: int) -> Path:
    """Make one scene of a dataset and write its result atomically to ``.work/<scene>.npz``."""
    out = Path(out)
    scene = make_scene(spec, scene_set, index, out)
    _, seq = _seeds(spec, scene_set, index)
    rng = np.random.default_rng(seq)
    sim = navigation_simulator(scene, spec)
    try:
        if scene_set in EVAL_SPLITS:
            pairs = _pairs(sim, spec, rng, spec.eval_episodes_per_scene)
            result = {"meta": [{**p, "path": np.asarray(p["path"]).tolist()} for p in pairs]}
        else:
            result = _trajectories(sim, spec, rng, scene.name)
    finally:
        sim.close()
    record = {
        "format_version": FORMAT_VERSION,
        "scene": scene.name,
        "set": scene_set,
        "items": result.pop("meta"),
    }
    buffer = io.BytesIO()
    np.savez(buffer, record=np.frombuffer(json_bytes(record, compress=True), np.uint8), **result)
    path = work_file(out, scene_set, index)
    atomic_write(path, buffer.getvalue())
    return path


def load_work(out: Path, scene_set: str, index: int) -> tuple[dict, dict[str, np.ndarray]]:
    """(record, arrays) of a finished scene; refuses a work file of another format."""
    path = work_file(out, scene_set, index)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    record = json.loads(gzip.decompress(arrays.pop("record").tobytes()))
    if record.get("format_version") != FORMAT_VERSION or record.get("scene") != scene_name(scene_set, index):
        raise ValueError(
            f"{path}: intermediate file of another format or scene; delete {out / '.work'} and rerun"
        )
    return record, arrays


def start_rotation(yaw: float) -> list[float]:
    """[x, y, z, w] of a heading."""
    return quaternion_from_yaw(yaw).tolist()
