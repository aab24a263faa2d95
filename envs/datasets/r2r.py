"""R2R-CE episode files (VLN-CE ``R2R_VLNCE_v1-3`` layout): reading, validating and writing.

Layout, as VLN-CE uses it::

    {root}/{split}/{split}.json.gz     {"episodes": [episode, ...], "instruction_vocab": {"word_list": ...}}
    {root}/{split}/{split}_gt.json.gz  {"<episode_id>": {"locations": [[x, y, z], ...],
                                                         "actions": [int, ...], "forward_steps": int}}

An episode holds ``episode_id``, ``trajectory_id``, ``scene_id`` (``mp3d/<scan>/<scan>.glb``),
``start_position`` ``[x, y, z]`` and ``start_rotation`` ``[x, y, z, w]`` in Habitat's world frame (y up),
``goals`` (``[{"position": [x, y, z], "radius": 3.0}]``), ``reference_path`` (``[[x, y, z], ...]``),
``instruction`` (``{"instruction_text": str, "instruction_tokens": [int] * 200}``) and ``info``
(``{"geodesic_distance": d}``). Ids are cast to ``str`` as VLN-CE does. Keys this module does not know
are kept and written back unchanged. Whether start positions are navigable is checked by the environment.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.datasets.vocab import Vocabulary
from envs.fileio import atomic_write

logger = logging.getLogger(__name__)

#: Default goal radius (m) of R2R-CE goals; also VLN-CE's success distance.
GOAL_RADIUS = 3.0
#: How far a start rotation's norm may be from 1.
QUATERNION_NORM_TOLERANCE = 1e-3
LAYOUT = "{root}/{split}/{split}.json.gz (or .json), with an optional {split}_gt.json.gz beside it"
_POINTS = "a list of [x, y, z] points"
_XYZ = "3 numbers [x, y, z]"


class EpisodeFormatError(ValueError):
    """An episode or ground-truth file is unreadable or does not follow the R2R-CE format."""


_MISSING = object()  # a field absent from its object, told apart from an explicit null


class _Where:
    """Names the file and episode a value came from, for error messages."""

    def __init__(self, source: str, episode: str | None = None) -> None:
        self.source, self.episode = source, episode

    def error(self, name: str, expected: str, got: Any) -> EpisodeFormatError:
        text = "no such field" if got is _MISSING else json.dumps(got, default=repr)
        text = text if len(text) <= 80 else text[:77] + "..."
        episode = f"episode {self.episode}: " if self.episode is not None else ""
        return EpisodeFormatError(f"{self.source}: {episode}field '{name}' must be {expected}, got {text}")


def _array(raw: dict, key: str, where: _Where, form: str, shape: tuple, name: str = "") -> np.ndarray:
    """``raw[key]``, a list of numbers (no bools), as a finite float64 array of ``shape`` (``None`` = any
    length); ``name`` (default ``key``) is the field named in errors."""
    value, name = raw.get(key, _MISSING), name or key
    if not isinstance(value, list):
        raise where.error(name, form, value)
    try:
        arr = np.array(value) if value else np.zeros([0, *(n or 0 for n in shape[1:])], dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        raise where.error(name, form, value) from None
    ok = arr.dtype.kind in "iuf" and arr.ndim == len(shape)
    ok = ok and all(want in (None, have) for have, want in zip(arr.shape, shape, strict=False))
    if not ok or not np.isfinite(arr).all() or (arr.ndim == 1 and any(isinstance(v, bool) for v in value)):
        raise where.error(name, form, value)
    return arr.astype(np.float64)


def _ids(raw: dict, key: str, where: _Where, form: str, below: int | None = None, name: str = ""):
    """``raw[key]`` as a list of ints in ``[0, below)``; ``None`` when absent or null."""
    value = raw.get(key)
    if value is None:
        return None
    ok = isinstance(value, list) and all(type(v) is int for v in value)  # a bool is no id
    if not ok or (value and (min(value) < 0 or (below is not None and max(value) >= below))):
        raise where.error(name or key, form, value)
    return list(value)


def _identifier(raw: dict, key: str, where: _Where) -> str:
    value = raw.get(key, _MISSING)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise where.error(key, "an int or a non-empty string", value)
    return str(value)


def _unknown(raw: dict, known: tuple | set) -> dict:
    return {k: v for k, v in raw.items() if k not in known}


class _JsonEquality:
    """Equality by JSON content (numpy fields make the dataclass ``==`` unusable)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()  # type: ignore[attr-defined]


@dataclass(eq=False)
class Goal(_JsonEquality):
    """A navigation goal (habitat ``NavigationGoal``).

    Attributes:
        position: (3,) float64 ``[x, y, z]`` in metres, world frame.
        radius: goal radius in metres (3.0 in R2R-CE; a missing or null radius reads as 3.0).
        extra: keys of the goal object this module does not know, written back unchanged.
    """

    position: np.ndarray
    radius: float = GOAL_RADIUS
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        self.radius = float(self.radius)

    def to_dict(self) -> dict:
        """The JSON object of this goal."""
        return {**self.extra, "position": self.position.tolist(), "radius": self.radius}


@dataclass(eq=False)
class Instruction(_JsonEquality):
    """An instruction (habitat ``InstructionData``).

    Attributes:
        instruction_text: the instruction in English.
        instruction_tokens: (L,) token ids in the file's vocabulary, padded with 0 (L = 200 in R2R-CE);
            ``None`` when the file has none.
        extra: keys of the instruction object this module does not know (RxR's ``language`` ...).
    """

    instruction_text: str
    instruction_tokens: list[int] | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON object of this instruction."""
        out = {**self.extra, "instruction_text": self.instruction_text}
        if self.instruction_tokens is not None:
            out["instruction_tokens"] = [int(t) for t in self.instruction_tokens]
        return out


_EPISODE_KEYS = {
    *("episode_id", "trajectory_id", "scene_id", "start_position", "start_rotation", "goals"),
    *("reference_path", "instruction", "info"),
}


@dataclass(eq=False)
class VLNEpisode(_JsonEquality):
    """One R2R-CE episode (habitat ``VLNEpisode``). Positions are metres in the world frame (y up).

    Attributes:
        episode_id: unique id within the split (an int in R2R-CE files, cast to str).
        trajectory_id: id of the R2R path; several instructions share one (cast to str).
        scene_id: scene file relative to the scenes folder, e.g. ``mp3d/17DRP5sb8fy/17DRP5sb8fy.glb``.
        start_position: (3,) float64 ``[x, y, z]``.
        start_rotation: (4,) float64 unit quaternion ``[x, y, z, w]``.
        goals: at least one goal; VLN uses the first.
        reference_path: (N, 3) float64 reference path (R2R nav-graph nodes on the mesh).
        instruction: the instruction.
        info: free-form episode info, ``{"geodesic_distance": d}`` in R2R-CE.
        extra: episode keys this module does not know, written back unchanged.
    """

    episode_id: str
    trajectory_id: str
    scene_id: str
    start_position: np.ndarray
    start_rotation: np.ndarray
    goals: list[Goal]
    reference_path: np.ndarray
    instruction: Instruction
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.episode_id, self.trajectory_id = str(self.episode_id), str(self.trajectory_id)
        self.start_position = np.asarray(self.start_position, dtype=np.float64).reshape(3)
        self.start_rotation = np.asarray(self.start_rotation, dtype=np.float64).reshape(4)
        self.reference_path = np.asarray(self.reference_path, dtype=np.float64).reshape(-1, 3)

    @property
    def goal_position(self) -> np.ndarray:
        """(3,) position of the first goal."""
        return self.goals[0].position

    def to_dict(self) -> dict:
        """The JSON object of this episode (ids written as strings)."""
        return {
            **self.extra,
            "episode_id": self.episode_id,
            "trajectory_id": self.trajectory_id,
            "scene_id": self.scene_id,
            "start_position": self.start_position.tolist(),
            "start_rotation": self.start_rotation.tolist(),
            "goals": [goal.to_dict() for goal in self.goals],
            "reference_path": self.reference_path.tolist(),
            "instruction": self.instruction.to_dict(),
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(
        cls, raw: Any, source: str = "<episodes>", index: int = 0, n_vocab: int | None = None
    ) -> VLNEpisode:
        """Validate and read one decoded episode object (token ids must be below ``n_vocab`` when given).

        Raises ``EpisodeFormatError`` naming ``source``, the episode id (``#index`` when the id itself is
        unusable), the field and the expected form."""
        if not isinstance(raw, dict):
            raise _Where(source, f"#{index}").error("episodes[]", "an object", raw)
        where = _Where(source, _identifier(raw, "episode_id", _Where(source, f"#{index}")))
        scene_id, info = raw.get("scene_id", _MISSING), raw.get("info", {})
        if not isinstance(scene_id, str) or not scene_id:
            raise where.error("scene_id", "a scene path such as 'mp3d/<scan>/<scan>.glb'", scene_id)
        if not isinstance(info, dict):
            raise where.error("info", 'an object such as {"geodesic_distance": 9.3}', info)
        return cls(
            episode_id=where.episode,
            trajectory_id=_identifier(raw, "trajectory_id", where),
            scene_id=scene_id,
            start_position=_array(raw, "start_position", where, _XYZ, (3,)),
            start_rotation=_rotation(raw, where),
            goals=_goals(raw.get("goals", _MISSING), where),
            reference_path=_array(raw, "reference_path", where, _POINTS, (None, 3)),
            instruction=_instruction(raw.get("instruction", _MISSING), where, n_vocab),
            info=info,
            extra=_unknown(raw, _EPISODE_KEYS),
        )


def _rotation(raw: dict, where: _Where) -> np.ndarray:
    quat = _array(raw, "start_rotation", where, "4 numbers [x, y, z, w]", (4,))
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise where.error(
            "start_rotation", f"a unit quaternion [x, y, z, w] (norm {norm:.6g})", raw["start_rotation"]
        )
    return quat


def _goals(value: Any, where: _Where) -> list[Goal]:
    if not isinstance(value, list) or not value or not all(isinstance(g, dict) for g in value):
        raise where.error("goals", 'a non-empty list of {"position": [x, y, z], "radius": r}', value)
    goals = []
    for i, raw in enumerate(value):
        position = _array(raw, "position", where, _XYZ, (3,), name=f"goals[{i}].position")
        radius = GOAL_RADIUS if raw.get("radius") is None else raw["radius"]
        if isinstance(radius, bool) or not isinstance(radius, int | float) or not 0 < radius < math.inf:
            raise where.error(f"goals[{i}].radius", "a positive number of metres", radius)
        goals.append(Goal(position, radius, _unknown(raw, ("position", "radius"))))
    return goals


def _instruction(value: Any, where: _Where, n_vocab: int | None) -> Instruction:
    if not isinstance(value, dict) or not isinstance(value.get("instruction_text"), str):
        form = '{"instruction_text": str, "instruction_tokens": [int, ...]}'
        raise where.error("instruction", form, value)
    form = "a list of token ids >= 0" + (f" below the vocabulary size {n_vocab}" if n_vocab else "")
    tokens = _ids(value, "instruction_tokens", where, form, n_vocab, name="instruction.instruction_tokens")
    extra = _unknown(value, ("instruction_text", "instruction_tokens"))
    return Instruction(value["instruction_text"], tokens, extra)


@dataclass(eq=False)
class GroundTruthPath(_JsonEquality):
    """One entry of ``{split}_gt.json.gz``: the expert's continuous path (VLN-CE nDTW reference).

    Attributes:
        locations: (N, 3) float64 positions visited by the shortest-path expert, metres.
        actions: expert actions (0 STOP, 1 FORWARD, 2 LEFT, 3 RIGHT), or ``None`` when absent.
        forward_steps: number of FORWARD actions, or ``None`` when absent.
        extra: keys this module does not know, written back unchanged.
    """

    locations: np.ndarray
    actions: list[int] | None = None
    forward_steps: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.locations = np.asarray(self.locations, dtype=np.float64).reshape(-1, 3)

    def to_dict(self) -> dict:
        """The JSON object of this entry."""
        out = {**self.extra, "locations": self.locations.tolist()}
        if self.actions is not None:
            out["actions"] = [int(a) for a in self.actions]
        if self.forward_steps is not None:
            out["forward_steps"] = int(self.forward_steps)
        return out

    @classmethod
    def from_dict(cls, raw: Any, source: str, episode_id: str) -> GroundTruthPath:
        """Validate and read one entry; errors name ``source``, the episode id and the field."""
        where = _Where(source, episode_id)
        if not isinstance(raw, dict):
            raise where.error("<entry>", '{"locations": [[x, y, z], ...], "actions": [int, ...]}', raw)
        locations = _array(raw, "locations", where, _POINTS, (None, 3))
        actions = _ids(raw, "actions", where, "a list of action ids >= 0")
        steps = raw.get("forward_steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise where.error("forward_steps", "a non-negative int", steps)
        return cls(locations, actions, steps, _unknown(raw, ("locations", "actions", "forward_steps")))


@dataclass
class R2RDataset:
    """The episodes of one split, with their vocabulary and (optional) ground-truth paths.

    Attributes:
        episodes: the episodes, in file order.
        vocab: the ``instruction_vocab``, or ``None`` when the file has none.
        gt: ``{episode_id: GroundTruthPath}`` from ``{split}_gt.json.gz``, or ``None`` when absent.
        scenes_dir: folder that ``scene_id`` paths are relative to.
        source: the episode file this was read from.
        extra: top-level keys of the episode file this module does not know.
        vocab_extra: ``instruction_vocab`` keys that ``Vocabulary.to_dict`` does not write.
    """

    episodes: list[VLNEpisode]
    vocab: Vocabulary | None = None
    gt: dict[str, GroundTruthPath] | None = None
    scenes_dir: Path | None = None
    source: Path | None = None
    extra: dict = field(default_factory=dict)
    vocab_extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[VLNEpisode]:
        return iter(self.episodes)

    def by_id(self) -> dict[str, VLNEpisode]:
        """``{episode_id: episode}``, built on each call."""
        return {ep.episode_id: ep for ep in self.episodes}

    def reference_locations(self, episode: VLNEpisode) -> np.ndarray:
        """(N, 3) nDTW reference of ``episode``: its gt ``locations`` when present (as VLN-CE), else its
        ``reference_path``."""
        if self.gt is not None and episode.episode_id in self.gt:
            return self.gt[episode.episode_id].locations
        return episode.reference_path

    def resolve_scene(self, scene_id: str) -> Path:
        """Path of a scene file: ``scenes_dir / scene_id`` (an absolute ``scene_id``, or one already under
        ``scenes_dir``, is used as is). Raises ``FileNotFoundError`` naming both when the file is missing."""
        path = Path(scene_id)
        if self.scenes_dir is not None and not path.is_absolute():
            under = str(path).startswith(str(self.scenes_dir))
            path = path if under else Path(self.scenes_dir) / path
        if not path.is_file():
            hint = "scene ids are paths relative to scenes_dir, e.g. mp3d/17DRP5sb8fy/17DRP5sb8fy.glb"
            raise FileNotFoundError(
                f"scene {scene_id!r} not found at {path} (scenes_dir={self.scenes_dir}); {hint}"
            )
        return path


def split_path(root: str | Path, split: str) -> Path:
    """``{root}/{split}/{split}.json.gz``."""
    return Path(root) / split / f"{split}.json.gz"


def _gt_candidates(path: Path) -> list[Path]:
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    return [path.with_name(f"{stem}_gt.json.gz"), path.with_name(f"{stem}_gt.json")]


def _read_json(path: Path) -> Any:
    """Decode a ``.json.gz`` or ``.json`` file; ``EpisodeFormatError`` naming the file if it is corrupt."""
    raw = path.read_bytes()
    is_gzip = raw[:2] == b"\x1f\x8b"
    if path.suffix == ".gz" and not is_gzip:
        raise EpisodeFormatError(f"{path}: not a gzip file (a .json.gz file must be gzip-compressed JSON)")
    try:
        return json.loads(gzip.decompress(raw) if is_gzip else raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise EpisodeFormatError(f"{path}: corrupt gzip data ({exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EpisodeFormatError(f"{path}: not valid JSON ({exc})") from exc


def load_gt(path: str | Path) -> dict[str, GroundTruthPath]:
    """Read a ``{split}_gt.json.gz`` (or ``.json``) file into ``{episode_id: GroundTruthPath}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file {path} not found; expected {LAYOUT}")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise EpisodeFormatError(f'{path}: expected an object {{episode_id: {{"locations": ...}}}}')
    return {str(k): GroundTruthPath.from_dict(v, str(path), str(k)) for k, v in data.items()}


def _read_vocab(data: dict, path: Path) -> tuple[Vocabulary | None, dict]:
    raw = data.get("instruction_vocab")
    if raw is None:
        return None, {}
    try:
        vocab = Vocabulary.from_dict(raw, source="instruction_vocab")
    except ValueError as exc:
        raise EpisodeFormatError(f"{path}: {exc}") from exc
    return vocab, _unknown(raw, set(vocab.to_dict()))


def load_episodes(
    path: str | Path, scenes_dir: str | Path | None = None, gt_path: str | Path | None = None
) -> R2RDataset:
    """Read an R2R-CE split.

    Args:
        path: the episode file (``.json.gz`` or ``.json``), or its split folder ``{root}/{split}``.
        scenes_dir: folder the ``scene_id`` paths are relative to (see ``R2RDataset.resolve_scene``).
        gt_path: ground-truth file; by default ``{split}_gt.json.gz`` (or ``.json``) beside ``path``,
            read when it exists.

    Returns:
        The dataset; ``gt`` is ``None`` when there is no ground-truth file.

    Raises:
        FileNotFoundError: no such file (the message gives the expected layout).
        EpisodeFormatError: the file is corrupt or an episode is malformed (file, episode id and field named).
    """
    path = Path(path)
    path = path / f"{path.name}.json.gz" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"episode file {path} not found; expected {LAYOUT}")
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("episodes"), list):
        raise EpisodeFormatError(f"{path}: expected an object with an 'episodes' list (R2R-CE format)")
    vocab, vocab_extra = _read_vocab(data, path)
    n_vocab = len(vocab) if vocab is not None else None
    episodes = [VLNEpisode.from_dict(raw, str(path), i, n_vocab) for i, raw in enumerate(data["episodes"])]
    seen = {ep.episode_id for ep in episodes}
    if len(seen) < len(episodes):
        dup, count = Counter(ep.episode_id for ep in episodes).most_common(1)[0]
        raise _Where(str(path), dup).error("episode_id", "unique in the file", f"{count} episodes with it")
    gt_path = gt_path or next((p for p in _gt_candidates(path) if p.is_file()), None)
    gt = load_gt(gt_path) if gt_path is not None else None
    if gt is not None and (missing := len(seen.difference(gt))):
        logger.warning("%s: %d of %d episodes have no entry in %s", path, missing, len(episodes), gt_path)
    scenes = Path(scenes_dir) if scenes_dir is not None else None
    extra = _unknown(data, ("episodes", "instruction_vocab"))
    return R2RDataset(episodes, vocab, gt, scenes, path, extra, vocab_extra)


def _write_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as gzip-compressed JSON (level 1: five times faster than 9 for ~7% more bytes) with
    sorted keys and a zero gzip timestamp (same input, same bytes), through a temporary file renamed over
    ``path`` so no half-written file is ever left."""
    payload = gzip.compress(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), 1, mtime=0)
    atomic_write(path, payload)


def save_episodes(dataset: R2RDataset, root: str | Path, split: str) -> Path:
    """Write ``dataset`` as ``{root}/{split}/{split}.json.gz`` and, when ``dataset.gt`` is set,
    ``{split}_gt.json.gz`` beside it; each file is written atomically and deterministically (ids as strings).

    Returns:
        Path of the episode file.
    """
    path = split_path(root, split)
    data: dict[str, Any] = {**dataset.extra, "episodes": [ep.to_dict() for ep in dataset.episodes]}
    if dataset.vocab is not None:
        data["instruction_vocab"] = {**dataset.vocab_extra, **dataset.vocab.to_dict()}
    _write_atomic(path, data)
    gt_file = _gt_candidates(path)[0]
    if dataset.gt is not None:
        _write_atomic(gt_file, {k: v.to_dict() for k, v in dataset.gt.items()})
    elif gt_file.exists():
        logger.warning("%s: left as it was; this dataset has no ground truth to write", gt_file)
    return path
