"""Frames of stored poses, rendered on read, and the pose/goal fields every training item carries.

:class:`FrameSource` renders a stored episode's frames in the process that reads it (a DataLoader worker
creates its own EGL context on first use and keeps one renderer per scene, least recently used first out),
or reads them from the store when they are stored there. The renderer is the simulator's
(:class:`envs.render.Renderer` with the same camera), without the navigation grid a full
:class:`envs.sim.Simulator` would build, so frames equal ``Simulator.render_at`` at the same pose. EGL does
not
survive ``fork``: loaders with workers start them with ``spawn``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.datasets.store import Episode, TrajectoryStore
from envs.nav.geometry import agent_frame_deltas, yaws_from_quaternions
from envs.render import CameraSpec

#: ``frames`` options of the datasets.
FRAME_MODES = ("auto", "render", "stored")
#: Renderers a :class:`FrameSource` keeps loaded, at most (see its ``scene_cache_size``).
SCENE_CACHE_SIZE = 64
#: Bytes of scene files behind them, at most (see its ``scene_cache_bytes``).
SCENE_CACHE_BYTES = 1 << 30


class FrameSource:
    """Frames of stored episodes: re-rendered at their poses or read from the store.

    Args:
        store: the trajectory store (read only).
        scenes_dir: folder the episodes' ``scene_id`` paths are relative to.
        camera: the main camera (same width, height and HFOV as the environment's); its frames are ``rgb`` /
            ``depth`` and are the ones a store may hold.
        extra_cameras: other agent-mounted cameras (a pitched look-down camera), keyed ``<uuid>_<modality>``;
            always rendered.
        goal_camera: a camera rendered once at the episode's goal pose (``imagegoal``), or None.
        frames: ``auto`` (stored frames when an episode has them at the camera's size, else render),
            ``render`` or ``stored`` (an episode without them, or with another size, is an error).
        scene_cache_size: renderers kept per process, at most; the least recently used goes first.
        scene_cache_bytes: and at most this many bytes of scene files behind them (the newest is always
            kept). Windows are drawn from every scene of a store in random order, so a cache smaller than the
            store's scene count reloads a scene for most items (a quarter of a NavDP training step on the
            System-1 data with 8 of its 16 training scenes kept); the generated scenes are small (46 System-1
            scenes: 4 MB of files, 72 MiB of renderers), real scans are not, hence the byte bound.
    """

    def __init__(
        self,
        store: TrajectoryStore,
        scenes_dir: str | Path,
        camera: CameraSpec,
        extra_cameras: Sequence[CameraSpec] = (),
        goal_camera: CameraSpec | None = None,
        frames: str = "auto",
        scene_cache_size: int = SCENE_CACHE_SIZE,
        scene_cache_bytes: int = SCENE_CACHE_BYTES,
    ) -> None:
        if frames not in FRAME_MODES:
            raise ValueError(f"frames must be one of {FRAME_MODES}, got {frames!r}")
        self.store, self.scenes_dir = store, Path(scenes_dir)
        self.camera, self.extra_cameras, self.goal_camera = camera, tuple(extra_cameras), goal_camera
        self.mode, self.scene_cache_size, self.scene_cache_bytes = frames, scene_cache_size, scene_cache_bytes
        self._renderers: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._scene_bytes: dict[str, int] = {}
        self._stored: dict[int, bool] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_renderers"] = collections.OrderedDict()  # GL objects stay in the process that made them
        state["_scene_bytes"] = {}
        return state

    def renderer(self, scene_id: str) -> Any:
        """The scene's renderer in this process (created on first use)."""
        from envs.render import Renderer
        from envs.scenes import load_scene

        if scene_id not in self._renderers:
            path = self.scenes_dir / scene_id
            self._renderers[scene_id] = Renderer(load_scene(path))
            self._scene_bytes[scene_id] = path.stat().st_size if path.is_file() else 0
            while len(self._renderers) > 1 and (
                len(self._renderers) > self.scene_cache_size
                or sum(self._scene_bytes.values()) > self.scene_cache_bytes
            ):
                oldest, renderer = self._renderers.popitem(last=False)
                del self._scene_bytes[oldest]
                renderer.release()
        self._renderers.move_to_end(scene_id)
        return self._renderers[scene_id]

    def render(self, scene_id: str, camera: CameraSpec, positions, rotations) -> dict[str, np.ndarray]:
        """``{modality: (N, ...)}`` of ``camera`` at N poses (``rgb`` uint8, ``depth`` float32 metres)."""
        renderer = self.renderer(scene_id)
        views = [renderer.render(camera, p, r) for p, r in zip(positions, rotations, strict=True)]
        return {m: np.stack([v[m] for v in views]) for m in camera.modalities}

    def uses_stored(self, index: int) -> bool:
        """Whether episode ``index``'s main-camera frames are read from the store: it holds RGB and depth
        at the camera's size (frames of another size, stored for another camera, are rendered anew in
        ``auto`` mode and an error in ``stored`` mode)."""
        if self.mode == "render":
            return False
        if index not in self._stored:
            self._stored[index] = self._check_stored(index)
        return self._stored[index]

    def _check_stored(self, index: int) -> bool:
        meta = self.store.meta(index)
        where = f"{self.store.root}: episode {meta['episode_id']!r}"
        if not {"rgb", "depth"} <= set(meta.get("frames", [])):
            if self.mode == "stored":
                raise KeyError(f"{where} has no stored rgb/depth frames")
            return False
        shape = self.store.frame_shape(index, "rgb")
        size = (self.camera.height, self.camera.width)
        if shape is not None and tuple(shape[1:3]) != size:
            if self.mode == "stored":
                raise ValueError(
                    f"{where} stores {shape[1]}x{shape[2]} frames (height x width), the camera renders "
                    f"{size[0]}x{size[1]}: collect at this size or read with frames=render"
                )
            return False
        return True

    def main_frames(self, index: int, ep: Episode, steps: Sequence[int]) -> dict[str, np.ndarray]:
        """``rgb`` (N,H,W,3) and ``depth`` (N,H,W,1) of the main camera at the given steps (and its other
        modalities, such as ``category``, which are always rendered)."""
        poses = ep.positions[list(steps)], ep.rotations[list(steps)]
        if not self.uses_stored(index):
            return self.render(ep.scene_id, self.camera, *poses)
        if ep.frames:
            out = {k: ep.frames[k][list(steps)] for k in ("rgb", "depth")}
        else:
            out = self.store.frames_at(index, steps)
        rest = tuple(m for m in self.camera.modalities if m not in ("rgb", "depth"))
        if rest:
            out.update(self.render(ep.scene_id, dataclasses.replace(self.camera, modalities=rest), *poses))
        return out

    def frames(self, index: int, ep: Episode, steps: Sequence[int], extra_steps: Sequence[int]) -> dict:
        """Main-camera frames at ``steps``, extra cameras at ``extra_steps`` and the goal image (when
        declared), keyed as observations are."""
        out = self.main_frames(index, ep, steps)
        for cam in self.extra_cameras:
            views = self.render(
                ep.scene_id, cam, ep.positions[list(extra_steps)], ep.rotations[list(extra_steps)]
            )
            out.update({f"{cam.uuid}_{m}": v for m, v in views.items()})
        if self.goal_camera is not None:
            position, rotation = goal_pose(ep)
            out["imagegoal"] = self.render(ep.scene_id, self.goal_camera, [position], [rotation])["rgb"][0]
        return out


def goal_position(ep: Episode) -> np.ndarray:
    """(3,) float32 goal of a stored episode: ``extras["goal_position"]`` when collection recorded it, else
    its
    last position."""
    goal = ep.extras.get("goal_position")
    return np.asarray(goal if goal is not None else ep.positions[-1], np.float32).reshape(3)


def goal_pose(ep: Episode) -> tuple[np.ndarray, np.ndarray]:
    """Where an image goal is taken: the goal position, facing as the episode's last pose."""
    return goal_position(ep), ep.rotations[-1]


def pose_fields(ep: Episode) -> dict[str, np.ndarray]:
    """``positions`` (T,3) float32, ``yaws`` (T,) float32 and ``goal_position`` (3,) float32 of an episode."""
    return {
        "positions": ep.positions.astype(np.float32),
        "yaws": yaws_from_quaternions(ep.rotations).astype(np.float32),
        "goal_position": goal_position(ep),
    }


def future_targets(positions, yaws, t: int, horizon: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The next ``horizon`` poses after step ``t`` (every ``stride`` steps) in the frame of pose ``t``.

    Returns:
        ``(future, mask)``: (horizon, 3) float32 ``(dx m forward, dy m left, dyaw rad)`` (see
        :func:`envs.nav.geometry.agent_frame_deltas`), clamped to the last pose past the end of the episode,
        and (horizon,) bool, True where the pose is a real one.
    """
    n = len(positions)
    steps = t + stride * np.arange(1, horizon + 1)
    mask = steps < n
    steps = np.minimum(steps, n - 1)
    future = agent_frame_deltas(positions[steps], yaws[steps], positions[t], float(yaws[t]))
    return future, mask
