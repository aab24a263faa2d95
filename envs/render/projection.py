"""Pixel <-> 3-D projection for a :class:`~envs.render.camera.CameraSpec` at an agent pose.

Conventions are the camera module's: the camera looks along its own −z with +x right and +y up; pixel (row i,
column j) covers ``[j, j+1) x [i, i+1)`` with its centre at ``(j + 0.5, i + 0.5)``, row 0 at the top; depth
images hold z-depth (distance to the image plane, metres), as the renderer draws them.

Used for pixel goals (the goal's projection into the current image), System 2's look-down pixel targets and
their back-projection onto the floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.render.camera import CameraSpec


def intrinsic_matrix(camera: CameraSpec) -> np.ndarray:
    """(3, 3) float64 pinhole matrix K of ``camera`` (from its HFOV and size; square pixels).

    K maps a point in the computer-vision camera frame (x right, y down, z forward) to homogeneous pixel
    coordinates (u = column, v = row, continuous, pixel centres at +0.5).
    """
    fx, fy, cx, cy = camera.intrinsics()
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Projection:
    """World points seen by a camera.

    Attributes:
        rows: (N,) float64 continuous row coordinates (``floor`` gives the pixel row).
        cols: (N,) float64 continuous column coordinates.
        depth: (N,) float64 z-depth in metres (positive in front of the camera).
        in_view: (N,) bool, in front of the camera and inside the image.
    """

    rows: np.ndarray
    cols: np.ndarray
    depth: np.ndarray
    in_view: np.ndarray

    def pixels(self) -> np.ndarray:
        """(N, 2) int64 (row, col) of the pixel each point falls in (meaningful where ``in_view``)."""
        rc = np.stack([self.rows, self.cols], axis=1)
        return np.floor(np.where(np.isfinite(rc), rc, -1.0)).astype(np.int64)


def _as_points(points, what: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)):
        raise ValueError(f"{what} must be finite (N, 3) world points [x, y, z], got shape {np.shape(points)}")
    return p


def project(
    camera: CameraSpec, agent_position: Sequence[float], agent_rotation_xyzw: Sequence[float], points
) -> Projection:
    """Project world points into ``camera`` mounted on an agent at (``agent_position``, ``agent_rotation``).

    Args:
        camera: the camera (its mount offset and pitch included).
        agent_position: (3,) agent position on the floor, metres.
        agent_rotation_xyzw: (4,) agent orientation quaternion.
        points: (N, 3) or (3,) world points.
    """
    p = _as_points(points, "project: points")
    view = camera.view_matrix(agent_position, agent_rotation_xyzw).astype(np.float64)
    cam = p @ view[:3, :3].T + view[:3, 3]
    depth = -cam[:, 2]
    fx, fy, cx, cy = camera.intrinsics()
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(depth > 1e-9, depth, np.nan)
        cols = cx + fx * cam[:, 0] / safe
        rows = cy - fy * cam[:, 1] / safe
    in_view = (depth > 1e-9) & (cols >= 0) & (cols < camera.width) & (rows >= 0) & (rows < camera.height)
    return Projection(rows=rows, cols=cols, depth=depth, in_view=np.asarray(in_view, bool))


#: Occlusion tolerance: a surface hides a point when it lies more than ``max(OCCLUSION_MIN, OCCLUSION_FRACTION
#: x the point's depth)`` in front of it, so the floor seen at a grazing angle does not hide its own points.
OCCLUSION_MIN = 0.1
OCCLUSION_FRACTION = 0.05


def visible(
    projection: Projection,
    depth_image: np.ndarray,
    tolerance: float | np.ndarray | None = None,
    max_depth: float | None = None,
) -> np.ndarray:
    """(N,) bool: in view and not hidden, i.e. the rendered depth at the point's pixel is at least the point's
    depth minus ``tolerance`` metres.

    Args:
        projection: the points' :func:`project` result for the camera that drew ``depth_image``.
        depth_image: (H, W) or (H, W, 1) z-depth in metres from that camera at that pose.
        tolerance: metres (scalar or per point) a surface may lie in front of the point before it counts as
            occluding it; None: ``max(0.1 m, 5 % of the point's depth)``.
        max_depth: the camera's depth range: a point beyond it is compared at it (where the image saturates).
    """
    d = np.asarray(depth_image, dtype=np.float64)
    d = d[..., 0] if d.ndim == 3 else d
    out = projection.in_view.copy()
    if not out.any():
        return out
    depth = np.nan_to_num(projection.depth)
    if max_depth is not None:
        depth = np.minimum(depth, max_depth)
    if tolerance is None:
        tolerance = np.maximum(OCCLUSION_MIN, OCCLUSION_FRACTION * depth)
    px = projection.pixels()
    rows = np.clip(px[:, 0], 0, d.shape[0] - 1)
    cols = np.clip(px[:, 1], 0, d.shape[1] - 1)
    out &= d[rows, cols] >= depth - tolerance
    return out


def back_project(
    camera: CameraSpec,
    agent_position: Sequence[float],
    agent_rotation_xyzw: Sequence[float],
    rows,
    cols,
    depth,
) -> np.ndarray:
    """(N, 3) world points seen at pixels (``rows``, ``cols``) with z-depths ``depth`` (metres).

    Integer pixel indices are taken at their centres (``+ 0.5``); pass float coordinates from a
    :class:`Projection` (``rows``, ``cols``) to invert :func:`project` exactly. ``depth`` is either a
    per-pixel array or a depth image (H, W[, 1]) to read at those pixels.
    """
    r = np.atleast_1d(np.asarray(rows))
    c = np.atleast_1d(np.asarray(cols))
    if r.shape != c.shape or r.ndim != 1:
        raise ValueError(
            f"back_project: rows and cols must be matching 1-D arrays, got {r.shape} and {c.shape}"
        )
    if np.issubdtype(r.dtype, np.integer) and np.issubdtype(c.dtype, np.integer):
        if np.any((r < 0) | (r >= camera.height) | (c < 0) | (c >= camera.width)):
            raise ValueError(
                f"back_project: pixel outside the {camera.height}x{camera.width} image of camera "
                f"{camera.uuid!r}: rows {r.tolist()}, cols {c.tolist()}"
            )
        d = np.asarray(depth, dtype=np.float64)
        if d.ndim >= 2:
            d = (d[..., 0] if d.ndim == 3 else d)[r, c]
        r, c = r + 0.5, c + 0.5
    else:
        d = np.asarray(depth, dtype=np.float64)
    d = np.broadcast_to(np.atleast_1d(d), r.shape).astype(np.float64)
    fx, fy, cx, cy = camera.intrinsics()
    x = (c.astype(np.float64) - cx) * d / fx
    y = -(r.astype(np.float64) - cy) * d / fy
    cam = np.stack([x, y, -d], axis=1)
    pose = camera.pose(agent_position, agent_rotation_xyzw)
    return cam @ pose[:3, :3].T + pose[:3, 3]


def point_mask(
    projection: Projection, keep: np.ndarray, height: int, width: int, radius: int = 0
) -> np.ndarray:
    """(H, W) uint8 mask with 1 in a (2·radius+1)-pixel box around each kept point (a pixel-goal mask)."""
    mask = np.zeros((height, width), np.uint8)
    for r, c in projection.pixels()[np.asarray(keep, bool)]:
        mask[max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1] = 1
    return mask
