"""The checkpoint layout, read alike by trainers (to resume) and benchmarks (to evaluate).

::

    <run>/checkpoints/
      <step:06d>/
        agent/               config.json + model.safetensors (``Agent.save``)
        training_state/      state.json, optimizer.pt, rng.json, ... (``trainers.checkpoint.save_checkpoint``)
        checksums.json       {"format": "navgym-checksums", "sha256": {"agent/config.json": "<hex>", ...}}:
                             every other file of the checkpoint, written last
      last                   symlink to the newest saved step folder (``last.txt`` holding its name where the
                             filesystem has no symlinks)

This module lists checkpoints, resolves ``last``, finds the agent folder of a run, checkpoint or agent path,
and writes and verifies ``checksums.json``; :mod:`trainers.checkpoint` writes everything else. A damaged file
is reported as a :class:`CheckpointError` that names it and says what was expected. Checkpoints saved before
manifests existed (their ``state.json`` does not declare one) are read without one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envs.fileio import atomic_write

STEP_DIR = re.compile(r"^\d{6,}$")
CHECKSUMS_FILE = "checksums.json"
CHECKSUMS_FORMAT = "navgym-checksums"
AGENT_FILES = ("agent/config.json",)
STATE_FILE = "training_state/state.json"
LAYOUT = (
    "<step:06d>/{agent/ (config.json, model.safetensors or its shards + index), training_state/state.json, "
    "checksums.json}"
)


def weights_file(agent_dir: Path) -> str:
    """The file that says an agent folder holds weights: ``model.safetensors``, else the shards' index
    ``model.safetensors.index.json`` when there is one (see :mod:`agents.weights`)."""
    from agents.weights import WEIGHTS_FILE, WEIGHTS_INDEX_FILE

    return WEIGHTS_INDEX_FILE if (agent_dir / WEIGHTS_INDEX_FILE).is_file() else WEIGHTS_FILE


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable or not what was saved; ``path`` names it."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)


def checkpoints_dir(path: str | os.PathLike) -> Path:
    """``<run>/checkpoints`` of a run folder (or the folder itself when it is a ``checkpoints`` folder)."""
    path = Path(path)
    return path if path.name == "checkpoints" else path / "checkpoints"


def is_complete(path: Path) -> bool:
    """Whether a step folder has an ``agent/`` folder and ``training_state/state.json``."""
    return (path / "agent").is_dir() and (path / STATE_FILE).is_file()


def step_folders(run_dir: str | os.PathLike) -> list[Path]:
    """Every ``<step:06d>`` folder of a run (complete or not), highest step first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: int(p.name), reverse=True)


def read_last(run_dir: str | os.PathLike) -> Path | None:
    """The step folder ``last`` (or ``last.txt``) names, when it names an existing one."""
    root = checkpoints_dir(run_dir)
    name = None
    if (root / "last").is_symlink():
        name = os.readlink(root / "last")
    elif (root / "last.txt").is_file():
        name = (root / "last.txt").read_text().strip()
    if name and STEP_DIR.match(Path(name).name) and (root / Path(name).name).is_dir():
        return root / Path(name).name
    return None


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run (run folder or its ``checkpoints/``), oldest step first."""
    return [p for p in reversed(step_folders(run_dir)) if is_complete(p)]


def candidates(run_dir: str | os.PathLike) -> list[Path]:
    """Step folders in the order a reader tries them: ``last``'s, then the others from the highest step."""
    last = read_last(run_dir)
    return ([last] if last else []) + [p for p in step_folders(run_dir) if p != last]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: str | os.PathLike) -> Path:
    """Write ``folder/checksums.json`` (SHA-256 of every file below ``folder``) atomically; call it last."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE)
    sums = {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}
    data = {"format": CHECKSUMS_FORMAT, "algorithm": "sha256", "sha256": sums}
    atomic_write(folder / CHECKSUMS_FILE, (json.dumps(data, indent=2) + "\n").encode())
    return folder / CHECKSUMS_FILE


def read_json(path: Path, expected: str) -> Any:
    """The JSON in ``path``; a :class:`CheckpointError` naming it and ``expected`` when it is missing or
    unreadable."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(path, f"missing; expected {expected}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(path, f"not readable JSON ({err}); expected {expected}") from None


def read_checksums(folder: Path) -> dict[str, str] | None:
    """The ``{relative path: sha256}`` of ``folder/checksums.json``; None when the file does not exist."""
    path = folder / CHECKSUMS_FILE
    if not path.exists():
        return None
    expected = f'{{"format": "{CHECKSUMS_FORMAT}", "sha256": {{file: hex digest}}}}'
    data = read_json(path, expected)
    if not isinstance(data, Mapping) or data.get("format") != CHECKSUMS_FORMAT:
        raise CheckpointError(path, f"expected {expected}")
    sums = data.get("sha256")
    if not isinstance(sums, Mapping) or not all(
        _safe_name(k) and isinstance(v, str) for k, v in sums.items()
    ):
        raise CheckpointError(path, f"expected {expected} with relative file names")
    return dict(sums)


def _safe_name(name: Any) -> bool:
    return isinstance(name, str) and not Path(name).is_absolute() and ".." not in Path(name).parts


def verify_checkpoint(folder: str | os.PathLike, only: str = "") -> None:
    """Check a step folder's files against its ``checksums.json``.

    Args:
        folder: The checkpoint ``<run>/checkpoints/<step:06d>``.
        only: Check only the files whose relative path starts with this (``"agent/"`` to evaluate,
            ``"training_state/"`` to restore the optimiser); ``""`` checks the whole checkpoint, which must
            then also be complete.

    Raises:
        CheckpointError: the first damaged file: missing, unreadable, or whose digest differs from the
            manifest's; or the manifest itself when it is missing (the checkpoint's ``state.json`` declares
            one) or unreadable.
    """
    folder = Path(folder)
    sums = read_checksums(folder)
    if sums is None:
        _check_unlisted(folder, only)
        return
    for name in (*AGENT_FILES, f"agent/{weights_file(folder / 'agent')}", STATE_FILE):
        if name.startswith(only) and name not in sums:
            raise CheckpointError(folder / CHECKSUMS_FILE, f"does not list {name}; expected {LAYOUT}")
    for name, digest in sorted(sums.items()):
        if not name.startswith(only):
            continue
        path = folder / name
        if not path.is_file():
            raise CheckpointError(path, f"missing; {CHECKSUMS_FILE} lists it")
        actual = sha256_file(path)
        if actual != digest:
            raise CheckpointError(
                path, f"damaged: sha256 {actual[:12]}... differs from {digest[:12]}... in {CHECKSUMS_FILE}"
            )


def _check_unlisted(folder: Path, only: str) -> None:
    """A checkpoint without a manifest passes only when its ``state.json`` declares none (saved before
    manifests existed); an agent folder without a training state (evaluation only) passes as it is."""
    needs_state = not only.startswith("agent/")
    state_file = folder / STATE_FILE
    if needs_state or state_file.is_file():
        try:
            state = read_json(state_file, "the training state save_checkpoint writes")
        except CheckpointError:
            if needs_state:
                raise
            state = None
        if isinstance(state, Mapping) and state.get("checksums"):
            raise CheckpointError(folder / CHECKSUMS_FILE, "missing; state.json says it was saved with one")
    for name in (*AGENT_FILES, f"agent/{weights_file(folder / 'agent')}") if not only else ():
        if not (folder / name).is_file():
            raise CheckpointError(folder / name, "missing; expected a checkpoint laid out as " + LAYOUT)


def newest_intact(run_dir: str | os.PathLike) -> tuple[Path | None, list[CheckpointError]]:
    """The first step folder of :func:`candidates` that passes :func:`verify_checkpoint`, and the problems of
    those tried before it (``(None, problems)`` when none passes)."""
    damaged = []
    for path in candidates(run_dir):
        try:
            verify_checkpoint(path)
        except CheckpointError as err:
            damaged.append(err)
            continue
        return path, damaged
    return None, damaged


def find_agent_dir(path: str | os.PathLike) -> Path:
    """The agent folder (``config.json`` + ``model.safetensors``) of an agent folder, a checkpoint, a run or
    its ``checkpoints/`` folder (the checkpoint ``last`` names, else the highest step); symlinks resolved.
    The agent files of a checkpoint with a manifest are verified; a damaged checkpoint is never passed over
    for an older one.

    Raises:
        FileNotFoundError: no agent folder, checkpoint or run at ``path``; the message names it, the agent
            names and the accepted forms.
        CheckpointError: the checkpoint's agent files are missing or damaged; the message names the file.
    """
    from agents.base import AGENTS

    path = Path(path)
    root = path if path.name == "checkpoints" else path / "checkpoints"
    if (path / "config.json").is_file() and (path / weights_file(path)).is_file():
        agent_dir = path
    elif (path / "agent").is_dir():
        agent_dir = path / "agent"
    elif root.is_dir() and candidates(root):
        agent_dir = candidates(root)[0] / "agent"
    else:
        raise FileNotFoundError(
            f"{path}: not a registered agent ({', '.join(AGENTS.names())}) nor an agent folder "
            "(config.json + model.safetensors), checkpoint <run>/checkpoints/<step>, or run folder"
        )
    agent_dir = agent_dir.resolve()
    for name in ("config.json", weights_file(agent_dir)):
        if not (agent_dir / name).is_file():
            raise CheckpointError(agent_dir / name, "missing; expected an agent folder written by Agent.save")
    if agent_dir.name == "agent":
        verify_checkpoint(agent_dir.parent, only="agent/")
    return agent_dir
