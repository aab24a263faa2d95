"""Headless OpenGL contexts through EGL: Mesa's llvmpipe on a CPU machine, the GPU's EGL on a GPU machine.

Creating a context costs a few hundred milliseconds, so :func:`create_context` keeps one per process and EGL
device. EGL state does not survive ``fork``: with Mesa, a child forked after its parent initialised EGL hangs
on its first frame, even with a context of its own. The process that initialised EGL is therefore recorded,
and a forked child gets a clear :class:`RenderBackendError` instead of a deadlock; worker processes must be
started with the ``spawn`` or ``forkserver`` method (``AsyncVectorEnv(..., context="spawn")``), or forked
before the parent creates a renderer.
"""

from __future__ import annotations

import logging
import os

import moderngl

logger = logging.getLogger(__name__)

#: Environment variable that overrides the EGL device index (an integer, as listed by eglQueryDevicesEXT).
DEVICE_ENV = "NAVGYM_EGL_DEVICE"

#: Mesa's llvmpipe rasteriser threads. Unset, :func:`create_context` sets it to 0 before EGL starts: llvmpipe
#: then rasterises in the calling thread, which for the small frames of an agent (128×128: 0.58 -> 0.39 ms a
#: frame; equal at 224×224) beats handing each frame to worker threads, and leaves the other cores to other
#: environment processes. Set it (e.g. to the core count) for large frames rendered by a single process.
LLVMPIPE_THREADS_ENV = "LP_NUM_THREADS"
LLVMPIPE_THREADS_DEFAULT = "0"

#: Debian packages that provide a working headless EGL with a software fallback.
EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"

_REQUIRED_GL = 330
_cache: dict[int, moderngl.Context] = {}
_egl_pid: int | None = None  # the process that initialised EGL


class RenderBackendError(RuntimeError):
    """No usable headless OpenGL 3.3 context through EGL (missing libraries, no device, a forked process)."""


def _resolve_device(device_index: int | None) -> int:
    env = os.environ.get(DEVICE_ENV, "").strip()
    if env:
        try:
            device_index = int(env)
        except ValueError:
            raise ValueError(f"{DEVICE_ENV}={env!r} is not an integer EGL device index") from None
    if device_index is not None and (isinstance(device_index, bool) or device_index < 0):
        raise ValueError(f"device_index must be a non-negative integer or None, got {device_index!r}")
    return 0 if device_index is None else int(device_index)


def check_not_forked(origin_pid: int | None = None) -> None:
    """Raise :class:`RenderBackendError` when this process is a fork of one that initialised EGL.

    Args:
        origin_pid: the process that created the context about to be used; None means the one that
            initialised EGL through :func:`create_context`, if any.
    """
    origin = _egl_pid if origin_pid is None else origin_pid
    if origin is not None and origin != os.getpid():
        raise RenderBackendError(
            f"this process (pid {os.getpid()}) was forked from pid {origin} after it initialised EGL; EGL "
            "cannot be used in a forked child (rendering would hang). Start worker processes with the "
            "'spawn' or 'forkserver' method (e.g. gymnasium.vector.AsyncVectorEnv(..., context='spawn')), "
            "or fork before the parent creates a renderer."
        )


def create_context(device_index: int | None = None) -> moderngl.Context:
    """The process's headless moderngl context (OpenGL >= 3.3 through EGL), created on first use.

    Args:
        device_index: EGL device to render on (0 = the first; with glvnd the NVIDIA GPUs are usually listed
            before Mesa's devices). None means device 0. The environment variable
            ``NAVGYM_EGL_DEVICE`` overrides this argument.

    Returns:
        A context shared by every caller in this process that asks for the same device. Callers must not
        release it.

    Raises:
        RenderBackendError: EGL is missing, has no usable device, or offers no OpenGL 3.3 core context (the
            message names the Debian packages that provide it and carries the original error); or this process
            was forked from one that had initialised EGL.
        ValueError: ``device_index`` (or ``NAVGYM_EGL_DEVICE``) is not a non-negative integer.
    """
    global _egl_pid
    device_index = _resolve_device(device_index)
    check_not_forked()
    ctx = _cache.get(device_index)
    if ctx is not None:
        return ctx
    _egl_pid = os.getpid()  # even a failed attempt may have initialised EGL in this process
    # Read by Mesa when the display is initialised.
    os.environ.setdefault(LLVMPIPE_THREADS_ENV, LLVMPIPE_THREADS_DEFAULT)
    try:
        ctx = moderngl.create_standalone_context(
            backend="egl", require=_REQUIRED_GL, device_index=device_index
        )
    except Exception as err:  # glcontext raises bare Exception/OSError for every EGL failure
        raise RenderBackendError(
            f"cannot create a headless OpenGL 3.3 context on EGL device {device_index} "
            f"({type(err).__name__}: {err}). "
            f"Rendering needs EGL with Mesa's llvmpipe or a GPU driver; on Debian/Ubuntu install "
            f"`apt-get install {EGL_PACKAGES}`; set {DEVICE_ENV} to choose another device."
        ) from err
    logger.info(
        "EGL context on device %d: %s, OpenGL %s",
        device_index,
        ctx.info.get("GL_RENDERER", "?"),
        ctx.info.get("GL_VERSION", "?"),
    )
    _cache[device_index] = ctx
    return ctx
