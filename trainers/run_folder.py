"""The run folder of ``trainers/run.py``: chosen, checked and claimed before anything is written into it.

- :func:`check_inputs` fails on a missing dataset, split or initial store before any output folder exists.
- :func:`resolve_run_dir` picks the folder (``run_dir``, else ``runs/<agent>-<trainer>-<timestamp>``).
- :func:`claim_run_dir` refuses a folder that already holds a run unless ``resume=true`` (continue it) or
  ``overwrite=true`` (empty it first), so two runs never mix their checkpoints, metrics and store.
- :func:`held_run_dir` holds an exclusive lock on the folder for the length of the run, so a second command
  (a resume started twice, two results commands) fails at once instead of mixing its checkpoints with ours.
- :func:`holds_results` tells whether a failed run saved anything worth keeping; when it did not, the entry
  point removes what the run created (``envs.fileio.removed_on_failure``).
- :func:`config_changes` says how a folder's saved run differs from the config a command's overrides resolve
  to today (:func:`resolved_train_config`), so that a results table never shows a run of another config;
  :func:`changed_keys` lists the keys two saved configs differ in (a resumed run logs them).

Under ``torchrun`` every rank takes rank 0's folder and rank 0's verdict, and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from trainers import distributed
from trainers.config import TrainConfig

logger = logging.getLogger(__name__)

LAYOUT = "DIR/<split>/<split>.json.gz with scenes in DIR/scenes (the R2R-CE layout)"


def check_inputs(config: TrainConfig) -> None:
    """Fail, naming the config field, when an input the run reads is missing.

    Checks ``data.dir``, its ``data.train_split`` folder, the ``eval.split`` folder when the run evaluates,
    and ``data.init_store`` when given.

    Raises:
        FileNotFoundError: the path, the field it comes from and the expected layout.
    """
    data = Path(config.data.dir)
    if not data.is_dir():
        raise FileNotFoundError(f"data.dir={config.data.dir}: no such folder; expected a dataset in {LAYOUT}")
    splits = {"data.train_split": config.data.train_split}
    if config.eval.final or config.eval.every_epochs:
        splits["eval.split"] = config.eval.split
    for field, split in splits.items():
        if not (data / split).exists():
            raise FileNotFoundError(f"{data / split}: no such split ({field}={split!r}); expected {LAYOUT}")
    init = config.data.init_store
    if init and not (Path(init) / "store.json").is_file():
        raise FileNotFoundError(
            f"data.init_store={init}: no trajectory store there (expected {init}/store.json)"
        )


def resolve_run_dir(config: TrainConfig) -> str:
    """``run_dir``, else ``runs/<agent>-<trainer>-<timestamp>`` (with ``resume``: the newest such folder);
    under torchrun every rank takes rank 0's choice."""
    run_dir = config.run_dir
    if run_dir is None:
        prefix = f"{config.agent.name}-{config.trainer.name}-"
        if config.resume:
            found = sorted(Path("runs").glob(prefix + "*"))
            if not found:
                raise FileNotFoundError(f"resume=true: no run folder runs/{prefix}* to resume; give run_dir=")
            run_dir = str(found[-1])
        else:
            run_dir = f"runs/{prefix}{time.strftime('%Y%m%d-%H%M%S')}"
    return distributed.all_gather_objects(run_dir)[0]


def claim_run_dir(config: TrainConfig, is_main: bool = True, hold: contextlib.ExitStack | None = None) -> str:
    """Resolve the run folder and make sure this run may write there (see the module docstring).

    With ``hold``, the main rank first takes the folder's lock (:func:`held_run_dir`) into that stack, so
    that it is held until the stack closes and no other command can empty or write the folder meanwhile.
    A missing or empty folder is free; a folder holding anything is continued with ``resume``, emptied with
    ``overwrite``, and refused otherwise. Collective under torchrun: the main rank (``is_main``) decides
    and empties, and every rank raises its verdict.

    Returns:
        The run folder.

    Raises:
        FileExistsError: the folder holds a run and neither ``resume`` nor ``overwrite`` is set, or another
            process holds it; the message names the folder and the ways out.
    """
    run_dir = resolve_run_dir(config)
    problem = None
    if is_main:
        try:
            if hold is not None:
                hold.enter_context(held_run_dir(run_dir))
            _claim(Path(run_dir), config)
        except (FileExistsError, NotADirectoryError, ValueError, BlockingIOError) as err:
            problem = str(err)
    problem = distributed.all_gather_objects(problem)[0]
    if problem:
        raise FileExistsError(problem)
    return run_dir


def _claim(path: Path, config: TrainConfig) -> None:
    if config.resume or not path.exists():
        return
    if not path.is_dir():
        raise NotADirectoryError(f"run_dir={path}: a file, not a folder; give a new run_dir=")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return
    if not config.overwrite:
        listed = ", ".join(entries[:6]) + (", ..." if len(entries) > 6 else "")
        raise FileExistsError(
            f"run_dir={path} already holds a run ({listed}): pass resume=true to continue it, or give a new "
            "run_dir= (overwrite=true empties it first)"
        )
    inputs = [config.data.dir, config.data.init_store]
    inside = [p for p in inputs if p and Path(p).resolve().is_relative_to(path.resolve())]
    if inside:
        raise ValueError(f"overwrite=true would empty run_dir={path}, which holds the input {inside[0]}")
    logger.warning("overwrite=true: emptying %s (%d entries)", path, len(entries))
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@contextlib.contextmanager
def held_run_dir(run_dir: str) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``run_dir`` (made if missing) for the block.

    The lock is a ``flock`` on the folder itself, so nothing is written for it, and the kernel drops it when
    the process ends, however it ends. When the block raises and the folder was made here and is still
    empty, the folder (and the parents made for it) is removed again.

    Raises:
        BlockingIOError: another process holds the folder; the message names it and the ways out.
    """
    path = Path(run_dir)
    created = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BlockingIOError(
                f"run_dir={run_dir} is in use by another training process; wait for it to end, stop it, or "
                "give another run_dir="
            ) from None
        try:
            yield
        except BaseException:
            if created and path.is_dir() and not any(path.iterdir()):
                for folder in created:
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            raise
    finally:
        os.close(fd)  # releases the lock


def holds_results(config: TrainConfig) -> bool:
    """Whether the run folder holds a checkpoint or the run's store holds an episode: what a resume needs."""
    run_dir = Path(config.run_dir)
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(not p.name.startswith(".tmp") for p in checkpoints.iterdir()):
        return True
    index = Path(config.data.store or run_dir / "store") / "index.jsonl"
    return index.is_file() and index.stat().st_size > 0


#: Keys of a run's config that do not change what it trains.
RUN_KEYS = ("run_dir", "resume", "overwrite")
#: Hydra's compose API keeps global state: one composition at a time (callers may run in threads).
_HYDRA_LOCK = threading.Lock()


def resolved_train_config(overrides: list[str]) -> dict[str, Any]:
    """The config ``trainers/run.py <overrides>`` trains with, as its run folder's ``config.yaml`` has it."""
    from hydra import compose, initialize_config_dir

    from trainers.config import register_configs, to_config, to_dict

    register_configs()
    configs = Path(__file__).resolve().parents[1] / "configs"
    with _HYDRA_LOCK, initialize_config_dir(str(configs), version_base="1.3"):
        return to_dict(to_config(compose("train", overrides=overrides)))


def config_changes(folder: Path, overrides: list[str]) -> str | None:
    """Why the run in ``folder`` was trained with another config than ``trainers/run.py <overrides>``
    resolves to today: the differing keys; None when it was not, or when the folder holds no run yet. A key
    the run's ``config.yaml`` lacks (a field added since) counts as the same when today's value is its
    default."""
    saved_path = Path(folder) / "config.yaml"
    if not saved_path.is_file():
        return None
    today = resolved_train_config(overrides)
    saved, new = _flatten(yaml.safe_load(saved_path.read_text()) or {}), _flatten(today)
    added = [k for k in new if k not in saved and k not in RUN_KEYS]
    if added:  # the defaults, only when some key is new since the run
        group = [f"agent={today['agent']['name']}", f"trainer={today['trainer']['name']}", "data.dir=."]
        defaults = _flatten(resolved_train_config(group))
        added = [k for k in added if k not in defaults or defaults[k] != new[k]]
    differing = [
        f"{k}: {saved[k]!r} -> {v!r}"
        for k, v in new.items()
        if k in saved and k not in RUN_KEYS and saved[k] != v
    ] + [f"{k}: absent -> {new[k]!r}" for k in added]
    if not differing:
        return None
    more = f"; {len(differing) - 8} more" if len(differing) > 8 else ""
    return (
        f"{folder} was trained with another config than this command resolves to today ("
        + "; ".join(differing[:8])
        + more
        + "): move it away to retrain it, or use another --out"
    )


def changed_keys(saved_yaml: str, new_yaml: str) -> list[str]:
    """``"key: old -> new"`` for each leaf that differs between two saved run configs (``config.yaml``
    texts), the run-folder keys (``run_dir``, ``resume``, ``overwrite``) aside."""
    saved = _flatten(yaml.safe_load(saved_yaml) or {})
    new = _flatten(yaml.safe_load(new_yaml) or {})
    show = lambda tree, k: repr(tree[k]) if k in tree else "absent"  # noqa: E731
    return [
        f"{k}: {show(saved, k)} -> {show(new, k)}"
        for k in sorted(saved.keys() | new.keys())
        if k not in RUN_KEYS and (k not in saved or k not in new or saved[k] != new[k])
    ]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` of a nested dict's leaves (an empty dict is a leaf)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
