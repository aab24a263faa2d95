"""Per-frame camera matrices of the renderer, in plain Python floats.

A frame of the renderer costs well under a millisecond, and between llvmpipe's draws every numpy call runs
with cold caches (several microseconds each), so the few dozen multiply-adds of the camera matrices are done
on Python floats and packed straight into uniform bytes. The camera model is :class:`CameraSpec`'s
(:meth:`CameraSpec.pose`, :meth:`CameraSpec.projection_matrix`); a test checks that the matrices agree.

glReadPixels returns rows bottom first. The clip-space y is mirrored so that GL window row 0 holds the
image's top row and frames are read straight into their output arrays with no flip copy; the mirror turns
front faces (counter-clockwise in the world) clockwise on screen, which the renderer's back-face culling
accounts for.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from envs.render.camera import CameraSpec

_MAT4 = struct.Struct("16f")
_VEC4 = struct.Struct("4f")
_VEC3 = struct.Struct("3f")


@dataclass(frozen=True)
class FrameCamera:
    """A camera at one pose, as the renderer uses it.

    Attributes:
        mvp: the 4 rows of the world -> clip matrix (column vectors), with clip-space y mirrored so that GL
            window row 0 is the image's top row.
        mvp_bytes: ``mvp`` as float32, column-major (GLSL's layout).
        view_z_bytes: float32 (4,) minus the third row of the view matrix: its dot product with a homogeneous
            world point is the point's z-depth in metres.
        eye_bytes: float32 (3,) camera position, world frame, metres.
    """

    mvp: tuple[tuple[float, float, float, float], ...]
    mvp_bytes: bytes
    view_z_bytes: bytes
    eye_bytes: bytes


def _quaternion(rotation: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        x, y, z, w = (float(v) for v in rotation)
    except (TypeError, ValueError):
        raise ValueError(f"rotation must be a quaternion [x, y, z, w], got {rotation!r}") from None
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"rotation must be a non-zero finite quaternion [x, y, z, w], got {list(rotation)}")
    return x / n, y / n, z / n, w / n


def _position(position: Sequence[float]) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in position)
    except (TypeError, ValueError):
        raise ValueError(f"agent position must be 3 finite numbers [x, y, z], got {position!r}") from None
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
        raise ValueError(f"agent position must be 3 finite numbers [x, y, z], got {position!r}")
    return x, y, z


def _projection(camera: CameraSpec) -> tuple[float, float, float, float]:
    """(P00, P11, P22, P23) of the camera's perspective matrix."""
    p = camera.projection_matrix()
    return float(p[0, 0]), float(p[1, 1]), float(p[2, 2]), float(p[2, 3])


_projections: dict[tuple, tuple[float, float, float, float]] = {}


def frame_camera(camera: CameraSpec, position: Sequence[float], rotation: Sequence[float]) -> FrameCamera:
    """The matrices of ``camera`` on an agent at ``position`` (metres) turned by quaternion ``rotation``.

    Raises:
        ValueError: the position is not 3 finite numbers or the quaternion is zero or not finite.
    """
    key = (camera.width, camera.height, camera.hfov, camera.near, camera.far)
    proj = _projections.get(key)
    if proj is None:
        proj = _projections[key] = _projection(camera)
    p00, p11, p22, p23 = proj
    qx, qy, qz, qw = _quaternion(rotation)
    px, py, pz = _position(position)
    # Agent rotation (as quat_to_matrix), rows a0, a1, a2.
    a00, a01, a02 = 1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)
    a10, a11, a12 = 2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)
    a20, a21, a22 = 2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)
    # The eye: the agent position plus the rotated mount offset.
    ox, oy, oz = camera.position
    ex = px + a00 * ox + a01 * oy + a02 * oz
    ey = py + a10 * ox + a11 * oy + a12 * oz
    ez = pz + a20 * ox + a21 * oy + a22 * oz
    # Camera axes (columns of a @ rot_x(pitch)): x is the agent's, y and z turn by the pitch.
    c, s = math.cos(math.radians(camera.pitch)), math.sin(math.radians(camera.pitch))
    axes = (
        (a00, a10, a20),
        (a01 * c + a02 * s, a11 * c + a12 * s, a21 * c + a22 * s),
        (a02 * c - a01 * s, a12 * c - a11 * s, a22 * c - a21 * s),
    )
    # View rows: each axis and minus its dot product with the eye.
    (v0x, v0y, v0z), (v1x, v1y, v1z), (v2x, v2y, v2z) = axes
    v0w, v1w = -(v0x * ex + v0y * ey + v0z * ez), -(v1x * ex + v1y * ey + v1z * ez)
    v2w = -(v2x * ex + v2y * ey + v2z * ez)
    mvp = (
        (p00 * v0x, p00 * v0y, p00 * v0z, p00 * v0w),
        (-p11 * v1x, -p11 * v1y, -p11 * v1z, -p11 * v1w),  # mirrored y
        (p22 * v2x, p22 * v2y, p22 * v2z, p22 * v2w + p23),
        (-v2x, -v2y, -v2z, -v2w),
    )
    return FrameCamera(
        mvp=mvp,
        mvp_bytes=_MAT4.pack(*[row[k] for k in range(4) for row in mvp]),  # column-major
        view_z_bytes=_VEC4.pack(*mvp[3]),
        eye_bytes=_VEC3.pack(ex, ey, ez),
    )
