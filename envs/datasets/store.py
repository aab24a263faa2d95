"""Crash-safe, append-only store of navigation episodes with random access by episode.

On-disk layout of a store rooted at ``root``::

    root/
      store.json            {"format": "navgym-trajectories", "version": 1}
      index.jsonl           one JSON object per committed episode, in commit order:
                            {"index", "episode_id", "scene_id", "round", "n_steps", "file", "bytes", "frames"}
      .lock                 advisory lock (fcntl.flock) taken by a writer for the length of one append
      episodes/<i // 1000:05d>/<i:08d>.safetensors
                            one file per episode. Tensors: positions (T,3) float32, rotations (T,4) float32,
                            actions (T,) int64, executed (T,) int64, optionally labels (T,...) float32,
                            frames/<name> (T,...), extras/<name>.
                            Header metadata (strings): episode_id, scene_id, instruction_text, round,
                            extras (JSON).

Commit protocol, for one episode, under the writer lock: the episode file is written to a temporary name
``.tmp-*`` beside its final name, fsynced and renamed into place; only then is its line appended to
``index.jsonl`` and fsynced. The index line is the commit. A writer killed at any point (even SIGKILL)
leaves either no line (the episode never happened; the next writer removes the orphan file) or a torn last
line without its newline (ignored by readers, cut off by the next writer). Committed files are never
rewritten, so any number of reader processes (DataLoader workers) can read while writers append; a reader
sees new episodes after :meth:`TrajectoryStore.refresh`. Nothing is pickled: arrays go through safetensors,
the rest through JSON.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as safetensors_bytes

logger = logging.getLogger(__name__)

FORMAT = "navgym-trajectories"
VERSION = 1
_SHARD = 1000


def _as_array(name: str, value: Any, dtype: type, tail: tuple[int, ...]) -> np.ndarray:
    """Converts ``value`` to ``dtype`` and checks its shape is ``(T, *tail)``."""
    arr = np.asarray(value)
    if np.issubdtype(dtype, np.integer) and arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"Episode.{name}: expected integer action ids, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim != 1 + len(tail) or arr.shape[1:] != tail:
        want = "(T, " + ", ".join(map(str, tail)) + ")" if tail else "(T,)"
        raise ValueError(f"Episode.{name}: expected shape {want}, got {arr.shape}")
    return arr


@dataclass
class Episode:
    """One recorded episode: the poses at which observations were taken and the actions at each step.

    Attributes:
        episode_id: Episode identifier from the dataset (unique within a round, may repeat across rounds).
        scene_id: Scene identifier (procedural seed name or GLB path) the episode was recorded in.
        instruction_text: Natural-language instruction ("" for tasks without one).
        positions: (T, 3) float32 agent positions [x, y, z] in metres, world frame (y up).
        rotations: (T, 4) float32 agent rotations, unit quaternions [x, y, z, w].
        actions: (T,) int64 expert action label at each step (the training target); -1 where the labels are
            continuous.
        executed: (T,) int64 action actually taken at each step (differs from ``actions`` under DAgger); -1
            for waypoint actions.
        labels: optional (T, ...) float32 continuous expert labels, e.g. (T, n_waypoints, 3) agent-frame
            ``(dx, dy, dyaw)`` waypoints of the expert of a waypoint task.
        round: DAgger round in which the episode was collected (0 for pure expert data).
        frames: Optional stored observations keyed by sensor, each with leading dimension T, e.g.
            ``rgb`` (T, H, W, 3) uint8, ``depth`` (T, H, W, 1) float32 metres.
        extras: Optional JSON-able metadata (goal, geodesic distance, ...); numpy array values (e.g.
            ``progress`` (T,)) are stored as arrays and read back as arrays.
    """

    episode_id: str
    scene_id: str
    instruction_text: str
    positions: np.ndarray
    rotations: np.ndarray
    actions: np.ndarray
    executed: np.ndarray
    round: int = 0
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("episode_id", "scene_id", "instruction_text"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Episode.{name}: expected str, got {type(getattr(self, name)).__name__}")
        if isinstance(self.round, bool) or not isinstance(self.round, int | np.integer) or self.round < 0:
            raise ValueError(f"Episode.round: expected an int >= 0, got {self.round!r}")
        self.round = int(self.round)
        self.positions = _as_array("positions", self.positions, np.float32, (3,))
        self.rotations = _as_array("rotations", self.rotations, np.float32, (4,))
        self.actions = _as_array("actions", self.actions, np.int64, ())
        self.executed = _as_array("executed", self.executed, np.int64, ())
        n = len(self.positions)
        if n < 1:
            raise ValueError(f"Episode {self.episode_id!r}: expected at least one step, got T=0")
        for name in ("rotations", "actions", "executed"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Episode.{name}: expected length T={n} (from positions), got {len(getattr(self, name))}"
                )
        if self.labels is not None:
            self.labels = np.ascontiguousarray(self.labels, dtype=np.float32)
            if self.labels.ndim < 1 or len(self.labels) != n or not np.isfinite(self.labels).all():
                raise ValueError(
                    f"Episode.labels: expected finite float (T={n}, ...) values, got {self.labels.shape}"
                )
        if not (np.isfinite(self.positions).all() and np.isfinite(self.rotations).all()):
            raise ValueError(f"Episode {self.episode_id!r}: positions and rotations must be finite")
        norms = np.linalg.norm(self.rotations, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-2):
            raise ValueError(
                "Episode.rotations: expected unit quaternions [x, y, z, w], "
                f"got norms {norms.min():.3f}..{norms.max():.3f}"
            )
        self.frames = {str(k): np.ascontiguousarray(v) for k, v in self.frames.items()}
        for name, arr in self.frames.items():
            if arr.ndim < 1 or len(arr) != n:
                raise ValueError(
                    f"Episode.frames[{name!r}]: expected leading dimension T={n}, got shape {arr.shape}"
                )

    @property
    def n_steps(self) -> int:
        """Number of steps T."""
        return len(self.positions)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _encode(ep: Episode) -> bytes:
    """Serialises an episode to safetensors bytes (arrays as tensors, the rest as header metadata)."""
    tensors = {
        "positions": ep.positions,
        "rotations": ep.rotations,
        "actions": ep.actions,
        "executed": ep.executed,
    }
    if ep.labels is not None:
        tensors["labels"] = ep.labels
    tensors.update({f"frames/{k}": v for k, v in ep.frames.items()})
    json_extras = {}
    for key, value in ep.extras.items():
        if isinstance(value, np.ndarray):
            tensors[f"extras/{key}"] = np.ascontiguousarray(value)
        else:
            json_extras[key] = value
    try:
        extras = json.dumps(json_extras, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"Episode {ep.episode_id!r}: extras must be JSON-able (or numpy arrays): {err}"
        ) from err
    meta = {
        "format": FORMAT,
        "episode_id": ep.episode_id,
        "scene_id": ep.scene_id,
        "instruction_text": ep.instruction_text,
        "round": str(ep.round),
        "extras": extras,
    }
    return _sorted_header(safetensors_bytes(tensors, metadata=meta))


def _sorted_header(data: bytes) -> bytes:
    """The same safetensors bytes with the header's keys sorted. safetensors writes the metadata from a hash
    map whose order changes from one process to the next, so equal episodes would differ in bytes (and a
    generated dataset's digest would change from run to run). The header keeps its length (padded with
    spaces, as the format allows), so the tensors' offsets stay valid."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:
        return data
    return data[:8] + text + b" " * (n - len(text)) + data[8 + n :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a fsynced temporary file and a rename: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class TrajectoryStore:
    """Append-only episode store; see the module docstring for the layout and the commit protocol.

    Args:
        root: Store directory. Created (with ``store.json``) when missing unless ``readonly``.
        readonly: Open an existing store for reading only; :meth:`append` then raises.

    Raises:
        NotADirectoryError: ``root`` is a file.
        FileNotFoundError: ``readonly`` and ``root`` holds no store.
        ValueError: ``root`` is a non-empty directory that is not a store, or a committed index line is
            corrupt.
    """

    def __init__(self, root: str | os.PathLike, readonly: bool = False) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self._records: list[dict[str, Any]] = []
        self._by_id: dict[str, list[int]] = {}
        self._offset = 0
        self._cleaned = False
        self._open_root()
        self.refresh()

    @property
    def _index_path(self) -> Path:
        return self.root / "index.jsonl"

    def _open_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"TrajectoryStore root {self.root} is a file; expected a directory")
        if self._check_marker():
            return
        if self.readonly:
            raise FileNotFoundError(
                f"No trajectory store at {self.root} (expected {self.root / 'store.json'})"
            )
        self._check_empty()
        self.root.mkdir(parents=True, exist_ok=True)
        with self._writer_lock():  # several processes may create the same store at once
            if not self._check_marker():
                self._check_empty()
                self._index_path.touch()
                _atomic_write(
                    self.root / "store.json", json.dumps({"format": FORMAT, "version": VERSION}).encode()
                )

    def _check_empty(self) -> None:
        """Raise unless ``root`` is missing, empty, or holds only what creating a store writes before its
        ``store.json`` (another process may be creating it right now, or its creator was killed)."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.name == ".lock" or path.name.startswith(".tmp-store.json-"):
                continue
            if path.name == "index.jsonl" and path.stat().st_size == 0:
                continue
            raise ValueError(
                f"{self.root} is a non-empty directory without store.json; not a trajectory store"
            )

    def _check_marker(self) -> bool:
        """True when ``store.json`` exists and names this format; raises when it names another."""
        marker = self.root / "store.json"
        if not marker.is_file():
            return False
        info = json.loads(marker.read_text())
        if info.get("format") != FORMAT or info.get("version") != VERSION:
            raise ValueError(f"{marker}: expected format {FORMAT!r} version {VERSION}, got {info}")
        return True

    def refresh(self) -> int:
        """Reads index lines committed since the last refresh; returns how many episodes became visible."""
        with open(self._index_path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        before = len(self._records)
        for line in data[:end].split(b"\n"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{self._index_path}: corrupt committed line {len(self._records) + 1}: {err}"
                ) from err
            if record.get("index") != len(self._records):
                raise ValueError(
                    f"{self._index_path}: line {len(self._records) + 1} has index {record.get('index')}"
                )
            self._by_id.setdefault(record["episode_id"], []).append(record["index"])
            self._records.append(record)
        self._offset += end + 1
        return len(self._records) - before

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> Episode:
        return self.get(i)

    def _resolve(self, i: int) -> int:
        n = len(self._records)
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"TrajectoryStore index must be an int, got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"episode index {i} out of range for a store of {n} episodes at {self.root}")
        return int(i) % n

    def meta(self, i: int) -> dict[str, Any]:
        """Index record of episode ``i`` (episode_id, scene_id, round, n_steps, file, bytes, frames).

        Reads no episode file, so samplers can use it cheaply.
        """
        return dict(self._records[self._resolve(i)])

    def get(self, i: int, frames: bool = True) -> Episode:
        """Reads episode ``i`` (negative counts from the end); ``frames=False`` skips the stored frames."""
        record = self._records[self._resolve(i)]
        path = self.root / record["file"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: file of committed episode {record['index']} is missing")
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata()
            keys = [k for k in f.keys() if frames or not k.startswith("frames/")]
            arrays = {k: f.get_tensor(k) for k in keys}
        return self._episode(meta, arrays)

    def frame_shape(self, i: int, name: str = "rgb") -> tuple[int, ...] | None:
        """Shape ``(T, H, W, C)`` of episode ``i``'s stored frames ``name`` (reads the file's header only), or
        None when it has none."""
        record = self._records[self._resolve(i)]
        if name not in record.get("frames", []):
            return None
        with safe_open(str(self.root / record["file"]), framework="np") as f:
            return tuple(f.get_slice(f"frames/{name}").get_shape())

    def frames_at(
        self, i: int, steps: Sequence[int], names: Sequence[str] = ("rgb", "depth")
    ) -> dict[str, np.ndarray]:
        """Stored frames of episode ``i`` at the given steps only, ``{name: (len(steps), ...)}`` (reads just
        those rows); raises ``KeyError`` naming the episode when a frame is not stored."""
        record = self._records[self._resolve(i)]
        path = self.root / record["file"]
        with safe_open(str(path), framework="np") as f:
            missing = [n for n in names if f"frames/{n}" not in f.keys()]
            if missing:
                raise KeyError(f"{path}: episode {record['episode_id']!r} has no stored frames {missing}")
            out = {}
            for name in names:
                rows = f.get_slice(f"frames/{name}")
                out[name] = np.concatenate([rows[int(t) : int(t) + 1] for t in steps])
        return out

    @staticmethod
    def _episode(meta: dict[str, str], arrays: dict[str, np.ndarray]) -> Episode:
        extras = json.loads(meta["extras"])
        extras.update({k[len("extras/") :]: v for k, v in arrays.items() if k.startswith("extras/")})
        return Episode(
            episode_id=meta["episode_id"],
            scene_id=meta["scene_id"],
            instruction_text=meta["instruction_text"],
            positions=arrays["positions"],
            rotations=arrays["rotations"],
            actions=arrays["actions"],
            executed=arrays["executed"],
            labels=arrays.get("labels"),
            round=int(meta["round"]),
            frames={k[len("frames/") :]: v for k, v in arrays.items() if k.startswith("frames/")},
            extras=extras,
        )

    def episode_ids(self) -> list[str]:
        """Episode ids in commit order (an id repeats when it was collected in several rounds)."""
        return [r["episode_id"] for r in self._records]

    def contains(self, episode_id: str, round: int | None = None) -> bool:
        """Whether ``episode_id`` is stored (in ``round`` when given)."""
        hits = self._by_id.get(episode_id, [])
        return bool(hits) if round is None else any(self._records[i]["round"] == round for i in hits)

    def rounds(self) -> list[int]:
        """Sorted DAgger rounds present in the store."""
        return sorted({r["round"] for r in self._records})

    def filter(self, round: int | list[int] | None = None, scene_id: str | None = None) -> list[int]:
        """Indices of the episodes of ``round`` (an int or a list of ints) and/or ``scene_id``."""
        rounds = None if round is None else ({round} if isinstance(round, int) else set(round))
        return [
            r["index"]
            for r in self._records
            if (rounds is None or r["round"] in rounds) and (scene_id is None or r["scene_id"] == scene_id)
        ]

    def lengths(self) -> np.ndarray:
        """(N,) int64 number of steps of each episode, from the index (for length-sorted batching)."""
        return np.array([r["n_steps"] for r in self._records], dtype=np.int64)

    def total_steps(self) -> int:
        """Total number of steps over all committed episodes."""
        return int(sum(r["n_steps"] for r in self._records))

    def size_bytes(self) -> int:
        """Bytes on disk of the committed episode files plus the index."""
        return int(sum(r["bytes"] for r in self._records)) + self._index_path.stat().st_size

    @staticmethod
    def _relpath(i: int) -> str:
        return f"episodes/{i // _SHARD:05d}/{i:08d}.safetensors"

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _repair(self) -> None:
        """Under the writer lock: cuts a torn index tail and removes files left by a killed writer."""
        with open(self._index_path, "r+b") as f:
            data = f.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                logger.warning(
                    "%s: dropping a torn uncommitted line (%d bytes)", self._index_path, len(data) - keep
                )
                f.truncate(keep)
                os.fsync(f.fileno())
        if self._cleaned:
            return
        for tmp in self.root.glob("episodes/*/.tmp-*"):
            tmp.unlink(missing_ok=True)
        # A writer killed between the rename and the index line leaves the next episode's file behind.
        (self.root / self._relpath(len(self._records))).unlink(missing_ok=True)
        self._cleaned = True

    def append(self, episode: Episode) -> int:
        """Commits ``episode`` durably and returns its index; safe against concurrent writers and SIGKILL."""
        if self.readonly:
            raise PermissionError(f"TrajectoryStore at {self.root} was opened readonly")
        if not isinstance(episode, Episode):
            raise TypeError(f"append expects an Episode, got {type(episode).__name__}")
        blob = _encode(episode)
        with self._writer_lock():
            self.refresh()
            self._repair()
            i = len(self._records)
            rel = self._relpath(i)
            _atomic_write(self.root / rel, blob)
            record = {
                "index": i,
                "episode_id": episode.episode_id,
                "scene_id": episode.scene_id,
                "round": episode.round,
                "n_steps": episode.n_steps,
                "file": rel,
                "bytes": len(blob),
                "frames": sorted(episode.frames),
            }
            with open(self._index_path, "ab") as f:
                f.write(json.dumps(record).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self.refresh()
        return i

    def __repr__(self) -> str:
        return f"TrajectoryStore({str(self.root)!r}, episodes={len(self)}, rounds={self.rounds()})"
