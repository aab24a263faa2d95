"""Atomic training checkpoints with exact resume (weights, optimiser, scheduler, RNG, step, trainer state).

On-disk layout::

    <run>/checkpoints/
      <step:06d>/
        agent/                 written by ``agent.save(dir)``: config.json + model.safetensors
        training_state/
          state.json           {"format", "version", "step", "time", "extra_state", "optimizer", "scheduler"}
          optimizer.pt         ``optimizer.state_dict()`` (torch.save; read back with ``weights_only=True``)
          scheduler.pt         ``scheduler.state_dict()`` (only when a scheduler was given)
          rng.json             {"ranks": [state of rank 0, rank 1, ...]}, each from ``capture_rng_state``:
                               python ``random``, numpy's global bit generator, torch CPU and CUDA states
          config.json, config.yaml   the resolved run config (only when one was given)
          dataset.json         a copy of ``<run>/dataset.json``, the identity of the data the run trained on
                               (:mod:`envs.datasets.digest`), when the run folder has one
        checksums.json         SHA-256 of every other file, written last (see :mod:`agents.checkpoints`)
      last                     symlink to the newest saved ``<step:06d>`` (``last.txt`` holding its name
                               where the filesystem has no symlinks)
      .tmp-<step>-<hex>/       a save in progress, renamed to ``<step:06d>`` when complete

A checkpoint appears under its final name only when complete (``os.rename`` of the fsynced temporary
folder), so a save killed at any point leaves at most a ``.tmp-*`` folder, which readers ignore and the next
save removes. One process saves per run (the main rank).
The layout is read through :mod:`agents.checkpoints`, shared with the benchmarks. Resuming verifies the
checksums: a damaged checkpoint is skipped with a warning naming the file, and the newest intact one is used
(``last`` is pointed at it). Every read names its file when the file is not what was saved.
``extra_state`` carries the trainer's own resumable state (DAgger round, data-loader epoch and position, best
metric...) and must be JSON-able. Nothing is unpickled beyond ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from agents.checkpoints import (
    CHECKSUMS_FILE,
    LAYOUT,
    CheckpointError,
    checkpoints_dir,
    list_checkpoints,
    newest_intact,
    read_json,
    read_last,
    verify_checkpoint,
    write_checksums,
)
from envs.datasets.digest import RECORD_FILE

logger = logging.getLogger(__name__)

FORMAT = "navgym-checkpoint"
VERSION = 1
#: Files of the run folder copied into every checkpoint's ``training_state``, so that a checkpoint moved out
#: of its run still says what it was trained on.
RUN_RECORDS = (RECORD_FILE,)


@dataclass
class CheckpointState:
    """What :func:`load_checkpoint` read.

    Attributes:
        path: The checkpoint folder ``<run>/checkpoints/<step:06d>``.
        step: Training step at which it was saved.
        extra_state: The trainer's JSON state passed to :func:`save_checkpoint` ({} when none).
        config: The resolved run config saved with it, or None.
        agent_dir: Folder to pass to ``Agent.load``.
    """

    path: Path
    step: int
    extra_state: dict[str, Any]
    config: dict[str, Any] | None
    agent_dir: Path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _dumps(name: str, value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default, indent=2)
    except (TypeError, ValueError) as err:
        raise TypeError(f"save_checkpoint: {name} must be JSON-able: {err}") from err


def capture_rng_state() -> dict[str, Any]:
    """This process's global RNG states as a JSON-able dict (python, numpy, torch CPU, every CUDA device).

    JSON-able so that a DDP run can gather every rank's state with ``all_gather_objects`` before rank 0 saves.
    """
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    np_state["state"] = {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {
        "python": [version, list(internal), gauss],
        "numpy": np_state,
        "torch_cpu": torch.get_rng_state().tolist(),
        "torch_cuda": [s.tolist() for s in cuda],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restores the global RNGs from :func:`capture_rng_state`'s output."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = {
        "key": np.asarray(np_state["state"]["key"], np.uint32),
        "pos": np_state["state"]["pos"],
    }
    np.random.set_state(np_state)
    torch.set_rng_state(torch.tensor(state["torch_cpu"], dtype=torch.uint8))
    cuda = state["torch_cuda"]
    if cuda and torch.cuda.is_available():
        n = torch.cuda.device_count()
        if n != len(cuda):
            logger.warning("RNG state has %d CUDA devices, this process sees %d", len(cuda), n)
        for i, s in enumerate(cuda[:n]):
            torch.cuda.set_rng_state(torch.tensor(s, dtype=torch.uint8), i)


def _unwrap(agent: Any) -> Any:
    """The object with ``save``: the agent itself, or the module inside a DDP/compile wrapper."""
    while not hasattr(agent, "save") and hasattr(agent, "module"):
        agent = agent.module
    if not hasattr(agent, "save"):
        raise TypeError(f"save_checkpoint: {type(agent).__name__} has no save(directory) method")
    return agent


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_training_state(state_dir: Path, step: int, optimizer, scheduler, extra_state, config, rng) -> None:
    state_dir.mkdir(parents=True)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), state_dir / "optimizer.pt")
    if scheduler is not None:
        torch.save(scheduler.state_dict(), state_dir / "scheduler.pt")
    (state_dir / "rng.json").write_text(json.dumps({"ranks": rng or [capture_rng_state()]}))
    if config is not None:
        (state_dir / "config.json").write_text(_dumps("config", config) + "\n")
        (state_dir / "config.yaml").write_text(
            yaml.safe_dump(json.loads(_dumps("config", config)), sort_keys=False)
        )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "time": time.time(),
        "extra_state": extra_state or {},
        "optimizer": optimizer is not None,
        "scheduler": scheduler is not None,
        "checksums": CHECKSUMS_FILE,
    }
    # Written last: its presence marks a complete training state.
    (state_dir / "state.json").write_text(_dumps("extra_state", meta) + "\n")


def _plain_config(config: Any) -> dict[str, Any] | None:
    """A resolved plain dict from a dict or an OmegaConf/Hydra config."""
    if config is None or isinstance(config, dict):
        return config
    from omegaconf import OmegaConf

    if OmegaConf.is_config(config):
        return OmegaConf.to_container(config, resolve=True)
    raise TypeError(
        f"save_checkpoint: config must be a dict or an OmegaConf config, got {type(config).__name__}"
    )


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest intact checkpoint of a run: the one ``last`` points at when it verifies, else the highest
    step that does; None when the run has none.

    A damaged checkpoint (see :func:`agents.checkpoints.verify_checkpoint`; a step folder without
    ``training_state/state.json`` counts) is skipped with a warning naming its file, and ``last`` is then
    pointed at the checkpoint returned. Temporary ``.tmp-*`` folders of interrupted saves are ignored.

    Raises:
        CheckpointError: the run has checkpoints but none is intact; the message names each damaged file.
    """
    root = checkpoints_dir(run_dir)
    found, damaged = newest_intact(root)
    for err in damaged:
        logger.warning("skipping damaged checkpoint: %s", err)
    if found is None:
        if damaged:
            raise CheckpointError(root, "no intact checkpoint: " + "; ".join(str(e) for e in damaged))
        return None
    if damaged and read_last(root) != found and os.environ.get("RANK", "0") == "0":
        _update_last(root, found.name)
        logger.warning("using %s, the newest intact checkpoint; `last` now points at it", found)
    return found


def _update_last(root: Path, name: str) -> None:
    tmp = root / f".tmp-last-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(name, tmp)
    except OSError:
        (root / ".tmp-last.txt").write_text(name + "\n")
        os.replace(root / ".tmp-last.txt", root / "last.txt")
        return
    os.replace(tmp, root / "last")


def _remove_stale(root: Path) -> None:
    for path in root.glob(".tmp-*"):
        logger.warning("removing %s left by an interrupted checkpoint save", path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _install(tmp: Path, final: Path) -> None:
    """Renames the complete ``tmp`` folder to ``final``, replacing an existing checkpoint of the same step."""
    if not final.exists():
        os.rename(tmp, final)
        return
    old = final.parent / f".tmp-replaced-{final.name}-{uuid.uuid4().hex[:8]}"
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    agent: Any,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any = None,
    extra_state: dict[str, Any] | None = None,
    config: Any = None,
    keep_last: int | None = None,
    rng_states: list[dict[str, Any]] | None = None,
) -> Path:
    """Writes ``<run>/checkpoints/<step:06d>`` atomically and points ``last`` at it.

    Args:
        run_dir: The run folder.
        step: Training step (>= 0); an existing checkpoint of the same step is replaced.
        agent: Object with ``save(directory)`` (an ``Agent``), or a DDP wrapper around one.
        optimizer: Optimiser whose state dict is saved (None for none).
        scheduler: Learning-rate scheduler whose state dict is saved, or None.
        extra_state: JSON-able trainer state restored verbatim by :func:`load_checkpoint`.
        config: The resolved run config (dict or OmegaConf), saved as JSON and YAML.
        keep_last: When given, keep only this many most recent complete checkpoints (by step; the one just
            written is always kept).
        rng_states: Every rank's RNG state, ordered by rank, under DDP: every rank calls
            ``all_gather_objects(capture_rng_state())`` and rank 0 passes the result. Default: this process's
            state only.

    Returns:
        The checkpoint folder.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"save_checkpoint: step must be an int >= 0, got {step!r}")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"save_checkpoint: keep_last must be >= 1 or None, got {keep_last}")
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    final = root / f"{step:06d}"
    tmp = root / f".tmp-{step:06d}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / "agent").mkdir()
        _unwrap(agent).save(tmp / "agent")
        training = (step, optimizer, scheduler, extra_state, _plain_config(config), rng_states)
        _write_training_state(tmp / "training_state", *training)
        for name in RUN_RECORDS:
            if (root.parent / name).is_file():
                shutil.copyfile(root.parent / name, tmp / "training_state" / name)
        write_checksums(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _install(tmp, final)
    _update_last(root, final.name)
    if keep_last is not None:
        for old in [p for p in list_checkpoints(root) if p != final][: -keep_last + 1 or None]:
            shutil.rmtree(old, ignore_errors=True)
    logger.info("saved checkpoint %s", final)
    return final


def resolve_checkpoint(path_or_run_dir: str | os.PathLike) -> Path:
    """A checkpoint folder from itself, ``.../checkpoints/last``, a run folder or its ``checkpoints/``."""
    path = Path(path_or_run_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint or run folder")
    if not (path / "training_state").exists() and not (path / "agent").exists():
        if path.name == "checkpoints" or (path / "checkpoints").is_dir():
            found = latest_checkpoint(path)
            if found is None:
                raise FileNotFoundError(
                    f"{checkpoints_dir(path)}: no complete checkpoint (expected {LAYOUT})"
                )
            return found
    for part in ("agent", "training_state/state.json"):
        if not (path / part).exists():
            raise FileNotFoundError(f"{path / part}: missing; expected a checkpoint laid out as {LAYOUT}")
    return path


def load_checkpoint(
    path_or_run_dir: str | os.PathLike,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
    rank: int = 0,
) -> CheckpointState:
    """Reads a checkpoint, restoring the given optimiser and scheduler in place and the global RNGs.

    Args:
        path_or_run_dir: A checkpoint folder, or a run folder (its latest complete checkpoint is used).
        optimizer: Optimiser to restore (built over the same parameters as when saved), or None.
        scheduler: Scheduler to restore, or None.
        restore_rng: Restore python, numpy, torch CPU and CUDA RNG states so the next draws equal those the
            saving run would have made.
        rank: Whose saved RNG state to restore (this process's rank under DDP).

    Returns:
        The step, extra state, config and agent folder (rebuild the agent with ``Agent.load(state.agent_dir)``
        before building the optimiser over its parameters).
    """
    path = resolve_checkpoint(path_or_run_dir)
    verify_checkpoint(path, only="training_state/")
    state_dir = path / "training_state"
    meta = read_json(state_dir / "state.json", f"a {FORMAT} state object")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(state_dir / "state.json", f"expected format {FORMAT!r} version {VERSION}")
    if not isinstance(meta.get("step"), int) or not isinstance(meta.get("extra_state"), dict):
        raise CheckpointError(state_dir / "state.json", "expected an int 'step' and an object 'extra_state'")
    for obj, name in ((optimizer, "optimizer"), (scheduler, "scheduler")):
        if obj is not None:
            _load_state_dict(obj, state_dir / f"{name}.pt", name, saved=bool(meta.get(name)))
    if restore_rng:
        _restore_rng(state_dir / "rng.json", rank, path)
    config_file = state_dir / "config.json"
    config = read_json(config_file, "the run config as JSON") if config_file.is_file() else None
    return CheckpointState(path, int(meta["step"]), meta["extra_state"], config, path / "agent")


def _restore_rng(file: Path, rank: int, path: Path) -> None:
    """Restore this rank's RNG states from ``rng.json``, naming the file when it is not what was saved."""
    data = read_json(file, '{"ranks": [RNG states of each rank]}')
    ranks = data.get("ranks") if isinstance(data, dict) else None
    if not isinstance(ranks, list) or not ranks:
        raise CheckpointError(file, '"ranks" must be a non-empty list of RNG states')
    if rank >= len(ranks):
        n = len(ranks)
        logger.warning("%s holds RNG states of %d ranks; rank %d uses rank %d's", path, n, rank, rank % n)
    try:
        restore_rng_state(ranks[rank % len(ranks)])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(file, f"not the RNG states save_checkpoint writes ({err})") from None


def _load_state_dict(obj: Any, file: Path, name: str, saved: bool) -> None:
    """Restore ``obj`` (an optimiser or scheduler) from ``file``, naming the file in every error."""
    if not file.is_file():
        if saved:
            raise CheckpointError(file, f"missing; state.json says the {name} was saved")
        raise FileNotFoundError(f"{file}: missing; this checkpoint was saved without a {name}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged file (RuntimeError, EOFError, ...)
        raise CheckpointError(
            file, f"not a readable torch state dict ({type(err).__name__}: {err})"
        ) from None
    try:
        obj.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(file, f"does not fit this {name} ({type(err).__name__}: {err})") from None
