"""Convert a released System-1 baseline checkpoint, once, into safetensors + JSON.

    python -m agents.baselines.convert iplanner plannernet.pt weights/iplanner
    python -m agents.baselines.convert gnm gnm_large.pth weights/gnm
    python -m agents.baselines.convert ddppo pointnav_weights.pth weights/ddppo

Some released files pickle whole objects (``../shared/reference/checkpoints.md``): iPlanner's
``(PlannerNet, val_loss)``, GNM's and ViNT's ``{"model": <module>, "epoch", "optimizer", ...}``, DD-PPO's
``{"state_dict", "config": <config object>}``. Nothing in NavGym unpickles such a file at run time: this
command, run by the user on a file they trust, reads it with the allow-list unpickler of
:mod:`agents.baselines.safe_pickle` (only the classes listed in :data:`METHODS` for that method, each kept as
inert data; any other class is refused by name) and writes ``DST/model.safetensors`` (the flat state dict, key
names as the method's own model) and ``DST/meta.json`` (method, source file and its SHA-256, scalar fields
such as ``val_loss`` or ``epoch``, the classes the pickle named). Plain state dicts (NoMaD, NavDP) need no
conversion: their loaders read them with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agents.baselines.safe_pickle import TORCH_MODULES, Record, load_archive, module_state_dict
from agents.weights import atomic_write, write_weights

logger = logging.getLogger(__name__)

META_FILE = "meta.json"


def _scalars(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for k in keys:
        v = obj.get(k)
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, int | float | str | bool):
            out[k] = v
    return out


def _strip_data_parallel(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _iplanner(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], Record)):
        raise ValueError(
            f"{source}: expected iPlanner's (PlannerNet, val_loss) tuple, got {type(obj).__name__}"
        )
    loss = obj[1].item() if isinstance(obj[1], torch.Tensor) else obj[1]
    meta = {"val_loss": float(loss)} if isinstance(loss, int | float) else {}
    return _strip_data_parallel(module_state_dict(obj[0], f"{source}[0]")), meta


def _vint_family(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not isinstance(obj, dict) or "model" not in obj:
        raise ValueError(f"{source}: expected a dict with a pickled 'model' (GNM / ViNT training checkpoint)")
    model = obj["model"]
    if isinstance(model, Record) and model.cls_name.endswith("DataParallel"):
        model = model.attrs().get("_modules", {}).get("module", model)
    state = _strip_data_parallel(module_state_dict(model, f"{source}['model']"))
    return state, _scalars(obj, ("epoch", "avg_total_test_loss"))


def _ddppo(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise ValueError(f"{source}: expected DD-PPO's {{'state_dict', 'config'}} dict")
    state = dict(obj["state_dict"])
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{source}: state_dict entries that are not tensors: {bad[:5]}")
    return state, {"config": "dropped (pickled configuration object)"} if "config" in obj else {}


#: The activation functions a pickled ``nn.TransformerEncoderLayer`` refers to (kept as inert names).
TRANSFORMER_ACTIVATIONS = ("torch._C._nn.gelu", "torch.nn.functional.gelu", "torch.nn.functional.relu")


@dataclass(frozen=True)
class Method:
    """How one method's released file is read: the classes its pickle may name and the extraction."""

    allowed: tuple[str, ...]
    extract: Callable[[Any, str], tuple[dict[str, torch.Tensor], dict[str, Any]]]


METHODS: dict[str, Method] = {
    "iplanner": Method(
        (
            "planner_net.PlannerNet",
            "planner_net.Decoder",
            "percept_net.PerceptNet",
            "percept_net.BasicBlock",
            *TORCH_MODULES,
        ),
        _iplanner,
    ),
    "gnm": Method(
        ("vint_train.models.gnm.*", "vint_train.models.base_model.*", *TORCH_MODULES), _vint_family
    ),
    "vint": Method(
        (
            "vint_train.models.vint.*",
            "vint_train.models.base_model.*",
            "efficientnet_pytorch.model.*",
            "efficientnet_pytorch.utils.*",
            *TRANSFORMER_ACTIVATIONS,
            *TORCH_MODULES,
        ),
        _vint_family,
    ),
    "ddppo": Method(("habitat.config.default.Config", "yacs.config.CfgNode"), _ddppo),
}


def convert(method: str, src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Convert ``src`` of ``method`` into ``dst/model.safetensors`` + ``dst/meta.json``; returns the meta."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; the converter reads {sorted(METHODS)}")
    src, dst = Path(src), Path(dst)
    spec = METHODS[method]
    obj, seen = load_archive(src, spec.allowed)
    state, extra = spec.extract(obj, str(src))
    if not state:
        raise ValueError(f"{src}: no tensors found in the {method} checkpoint")
    state = {k: v.contiguous() for k, v in state.items()}
    meta = {
        "method": method,
        "source": src.name,
        "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "n_tensors": len(state),
        "n_parameters": int(sum(v.numel() for v in state.values() if v.is_floating_point())),
        "classes": sorted(seen),
        **extra,
    }
    dst.mkdir(parents=True, exist_ok=True)
    write_weights(dst, state, {"method": method}, None)
    atomic_write(dst / META_FILE, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    return meta


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m agents.baselines.convert METHOD SRC DST``."""
    p = argparse.ArgumentParser(prog="python -m agents.baselines.convert", description=__doc__.split("\n")[0])
    p.add_argument("method", choices=sorted(METHODS))
    p.add_argument("src", type=Path, help="the released checkpoint file")
    p.add_argument("dst", type=Path, help="output folder (model.safetensors + meta.json)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    meta = convert(args.method, args.src, args.dst)
    logger.info("wrote %s: %d tensors, %d parameters", args.dst, meta["n_tensors"], meta["n_parameters"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
