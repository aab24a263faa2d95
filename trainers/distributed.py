"""Thin helpers over ``torch.distributed`` for runs launched with ``torchrun``.

``torchrun --nproc_per_node=N -m trainers.run ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in each process; :func:`init_distributed` reads them. Without them (a
plain ``python`` launch, or ``WORLD_SIZE=1``) everything here degrades to single-process behaviour, so
trainers call the same functions either way. The backend is NCCL on GPUs and gloo on CPU. Objects exchanged
between ranks travel as JSON text, so only JSON-able values cross processes.

:func:`wrap_model` makes a model data parallel with DDP (a replica per rank) or FSDP (parameters, gradients
and optimiser state sharded over the ranks); :func:`full_state_dict`, :func:`load_full_state_dict` and their
optimiser counterparts move whole, unsharded CPU state dicts in and out of either (pickle-free checkpoints).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

if dist.is_available():
    # torch.distributed.nn.functional binds ``group=group.WORLD`` as default arguments when it is first
    # imported, and DDP imports it lazily (through torch._dynamo), i.e. after init_process_group. Those
    # defaults would then hold the default group, so destroy_process_group would leave its gloo threads
    # running until the interpreter shuts down; a gloo thread that frees a Python-owned tensor then is ended
    # by Python with pthread_exit, which aborts the process ("terminate called without an active exception").
    # Imported here, before any group exists, the defaults bind None.
    import torch.distributed.nn.functional  # noqa: F401

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run.

    Attributes:
        rank: Global rank in ``[0, world_size)``.
        world_size: Number of processes (1 when not distributed).
        local_rank: Rank on this machine; the CUDA device index on GPU machines.
        device: The device this process computes on.
        is_main: True on rank 0, which logs, saves checkpoints and writes reports.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one process is running."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise ValueError(
            f"environment variable {name}={raw!r}: expected an integer (set by torchrun)"
        ) from err


def init_distributed(backend: str | None = None, device: str | None = None) -> DistInfo:
    """Joins the process group described by the torchrun environment variables.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; default NCCL when the device is CUDA, else gloo.
        device: ``"cpu"`` or ``"cuda"`` to force a device; default CUDA when available. On CUDA the process
            uses (and selects) device ``cuda:<LOCAL_RANK>``.

    Returns:
        This process's :class:`DistInfo`. With ``WORLD_SIZE`` unset or 1 no process group is created.

    Raises:
        ValueError: Malformed or inconsistent RANK/WORLD_SIZE/LOCAL_RANK, or missing MASTER_ADDR/MASTER_PORT.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"bad torchrun environment: RANK={rank} WORLD_SIZE={world_size} LOCAL_RANK={local_rank}"
        )
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ValueError(f"init_distributed: device={device!r} requested but CUDA is not available")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are visible"
            )
        torch.cuda.set_device(local_rank)
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
        if missing:
            raise ValueError(f"WORLD_SIZE={world_size} but {missing} are not set; launch with torchrun")
        backend = backend or ("nccl" if use_cuda else "gloo")
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        logger.info("joined process group: rank %d/%d (%s) on %s", rank, world_size, backend, dev)
    return DistInfo(rank, world_size, local_rank, dev, rank == 0)


def is_initialized() -> bool:
    """True when a ``torch.distributed`` process group is running."""
    return dist.is_available() and dist.is_initialized()


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """This rank's share of ``items``: every ``world_size``-th item starting at ``rank``.

    Deterministic and disjoint across ranks; the union over ranks is ``items``. Shards differ in length by at
    most one, so callers that need equal work per rank (collectives per item) must pad.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard: need 0 <= rank < world_size, got rank={rank} world_size={world_size}")
    return list(items[rank::world_size])


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (JSON-able), ordered by rank; ``[obj]`` when not distributed.

    A collective: every rank must call it. Values round-trip through JSON (tuples come back as lists).
    """
    try:
        text = json.dumps(obj)
    except (TypeError, ValueError) as err:
        raise TypeError(f"all_gather_objects: the object must be JSON-able: {err}") from err
    if not is_initialized() or dist.get_world_size() == 1:
        return [json.loads(text)]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, text)
    return [json.loads(t) for t in gathered]


def barrier() -> None:
    """Waits for every rank; no-op when not distributed."""
    if not is_initialized():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def cleanup() -> None:
    """Destroys the process group, stopping its threads and closing its sockets; no-op when not distributed.

    Drop the wrapped model first: a DDP or FSDP wrapper holds the group, whose threads then run on until the
    wrapper is freed, at worst during interpreter shutdown, where a gloo thread that needs the GIL aborts the
    process with SIGABRT. Wrappers only reachable through reference cycles are collected here, and device
    meshes (FSDP's) let go of their groups; a group that something still holds after destruction is logged as
    a warning.
    """
    if not is_initialized():
        return
    gc.collect()
    _release_device_meshes()
    group = weakref.ref(dist.group.WORLD)
    dist.destroy_process_group()
    if group() is not None:
        logger.warning(
            "the process group is still referenced after destroy_process_group (a DDP/FSDP wrapper?): its "
            "threads stop only when that is freed; drop the wrapped model before cleanup()"
        )


STRATEGIES = ("ddp", "fsdp")


def _release_device_meshes() -> None:
    """Makes every live ``DeviceMesh`` drop its references to process groups.

    A mesh keeps its groups in ``_pg_registry`` (for torch.compile), and DTensor's sharding-propagation and
    redistribution caches (one of them in C++) keep every mesh they have seen for the life of the process, so
    after FSDP the default group would never be freed.
    """
    mesh_type = getattr(sys.modules.get("torch.distributed.device_mesh"), "DeviceMesh", None)
    if mesh_type is None:
        return
    for obj in gc.get_objects():
        registry = getattr(obj, "_pg_registry", None) if issubclass(type(obj), mesh_type) else None
        if isinstance(registry, dict):
            registry.clear()


def wrap_model(
    module: nn.Module,
    info: DistInfo,
    strategy: str = "ddp",
    *,
    find_unused_parameters: bool = False,
    shard_modules: Sequence[str] | None = None,
    param_dtype: torch.dtype | str | None = None,
    reduce_dtype: torch.dtype | str | None = None,
    reshard_after_forward: bool | None = None,
    **ddp_kwargs: Any,
) -> nn.Module:
    """Moves ``module`` to ``info.device`` and, when distributed, makes it data parallel.

    Both strategies start every rank from rank 0's parameters and buffers, and after ``backward`` every rank
    holds the gradient averaged over all ranks' batches, so one optimiser step keeps the ranks in lock-step.
    Buffers (running statistics) are not sharded by FSDP and, unlike under DDP, not re-broadcast at each
    forward. Without a process group the module is only moved, whatever the strategy.

    Args:
        module: The model (for a trainer, the loss module around the agent).
        info: This process's place in the run, from :func:`init_distributed`.
        strategy: ``"ddp"``: ``DistributedDataParallel``, a full replica on every rank whose gradients are
            all-reduced during ``backward``. ``"fsdp"``: FSDP2 (``torch.distributed.fsdp.fully_shard``), which
            shards parameters, gradients and optimiser state over the ranks, all-gathers each unit's
            parameters for its forward and backward and reduce-scatters its gradients; it works in place, so
            parameter names do not change, and the parameters become ``DTensor`` shards (save and load them
            with :func:`full_state_dict` and :func:`load_full_state_dict`, and build the optimiser after
            wrapping).
        find_unused_parameters: Set it when some parameters may get no gradient in a step (DDP's option of
            that name; FSDP reduce-scatters zeros for them). FSDP also needs every rank to run the same
            units in the same order, so a submodule that only some ranks run must not be a unit of its own.
        shard_modules: FSDP only: class names of the submodules to shard as units of their own (one
            all-gather each, applied deepest first), e.g. ``["TransformerEncoderLayer"]``. Default: every
            direct child that has parameters, looking through a root whose one child holds everything (such as
            the trainer's loss module around the agent). The root is always sharded too and takes the
            remaining parameters.
        param_dtype: FSDP only: dtype the parameters are all-gathered in for forward and backward, e.g.
            ``"bfloat16"`` on GPUs; the sharded parameters and the optimiser state stay float32.
        reduce_dtype: FSDP only: dtype of the gradient reduce-scatter; float32 when ``param_dtype`` is set.
        reshard_after_forward: FSDP only: free the gathered parameters after forward and gather them again
            for backward, to save memory (the default); False keeps them until backward.
        **ddp_kwargs: DDP only: further ``DistributedDataParallel`` arguments.

    Returns:
        The wrapped module (for FSDP, ``module`` itself); :func:`unwrap` gives back ``module`` either way.

    Raises:
        ValueError: Unknown strategy, options of the other strategy, unknown dtype or module class names.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"wrap_model: unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    fsdp_options = {
        "shard_modules": shard_modules,
        "param_dtype": param_dtype,
        "reduce_dtype": reduce_dtype,
        "reshard_after_forward": reshard_after_forward,
    }
    if strategy == "ddp" and any(v is not None for v in fsdp_options.values()):
        raise ValueError(
            f"wrap_model: {[k for k, v in fsdp_options.items() if v is not None]} are FSDP options"
        )
    if strategy == "fsdp" and ddp_kwargs:
        raise ValueError(f"wrap_model: {sorted(ddp_kwargs)} are not FSDP options")
    mp_policy = _mixed_precision(param_dtype, reduce_dtype)
    units = _shard_units(module, shard_modules) if strategy == "fsdp" else []
    module = module.to(info.device)
    if not info.distributed:
        return module
    if strategy == "ddp":
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            module, device_ids=device_ids, find_unused_parameters=find_unused_parameters, **ddp_kwargs
        )
    reshard = True if reshard_after_forward is None else reshard_after_forward
    return _fully_shard(module, info, units, mp_policy, reshard, find_unused_parameters)


def wrap_ddp(module: nn.Module, info: DistInfo, **ddp_kwargs: Any) -> nn.Module:
    """Moves ``module`` and, when distributed, wraps it in DDP: ``wrap_model(module, info, "ddp", ...)``."""
    return wrap_model(module, info, "ddp", **ddp_kwargs)


def _dtype(value: torch.dtype | str | None) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"wrap_model: unknown dtype {value!r}; e.g. 'bfloat16', 'float16', 'float32'")
    return dtype


def _mixed_precision(param_dtype: torch.dtype | str | None, reduce_dtype: torch.dtype | str | None) -> Any:
    param, reduce = _dtype(param_dtype), _dtype(reduce_dtype)
    if param is None and reduce is None:
        return None
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return MixedPrecisionPolicy(param_dtype=param, reduce_dtype=reduce or torch.float32)


def _shard_units(root: nn.Module, class_names: Sequence[str] | None) -> list[nn.Module]:
    """The submodules to shard before the root, deepest first (FSDP2 is applied bottom-up)."""
    if class_names is None:
        top = root
        while len(list(top.children())) == 1 and not list(top.parameters(recurse=False)):
            top = next(top.children())
        units = [child for child in top.children() if any(True for _ in child.parameters())]
        return units if top is root else [*units, top]
    present = {type(m).__name__ for m in root.modules()}
    unknown = sorted(set(class_names) - present)
    if unknown:
        raise ValueError(
            f"wrap_model: shard_modules {unknown} match no submodule; classes here: {sorted(present)}"
        )
    wanted = set(class_names)
    submodules = list(root.modules())[1:]  # pre-order, so reversed puts every module after its descendants
    return [
        m for m in reversed(submodules) if type(m).__name__ in wanted and any(True for _ in m.parameters())
    ]


def _fully_shard(
    module: nn.Module,
    info: DistInfo,
    units: list[nn.Module],
    mp_policy: Any,
    reshard_after_forward: bool,
    find_unused_parameters: bool,
) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    # FSDP shards whatever each rank holds: start every rank from rank 0's values, as DDP does.
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src=0)
    mesh = init_device_mesh(info.device.type, (info.world_size,))
    options: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": reshard_after_forward}
    if mp_policy is not None:
        options["mp_policy"] = mp_policy
    for unit in units:
        fully_shard(unit, **options)
    fully_shard(module, **options)
    if find_unused_parameters:
        module.set_reduce_scatter_unused_params(True)
    return module


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself: FSDP shards in place)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def _gather_options(all_ranks: bool) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # cpu_offload with full_state_dict gathers onto rank 0 alone; without it every rank gets device tensors.
    return StateDictOptions(full_state_dict=True, cpu_offload=not all_ranks)


def _scatter_options(from_rank0: bool, strict: bool = True) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, broadcast_from_rank0=from_rank0, strict=strict)


def _storages(tensors: Any) -> set[int]:
    """Addresses of the (local) storages of ``tensors``: FSDP's ``DTensor`` shards or plain tensors."""
    tensors = [t.to_local() if hasattr(t, "to_local") else t for t in tensors if isinstance(t, torch.Tensor)]
    return {t.untyped_storage().data_ptr() for t in tensors if t.numel()}


def _snapshot(value: Any, live: set[int]) -> Any:
    """``value`` with every tensor detached on the CPU, copied where it shares memory with a live tensor."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.clone() if value.numel() and value.untyped_storage().data_ptr() in live else value
    if isinstance(value, dict):
        return {k: _snapshot(v, live) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v, live) for v in value)
    return value


def _containers_copied(value: Any) -> Any:
    """``value`` with its dicts and lists copied (torch's loaders rename keys in the dicts they are given)."""
    if isinstance(value, dict):
        return {k: _containers_copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_containers_copied(v) for v in value]
    return value


def full_state_dict(model: nn.Module, *, all_ranks: bool = False) -> dict[str, torch.Tensor]:
    """The model's whole state dict, gathered from the shards: CPU tensors sharing no memory with the model.

    Keys are those of ``unwrap(model).state_dict()``, for a plain, DDP or FSDP model alike. A collective when
    distributed: every rank must call it.

    Args:
        model: The model returned by :func:`wrap_model` (or a plain module).
        all_ranks: Give the dict to every rank; by default only rank 0 gets it (the others get ``{}``), so
            only one process holds a whole copy in memory.
    """
    live = _storages([*model.parameters(), *model.buffers()])
    if not is_initialized():
        return _snapshot(unwrap(model).state_dict(), live)
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return _snapshot(get_model_state_dict(model, options=_gather_options(all_ranks)), live)


def load_full_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], *, from_rank0: bool = False, strict: bool = True
) -> None:
    """Loads a whole state dict (as from :func:`full_state_dict`) into a plain, DDP or FSDP model.

    Each rank keeps its own shard of every tensor; ``state`` itself is left as it is. A collective when
    distributed: every rank must call it.

    Args:
        model: The model returned by :func:`wrap_model` (or a plain module).
        state: Tensors keyed like ``unwrap(model).state_dict()``, on any device.
        from_rank0: Only rank 0 passes the tensors (the others pass ``{}``), which it broadcasts.
        strict: Missing or unexpected keys raise, as in ``nn.Module.load_state_dict``.
    """
    if not is_initialized():
        unwrap(model).load_state_dict(state, strict=strict)
        return
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    set_model_state_dict(model, dict(state), options=_scatter_options(from_rank0, strict))


def full_optimizer_state_dict(
    model: nn.Module, optimizer: torch.optim.Optimizer, *, all_ranks: bool = False
) -> dict[str, Any]:
    """The optimiser's whole state dict, gathered like :func:`full_state_dict`, parameters named by key.

    ``{"state": {param_name: {"step": ..., "exp_avg": ...}}, "param_groups": [{"params": [param_name, ...],
    "lr": ...}]}``: CPU tensors, numbers and strings only, so ``torch.save`` writes it and
    ``torch.load(weights_only=True)`` reads it. A collective when distributed; only rank 0 gets it unless
    ``all_ranks`` (the others get ``{}``).
    """
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    live = _storages(t for state in optimizer.state.values() for t in state.values())
    options = _gather_options(all_ranks or not is_initialized())
    return _snapshot(get_optimizer_state_dict(model, optimizer, options=options), live)


def load_full_optimizer_state_dict(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], *, from_rank0: bool = False
) -> None:
    """Loads a whole optimiser state dict (as from :func:`full_optimizer_state_dict`), resharding it.

    ``optimizer`` must be built over ``model``'s parameters after :func:`wrap_model`. A collective when
    distributed; with ``from_rank0`` only rank 0 passes the state (the others pass ``{}``).
    """
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    options = _scatter_options(from_rank0 and is_initialized())
    set_optimizer_state_dict(model, optimizer, _containers_copied(state), options=options)


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seeds python ``random``, numpy's global RNG and torch (CPU and every CUDA device) with ``seed + rank``.

    Ranks get different streams (different data order, augmentation and exploration) while one seed fixes the
    whole run; model initialisation still agrees across ranks because :func:`wrap_model` starts every rank
    from rank 0's parameters.

    Returns:
        The seed used on this rank.
    """
    effective = int(seed) + int(rank)
    random.seed(effective)
    np.random.seed(effective % 2**32)
    torch.manual_seed(effective)
    return effective
