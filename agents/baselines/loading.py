"""Load a baseline's weights: a converted folder (``model.safetensors`` + ``meta.json`` from
:mod:`agents.baselines.convert`) or a plain state-dict file read with ``torch.load(weights_only=True)``.

Keys and shapes are checked against the model before anything is copied: a checkpoint of another method, with
missing or unexpected keys or with other shapes, fails with the file, the keys and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from agents.baselines.convert import META_FILE
from agents.encoders.common import load_state_dict_checked
from agents.weights import read_json, read_weights


def read_state(path: str | Path, method: str) -> dict[str, torch.Tensor]:
    """The state dict at ``path``: a converted folder of ``method`` or a plain ``torch.save`` state dict."""
    path = Path(path)
    if path.is_dir():
        meta_path = path / META_FILE
        if meta_path.is_file():
            meta = read_json(meta_path, "the converter's meta.json")
            if meta.get("method") != method:
                raise ValueError(
                    f"{path}: converted from a {meta.get('method')!r} checkpoint, not {method!r}"
                )
        return read_weights(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such {method} checkpoint (a converted folder or a state-dict file)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError (pickled objects) or RuntimeError (corrupt zip)
        raise ValueError(
            f"{path}: not a plain {method} state dict ({type(err).__name__}); a file that pickles objects "
            f"must be converted once with `python -m agents.baselines.convert {method} {path} DST`"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a {method} state dict of tensors")
    return state


def load_into(
    model: nn.Module,
    path: str | Path,
    method: str,
    rename: Callable[[str], str | None] = lambda k: k,
    ignore: tuple[str, ...] = (),
) -> None:
    """Copy the weights at ``path`` into ``model`` strictly after checking every key and shape.

    Args:
        rename: maps a file key to the model's key (None drops it), for layouts that differ only in prefixes.
        ignore: file key prefixes that are dropped (parts the published forward never uses).
    """
    state = {}
    for k, v in read_state(path, method).items():
        name = None if k.startswith(ignore) else rename(k)
        if name is not None:
            state[name] = v
    load_state_dict_checked(model, state, source=f"{path} ({method} checkpoint)")
