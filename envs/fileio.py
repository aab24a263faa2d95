"""Atomic file writes: nothing half-written is ever visible under the final name.

:func:`removed_on_failure` is the folder-level counterpart: a failed command removes the outputs it created.

Data goes to a temporary file in the destination folder (named ``.<name>.<pid>.<random>.tmp`` so a later run
can tell a dead writer's leftovers from a live one's), is flushed and fsynced, then renamed over the
destination.
The file gets the usual permissions (0666 minus the umask), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, on error removed.

    ``keep_suffix`` ends the temporary name with ``path``'s suffix (``.tmp.mp4``) for writers that infer the
    format from the name (imageio, matplotlib).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The destination's suffix is kept last so writers that infer the format from the name (imageio) work.
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=f".tmp{path.suffix}"
    )
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def removed_on_failure(folder: str | os.PathLike, keep: Callable[[], bool] | None = None) -> Iterator[None]:
    """Run a block that writes into ``folder``; when it raises, remove what it created there and re-raise.

    Only what did not exist on entry goes: ``folder`` itself (and the parent folders made for it, when they
    are left empty) if it was missing, else the entries of ``folder`` that appeared. Nothing is removed when
    ``keep()`` says the block saved something worth keeping (a checkpoint to resume from). A SIGTERM
    (``kill``, a scheduler's cancellation) counts as a failure: it raises ``SystemExit(143)`` in the block
    (:func:`terminate_as_exit`), so the clean-up runs before the process exits with status 143, as shells
    report a terminated process.
    """
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    before = set(os.listdir(folder)) if not created and folder.is_dir() else None
    try:
        with terminate_as_exit():
            yield
    except BaseException:
        if keep is None or not keep():
            _remove_created(folder, created, before)
        raise


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Within the block a SIGTERM raises ``SystemExit(128 + SIGTERM)`` (so ``finally`` and ``except`` clauses
    run) instead of ending the process at once; the previous handler is restored after. Off the main thread,
    where handlers cannot be installed, the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_created(folder: Path, created: list[Path], before: set[str] | None) -> None:
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        for parent in created[1:]:  # made by mkdir(parents=True); another run may have used them since
            with contextlib.suppress(OSError):
                parent.rmdir()
        return
    if before is None or not folder.is_dir():
        return
    for name in sorted(set(os.listdir(folder)) - before):
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
