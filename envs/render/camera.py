"""Pinhole camera description: where a camera sits on the agent, what it sees, and its matrices.

Frames follow Habitat: world y up, right-handed; the agent and every camera look along their own -z with +x to
their right and +y up (OpenGL's camera convention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MODALITIES = ("rgb", "depth", "semantic")
#: Images derived from a drawn modality: ``category`` (H, W) int32 holds each pixel's instance category as
#: :func:`envs.scenes.scene.category_code` (0 where nothing or nothing annotated is hit), from ``semantic``.
DERIVED_MODALITIES = {"category": "semantic"}


def quat_to_matrix(q_xyzw: Sequence[float]) -> np.ndarray:
    """(3, 3) float64 rotation matrix of a quaternion [x, y, z, w] (normalised here; must be non-zero)."""
    x, y, z, w = (float(v) for v in np.asarray(q_xyzw, dtype=np.float64).reshape(4))
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"rotation must be a non-zero finite quaternion [x, y, z, w], got {list(q_xyzw)}")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _finite(name: str, value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"CameraSpec.{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"CameraSpec.{name} must be finite, got {value!r}")
    return out


@dataclass
class CameraSpec:
    """One camera mounted on the agent.

    Attributes:
        uuid: name of the camera; ``Renderer.render_many`` keys its output by it.
        width: image width in pixels.
        height: image height in pixels.
        hfov: horizontal field of view in degrees, in (0, 180). Pixels are square, so the vertical field of
            view follows from ``hfov`` and the aspect ratio.
        position: (x, y, z) offset of the camera in the agent frame, metres; y is the height above the agent's
            (floor) position.
        pitch: degrees about the camera's x axis, in [-90, 90]; positive looks up.
        min_depth: depth readings below this many metres are clipped up to it.
        max_depth: depth readings above this many metres, and pixels that hit nothing, read this value.
        near: near clipping plane in metres (> 0); nothing closer is drawn.
        far: far clipping plane in metres (> near); nothing farther is drawn.
        modalities: which images to render, a non-empty subset of ("rgb", "depth", "semantic", "category")
            (``category``: see :data:`DERIVED_MODALITIES`).
    """

    uuid: str = "camera"
    width: int = 128
    height: int = 128
    hfov: float = 90.0
    position: tuple[float, float, float] = (0.0, 1.25, 0.0)
    pitch: float = 0.0
    min_depth: float = 0.0
    max_depth: float = 10.0
    near: float = 0.01
    far: float = 100.0
    modalities: tuple[str, ...] = ("rgb", "depth")

    def __post_init__(self) -> None:
        if not isinstance(self.uuid, str) or not self.uuid:
            raise ValueError(f"CameraSpec.uuid must be a non-empty string, got {self.uuid!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 16384:
                raise ValueError(f"CameraSpec.{name} must be an integer in [1, 16384] pixels, got {value!r}")
            setattr(self, name, int(value))
        self._check_geometry()
        self._check_ranges()
        mods = (self.modalities,) if isinstance(self.modalities, str) else tuple(self.modalities)
        bad = [m for m in mods if m not in MODALITIES and m not in DERIVED_MODALITIES]
        if not mods or bad or len(set(mods)) != len(mods):
            raise ValueError(
                f"CameraSpec.modalities must be a non-empty subset of "
                f"{MODALITIES + tuple(DERIVED_MODALITIES)} without repeats, "
                f"got {self.modalities!r}"
            )
        self.modalities = mods

    def _check_geometry(self) -> None:
        self.hfov = _finite("hfov", self.hfov)
        if not 0.0 < self.hfov < 180.0:
            raise ValueError(f"CameraSpec.hfov must be in (0, 180) degrees, got {self.hfov!r}")
        pos = tuple(np.asarray(self.position, dtype=object).reshape(-1))
        if len(pos) != 3:
            raise ValueError(f"CameraSpec.position must be (x, y, z) metres, got {self.position!r}")
        self.position = tuple(_finite("position", v) for v in pos)  # type: ignore[assignment]
        self.pitch = _finite("pitch", self.pitch)
        if not -90.0 <= self.pitch <= 90.0:
            raise ValueError(f"CameraSpec.pitch must be in [-90, 90] degrees, got {self.pitch!r}")

    def _check_ranges(self) -> None:
        for name in ("min_depth", "max_depth", "near", "far"):
            setattr(self, name, _finite(name, getattr(self, name)))
        if not 0.0 <= self.min_depth < self.max_depth:
            raise ValueError(
                f"CameraSpec.min_depth/max_depth must satisfy 0 <= min_depth < max_depth, "
                f"got min_depth={self.min_depth!r}, max_depth={self.max_depth!r}"
            )
        if not 0.0 < self.near < self.far:
            raise ValueError(
                f"CameraSpec.near/far must satisfy 0 < near < far, got near={self.near!r}, far={self.far!r}"
            )

    @property
    def vfov(self) -> float:
        """Vertical field of view in degrees (square pixels)."""
        half = math.atan(math.tan(math.radians(self.hfov) / 2) * self.height / self.width)
        return math.degrees(2 * half)

    def intrinsics(self) -> tuple[float, float, float, float]:
        """Pinhole intrinsics (fx, fy, cx, cy) in pixels.

        Pixel (row i, column j) covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5); row 0 is the
        top. A camera-frame point (X, Y, Z) in front (Z < 0) projects to u = cx + fx * X / -Z and
        v = cy - fy * Y / -Z.
        """
        fx = self.width / (2.0 * math.tan(math.radians(self.hfov) / 2))
        return fx, fx, self.width / 2.0, self.height / 2.0

    def projection_matrix(self) -> np.ndarray:
        """(4, 4) float32 OpenGL perspective matrix: clip = P @ [x, y, z, 1] for camera-frame points."""
        f = 1.0 / math.tan(math.radians(self.vfov) / 2)
        aspect = self.width / self.height
        n, fa = self.near, self.far
        return np.array(
            [
                [f / aspect, 0, 0, 0],
                [0, f, 0, 0],
                [0, 0, (fa + n) / (n - fa), 2 * fa * n / (n - fa)],
                [0, 0, -1, 0],
            ],
            dtype=np.float32,
        )

    def pose(self, agent_position: Sequence[float], agent_rotation_xyzw: Sequence[float]) -> np.ndarray:
        """(4, 4) float64 camera-to-world transform: agent pose ∘ mount offset ∘ pitch.

        Args:
            agent_position: (3,) agent position in the world frame, metres (at floor level).
            agent_rotation_xyzw: (4,) agent orientation quaternion [x, y, z, w].
        """
        p = np.asarray(agent_position, dtype=np.float64).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f"agent position must be 3 finite numbers [x, y, z], got {agent_position!r}")
        r_agent = quat_to_matrix(agent_rotation_xyzw)
        out = np.eye(4)
        out[:3, :3] = r_agent @ _rot_x(self.pitch)
        out[:3, 3] = p + r_agent @ np.asarray(self.position, dtype=np.float64)
        return out

    def view_matrix(
        self, agent_position: Sequence[float], agent_rotation_xyzw: Sequence[float]
    ) -> np.ndarray:
        """(4, 4) float32 world-to-camera transform, the inverse of :meth:`pose` (column vectors)."""
        pose = self.pose(agent_position, agent_rotation_xyzw)
        rot_t = pose[:3, :3].T
        out = np.eye(4)
        out[:3, :3] = rot_t
        out[:3, 3] = -rot_t @ pose[:3, 3]
        return out.astype(np.float32)
