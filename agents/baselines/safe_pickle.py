"""Read a ``torch.save`` zip archive that holds pickled objects without running any of their code.

Released checkpoints of some System-1 baselines pickle whole ``nn.Module`` objects (iPlanner's
``torch.save((net, val_loss))``, GNM's and ViNT's ``{"model": net, ...}``) or configuration objects (DD-PPO's
``{"state_dict", "config"}``). ``torch.load(weights_only=True)`` refuses them, and a plain ``torch.load``
would import and run whatever the file names. :class:`AllowListUnpickler` does neither:

- every class the pickle names must be on the caller's allow-list (exact ``module.Name`` strings, or
  ``module.prefix.*`` patterns); anything else raises :class:`RefusedClass` naming it;
- allowed classes are never imported: each becomes an inert :class:`Record` that only keeps the state the
  pickle gives it (attributes, items), so unpickling executes no code from the file;
- tensors are rebuilt here from the archive's storages (``torch._utils._rebuild_tensor_v2`` /
  ``_rebuild_parameter`` are read as names, and re-implemented with ``torch.frombuffer``); ``collections.
  OrderedDict``, ``set``, ``torch.Size`` and numpy scalars are the only other callables, all side-effect free.

:func:`module_state_dict` then walks a recorded ``nn.Module`` tree (``_parameters``, persistent ``_buffers``,
``_modules``) into the flat ``state_dict`` the module would have given.
"""

from __future__ import annotations

import collections
import fnmatch
import io
import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Storage classes of torch's pickles -> element dtype.
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

#: ``torch.nn`` layer classes that the released checkpoints are made of; recorded, never imported.
TORCH_MODULES = tuple(
    f"torch.nn.modules.{name}"
    for name in (
        "container.Sequential",
        "container.ModuleList",
        "container.ModuleDict",
        "conv.Conv1d",
        "conv.Conv2d",
        "conv.ConvTranspose2d",
        "linear.Linear",
        "linear.Identity",
        "linear.NonDynamicallyQuantizableLinear",
        "batchnorm.BatchNorm1d",
        "batchnorm.BatchNorm2d",
        "normalization.GroupNorm",
        "normalization.LayerNorm",
        "activation.ReLU",
        "activation.ReLU6",
        "activation.ELU",
        "activation.SiLU",
        "activation.GELU",
        "activation.Sigmoid",
        "activation.Tanh",
        "activation.MultiheadAttention",
        "pooling.MaxPool2d",
        "pooling.AvgPool2d",
        "pooling.AdaptiveAvgPool2d",
        "dropout.Dropout",
        "flatten.Flatten",
        "padding.ZeroPad2d",
        "sparse.Embedding",
        "rnn.LSTM",
        "rnn.GRU",
        "transformer.TransformerEncoder",
        "transformer.TransformerEncoderLayer",
    )
) + ("torch.nn.parallel.data_parallel.DataParallel",)


class RefusedClass(pickle.UnpicklingError):
    """The pickle names a class outside the allow-list."""


class Record(dict):
    """An allowed class's object, kept as data: ``cls_name`` and the ``state`` its pickle gave it.

    It is a ``dict`` so that pickled mappings (configuration nodes) keep their items.
    """

    cls_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def attrs(self) -> dict[str, Any]:
        """The recorded attributes (a pickled ``__dict__``, or the dict part of a ``(dict, slots)`` state)."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2:
            state = state[0]
        return state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"Record({self.cls_name})"


def _record_class(name: str) -> type[Record]:
    return type(name.rsplit(".", 1)[-1], (Record,), {"cls_name": name, "__module__": __name__})


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` on a flat storage tensor; checks the view lies inside it."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    extent = int(offset) + sum((s - 1) * st for s, st in zip(size, stride, strict=True) if s > 0)
    if any(s == 0 for s in size):
        return torch.empty(size, dtype=storage.dtype)
    if offset < 0 or extent >= storage.numel():
        raise pickle.UnpicklingError(
            f"tensor view (offset {offset}, size {size}, stride {stride}) exceeds its storage of "
            f"{storage.numel()} elements"
        )
    return torch.as_strided(storage, size, stride, int(offset)).clone()


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, *_: Any) -> torch.Tensor:
    return data


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or data is None:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r} is not plain data")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def _numpy_dtype(name: str, *_: Any) -> np.dtype:
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"numpy dtype {name!r} holds objects")
    return dtype


SAFE_CALLABLES: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set,
    "__builtin__.set": set,
    "builtins.frozenset": frozenset,
    "torch.Size": torch.Size,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.dtype": _numpy_dtype,
}


class AllowListUnpickler(pickle.Unpickler):
    """Unpickle ``data.pkl`` of a torch zip archive with only allow-listed classes; see the module docstring.

    Args:
        file: the pickle stream.
        archive: the open zip archive (storages are read from ``<prefix>/data/<key>``).
        prefix: the archive's top folder.
        allowed: exact ``module.Name`` strings or ``fnmatch`` patterns (``vint_train.models.*``).
        source: the file's name, for messages.
    """

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, allowed: Iterable[str], source: str):
        super().__init__(file)
        self.archive, self.prefix, self.source = archive, prefix, source
        self.allowed = tuple(allowed)
        self.classes: dict[str, type[Record]] = {}
        self.seen: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in SAFE_CALLABLES:
            return SAFE_CALLABLES[full]
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if not any(full == a or fnmatch.fnmatchcase(full, a) for a in self.allowed):
            named = ", ".join(a for a in self.allowed if not a.startswith("torch.nn."))
            raise RefusedClass(
                f"{self.source}: refuses to unpickle {full}: not on the allow-list of this checkpoint kind "
                f"({named} and torch.nn layers)"
            )
        self.seen.add(full)
        return self.classes.setdefault(full, _record_class(full))

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self.source}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"{self.source}: storage {key!r} has unknown type {dtype!r}")
        try:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
        except KeyError:
            raise pickle.UnpicklingError(f"{self.source}: storage {key!r} missing from the archive") from None
        flat = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if flat.numel() != int(numel):
            raise pickle.UnpicklingError(
                f"{self.source}: storage {key!r} holds {flat.numel()} elements, the pickle says {numel}"
            )
        return flat


def load_archive(path: str | Path, allowed: Iterable[str]) -> tuple[Any, set[str]]:
    """Unpickle a ``torch.save`` zip archive with :class:`AllowListUnpickler`; returns (object, classes seen).

    Raises:
        ValueError: the file is missing or not a torch zip archive (legacy non-zip files are not read).
        RefusedClass: it names a class outside ``allowed``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a torch zip archive (torch.save since torch 1.6); re-save it with a recent torch"
        )
    with zipfile.ZipFile(path) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise ValueError(f"{path}: expected one <name>/data.pkl in the archive, found {pkls}")
        prefix = pkls[0].split("/")[0]
        unpickler = AllowListUnpickler(io.BytesIO(archive.read(pkls[0])), archive, prefix, allowed, str(path))
        obj = unpickler.load()
    return obj, unpickler.seen


def module_state_dict(obj: Any, where: str = "model") -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a recorded ``nn.Module`` tree (parameters, persistent buffers, submodules)."""
    if not isinstance(obj, Record) or "_modules" not in obj.attrs():
        raise ValueError(f"{where} is not a pickled torch module (got {obj!r})")
    out: dict[str, torch.Tensor] = {}

    def walk(rec: Record, prefix: str) -> None:
        attrs = rec.attrs()
        skip = set(attrs.get("_non_persistent_buffers_set") or ())
        for group in ("_parameters", "_buffers"):
            for name, value in (attrs.get(group) or {}).items():
                if value is not None and name not in skip:
                    out[prefix + name] = value
        for name, child in (attrs.get("_modules") or {}).items():
            if isinstance(child, Record):
                walk(child, f"{prefix}{name}.")

    walk(obj, "")
    return out
