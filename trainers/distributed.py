"""Thin helpers over ``torch.distributed`` for runs launched with ``torchrun``.

``torchrun --nproc_per_node=N -m trainers.run ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in each process; :func:`init_distributed` reads them. Without them (a
plain ``python`` launch, or ``WORLD_SIZE=1``) everything here degrades to single-process behaviour, so
trainers call the same functions either way. The backend is NCCL on GPUs and gloo on CPU. Objects exchanged
between ranks travel as JSON text, so only JSON-able values cross processes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import random
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
    process with SIGABRT. Wrappers only reachable through reference cycles are collected here; a group that
    something still holds after destruction is logged as a warning.
    """
    if not is_initialized():
        return
    gc.collect()
    group = weakref.ref(dist.group.WORLD)
    dist.destroy_process_group()
    if group() is not None:
        logger.warning(
            "the process group is still referenced after destroy_process_group (a DDP/FSDP wrapper?): its "
            "threads stop only when that is freed; drop the wrapped model before cleanup()"
        )


def wrap_ddp(module: nn.Module, info: DistInfo, **ddp_kwargs: Any) -> nn.Module:
    """Moves ``module`` to ``info.device`` and, when distributed, wraps it in ``DistributedDataParallel``.

    DDP broadcasts rank 0's parameters at wrap time and averages gradients during ``backward``. Extra keyword
    arguments (e.g. ``find_unused_parameters=True``) go to DDP. Use :func:`unwrap` to reach the agent again.
    """
    module = module.to(info.device)
    if not info.distributed:
        return module
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, **ddp_kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seeds python ``random``, numpy's global RNG and torch (CPU and every CUDA device) with ``seed + rank``.

    Ranks get different streams (different data order, augmentation and exploration) while one seed fixes the
    whole run; model initialisation still agrees across ranks because DDP broadcasts rank 0's parameters.

    Returns:
        The seed used on this rank.
    """
    effective = int(seed) + int(rank)
    random.seed(effective)
    np.random.seed(effective % 2**32)
    torch.manual_seed(effective)
    return effective
