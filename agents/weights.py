"""An agent directory's weight files: one safetensors file, or shards with an index, and strict JSON reads.

Layout (Hugging Face's): ``model.safetensors``, or ``model-00001-of-0000N.safetensors`` ... with
``model.safetensors.index.json`` (``{"metadata": {"total_size"}, "weight_map": {tensor: file}}``). Every write
goes to a temporary file renamed into place; every read error names the file and what was expected.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path: Path, expected: str) -> Any:
    """Parse a JSON file; a corrupt one raises ``ValueError`` naming the file and what was expected."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); expected {expected}") from None


def write_weights(
    directory: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], max_shard_bytes: int | None
) -> list[str]:
    """Write ``tensors`` as ``model.safetensors``, or as shards plus ``model.safetensors.index.json`` when
    they exceed ``max_shard_bytes``; removes weight files of the other layout; returns the file names."""
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    shards: list[dict[str, torch.Tensor]] = [{}]
    if max_shard_bytes is not None and total > max_shard_bytes:
        size = 0
        for key, t in tensors.items():
            nbytes = t.numel() * t.element_size()
            if shards[-1] and size + nbytes > max_shard_bytes:
                shards.append({})
                size = 0
            shards[-1][key] = t
            size += nbytes
    if len(shards) == 1:
        names = [WEIGHTS_FILE]
        shards = [tensors]
    else:
        names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards, strict=True):
        atomic_write(directory / name, lambda p, shard=shard: save_file(shard, p, metadata=metadata))
    if len(names) > 1:
        index = {
            "metadata": {"total_size": total},
            "weight_map": {k: n for n, sh in zip(names, shards, strict=True) for k in sh},
        }
        atomic_write(
            directory / WEIGHTS_INDEX_FILE, lambda p: Path(p).write_text(json.dumps(index, indent=1))
        )
    files = names + ([WEIGHTS_INDEX_FILE] if len(names) > 1 else [])
    stale = [WEIGHTS_FILE, WEIGHTS_INDEX_FILE, *(p.name for p in directory.glob("model-*-of-*.safetensors"))]
    for name in set(stale) - set(files):  # weights of an earlier save in the other layout
        (directory / name).unlink(missing_ok=True)
    return files


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``directory`` (one file or the shards its index names); errors name the file."""
    index_path = directory / WEIGHTS_INDEX_FILE
    if index_path.is_file():
        index = read_json(index_path, "an object with a 'weight_map' of tensor name -> shard file")
        if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
            raise ValueError(
                f"{index_path}: expected an object with a 'weight_map' of tensor name -> shard file"
            )
        files = sorted(set(index["weight_map"].values()))
    else:
        files = [WEIGHTS_FILE]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (expected the agent's safetensors weights)")
        try:
            state.update(load_file(str(path)))
        except Exception as err:  # safetensors raises its own error type for truncated or foreign files
            raise ValueError(
                f"{path}: not a readable safetensors file ({err}); expected the agent's weights"
            ) from None
    return state
