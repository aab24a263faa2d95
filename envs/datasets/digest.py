"""Dataset identity: a content digest of a dataset folder, so results name the exact data they came from.

**Digest.** ``"sha256:<64 hex>"``, the SHA-256 over the folder's files taken in the sorted order of their
POSIX paths relative to the folder, each file contributing ``path``, a NUL byte, its size in decimal, a NUL
byte and its bytes. Left out: the top-level ``info.json`` (it holds the digest) and every path with a hidden
component (``.work/``, the generator's scratch folder, and the ``.<name>.<pid>.<random>.tmp`` files of
writes in progress). For a generated dataset that is exactly its scene files (``scenes/``) and episode files
(``{split}/{split}.json.gz`` and ``{split}_gt.json.gz``); the generator is deterministic, so the same
arguments give the same digest, and changing one episode changes it. Scenes kept outside the folder (real
R2R-CE episodes with ``scenes_dir`` elsewhere) are not covered.

**Caching.** The generator records the digest in ``info.json`` with the dataset's format version and the
number and total size of the files it covers (no times: ``info.json`` stays byte-identical across
generations). :func:`read_dataset_identity` trusts that record only while the folder still has that many
files of that total size and none of them is newer than ``info.json`` (which the generator writes last);
otherwise the digest is recomputed. Checking sizes and modification times costs a ``stat`` per file
(milliseconds for the default benchmark's ~250 files) where hashing reads every byte, and periodic
evaluations ask for the digest after every epoch. An edit that keeps a file's size and sets its time back is
not noticed; ``dataset_digest(root, verify="content")`` always hashes. Folders without a record are hashed
once per process and remembered while their files' sizes and times stay the same.

**Run record.** A training run writes ``<run>/dataset.json`` (:func:`write_dataset_record`): the digest and
format version of ``data.dir``, and the digests it was trained on before when a resumed run finds other data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from envs.fileio import atomic_write

logger = logging.getLogger(__name__)

INFO_FILE = "info.json"
#: The run folder's record of the data it was trained on (and each checkpoint's copy of it).
RECORD_FILE = "dataset.json"
_CHUNK = 1 << 20
#: ``{(root, stat signature): digest}`` of folders hashed in this process.
_MEMO: dict[tuple[str, str], str] = {}


def dataset_files(root: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(relative POSIX path, path)`` of every file the digest covers, sorted by relative path.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a dataset folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if not name.startswith(".") and rel != INFO_FILE:
                found.append((rel, path))
    return sorted(found)


def compute_digest(root: str | os.PathLike) -> str:
    """The digest of ``root`` from the files' bytes (see the module docstring)."""
    h = hashlib.sha256()
    for rel, path in dataset_files(root):
        h.update(f"{rel}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def digest_record(root: str | os.PathLike) -> dict[str, Any]:
    """What the generator stores in ``info.json``: ``digest`` and ``digest_files`` (``count``, ``bytes``)."""
    files = dataset_files(root)
    total = sum(path.stat().st_size for _, path in files)
    return {"digest": compute_digest(root), "digest_files": {"count": len(files), "bytes": total}}


def _load_info(root: Path) -> dict[str, Any] | None:
    path = root / INFO_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    return info if isinstance(info, dict) else None


def _format_version(info: dict[str, Any] | None) -> int | None:
    if not info:
        return None
    return info.get("format_version", (info.get("spec") or {}).get("format_version"))


def read_dataset_identity(root: str | os.PathLike) -> dict[str, Any] | None:
    """The identity recorded in ``root/info.json``, when the folder still matches it.

    Returns:
        ``{"digest", "format_version"}``, or None when there is no ``info.json``, it records no digest
        (a dataset generated before digests were recorded), or the files changed since it was written
        (another count or total size, or a file newer than ``info.json``).

    Raises:
        ValueError: ``info.json`` is not valid JSON (the message names it).
    """
    root = Path(root)
    info = _load_info(root)
    recorded = (info or {}).get("digest_files") or {}
    if not info or not isinstance(info.get("digest"), str) or not recorded:
        return None
    written = (root / INFO_FILE).stat().st_mtime_ns
    stats = [path.stat() for _, path in dataset_files(root)]
    same = len(stats) == recorded.get("count") and sum(s.st_size for s in stats) == recorded.get("bytes")
    if not same or any(s.st_mtime_ns > written for s in stats):
        logger.info("%s: files changed since %s was written; its digest is not used", root, INFO_FILE)
        return None
    return {"digest": info["digest"], "format_version": _format_version(info)}


def _stat_signature(root: Path) -> str:
    h = hashlib.sha256()
    for rel, path in dataset_files(root):
        st = path.stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def dataset_identity(root: str | os.PathLike, verify: str = "stat") -> dict[str, Any]:
    """The identity of any dataset folder: the recorded one when it still holds, else computed.

    Args:
        root: the dataset folder (a generated dataset's ``--out``, or any folder of episode files).
        verify: ``stat`` (trust a matching ``info.json`` record, see the module docstring) or ``content``
            (always hash the bytes).

    Returns:
        ``{"dir": absolute path, "digest", "format_version" (None without info.json), "source": "info.json"
        or "computed"}``.

    Raises:
        ValueError: ``verify`` is neither ``stat`` nor ``content``, or ``info.json`` is not valid JSON.
        NotADirectoryError: ``root`` is not a folder.
    """
    if verify not in ("stat", "content"):
        raise ValueError(f"dataset_identity: verify must be 'stat' or 'content', got {verify!r}")
    root = Path(root).resolve()
    out: dict[str, Any] = {"dir": str(root)}
    recorded = read_dataset_identity(root) if verify == "stat" else None
    if recorded is not None:
        return {**out, **recorded, "source": INFO_FILE}
    key = (str(root), _stat_signature(root))
    if verify == "content" or key not in _MEMO:
        start = time.perf_counter()
        _MEMO[key] = compute_digest(root)
        logger.debug("%s: digest computed in %.2f s", root, time.perf_counter() - start)
    return {
        **out,
        "digest": _MEMO[key],
        "format_version": _format_version(_load_info(root)),
        "source": "computed",
    }


def dataset_digest(root: str | os.PathLike, verify: str = "stat") -> str:
    """The digest of a dataset folder (:func:`dataset_identity`'s ``digest``)."""
    return dataset_identity(root, verify)["digest"]


def dataset_root(source: str | os.PathLike | None) -> Path | None:
    """The dataset folder of an episode file or split folder: ``DIR`` for ``DIR/{split}/{split}.json.gz``
    (the R2R-CE layout) and ``DIR/{split}``; the file's own folder otherwise; None for None."""
    if source is None:
        return None
    path = Path(source)
    if path.is_dir():
        return path.parent
    split = path.name.removesuffix(".gz").removesuffix(".json")
    return path.parent.parent if path.parent.name == split else path.parent


def read_dataset_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``folder/dataset.json`` (a run folder, or a checkpoint's ``training_state``), or None when absent.

    Raises:
        ValueError: the file is not a JSON object with a ``digest`` (the message names the file).
    """
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("digest"), str):
        raise ValueError(f"{path}: field 'digest' must be a string like 'sha256:<hex>', got {record!r}")
    return record


def write_dataset_record(run_dir: str | os.PathLike, data_dir: str | os.PathLike) -> dict[str, Any]:
    """Record the identity of ``data_dir`` in ``run_dir/dataset.json`` (atomically) and return it.

    A run resumed on data with another digest keeps the earlier digests under ``previous`` and logs a
    warning, so a checkpoint saved afterwards names the data it was last trained on.
    """
    identity = dataset_identity(data_dir)
    record = {k: identity[k] for k in ("dir", "digest", "format_version")}
    old = read_dataset_record(run_dir)
    previous = list((old or {}).get("previous", []))
    if old is not None and old["digest"] != record["digest"]:
        logger.warning(
            "%s: trained so far on dataset %s, now on %s (%s)",
            run_dir,
            old["digest"],
            record["digest"],
            data_dir,
        )
        previous.append(old["digest"])
    if previous:
        record["previous"] = previous
    atomic_write(Path(run_dir) / RECORD_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return record
