"""Top-down map images for videos and viewers, drawn with Pillow from a navigability grid (no OpenGL).

The grid's rows run along +z and its columns along +x, so the image is the scene seen from above (+y) with x
to the right: yaw 0 (looking along -z) points up the image and positive yaw turns counter-clockwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

FREE_RGB = (236, 236, 230)
OBSTACLE_RGB = (70, 70, 78)
AGENT_RGB = (30, 110, 230)
GOAL_RGB = (220, 40, 40)


class TopDownMap:
    """A top-down map of a navigability grid.

    Args:
        navigable: (H, W) bool grid; cell [i, j] covers z ≈ z0 + i·cell_size, x ≈ x0 + j·cell_size.
        origin: (x0, z0) world coordinates in metres of the centre of cell [0, 0].
        cell_size: edge of a cell in metres (> 0).
        scale: image pixels per cell (integer >= 1).
    """

    def __init__(
        self, navigable: np.ndarray, origin: Sequence[float], cell_size: float, scale: int = 2
    ) -> None:
        grid = np.asarray(navigable)
        if grid.ndim != 2 or grid.size == 0:
            raise ValueError(
                f"TopDownMap.navigable must be a non-empty (H, W) bool array, got shape {grid.shape}"
            )
        if grid.dtype != bool:
            raise ValueError(f"TopDownMap.navigable must have dtype bool, got {grid.dtype}")
        origin_arr = np.asarray(origin, dtype=np.float64).reshape(-1)
        if origin_arr.shape != (2,) or not np.all(np.isfinite(origin_arr)):
            raise ValueError(f"TopDownMap.origin must be (x0, z0) in metres, got {origin!r}")
        if not (isinstance(cell_size, (int, float)) and math.isfinite(cell_size) and cell_size > 0):
            raise ValueError(f"TopDownMap.cell_size must be a positive number of metres, got {cell_size!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ValueError(f"TopDownMap.scale must be an integer >= 1 pixels per cell, got {scale!r}")
        self.navigable = grid
        self.origin = (float(origin_arr[0]), float(origin_arr[1]))
        self.cell_size = float(cell_size)
        self.scale = int(scale)
        base = np.where(grid[..., None], np.uint8(FREE_RGB), np.uint8(OBSTACLE_RGB)).astype(np.uint8)
        self._base = np.repeat(np.repeat(base, self.scale, axis=0), self.scale, axis=1)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the image in pixels."""
        return self._base.shape[0], self._base.shape[1]

    def world_to_pixel(self, points: np.ndarray) -> np.ndarray:
        """Image coordinates of world points.

        Args:
            points: (..., 3) world [x, y, z] in metres (y ignored), or (..., 2) [x, z].

        Returns:
            (..., 2) float64 (column, row) in pixels, continuous: pixel (r, c) covers [c, c+1) x [r, r+1), so
            the centre of cell [0, 0] is at (scale/2, scale/2).
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 0 or pts.shape[-1] not in (2, 3):
            raise ValueError(f"points must have shape (..., 3) [x, y, z] or (..., 2) [x, z], got {pts.shape}")
        x, z = (pts[..., 0], pts[..., 2]) if pts.shape[-1] == 3 else (pts[..., 0], pts[..., 1])
        col = ((x - self.origin[0]) / self.cell_size + 0.5) * self.scale
        row = ((z - self.origin[1]) / self.cell_size + 0.5) * self.scale
        return np.stack([col, row], axis=-1)

    def draw(
        self,
        agent_position: Sequence[float] | None = None,
        agent_yaw: float | None = None,
        goal: Sequence[float] | None = None,
        paths: Sequence[tuple[np.ndarray, tuple[int, int, int]]] = (),
        goal_radius: float | None = None,
    ) -> np.ndarray:
        """Draw the map with optional paths, goal and agent (drawn in that order, the agent on top).

        Args:
            agent_position: (3,) agent [x, y, z] in metres, or None for no agent.
            agent_yaw: heading in radians about +y (0 looks along -z, positive turns left); None draws a dot.
            goal: (3,) goal [x, y, z] in metres, or None.
            paths: (points (N, 3) metres, (r, g, b)) polylines.
            goal_radius: radius in metres of a circle drawn around the goal (a success radius), or None.

        Returns:
            (H·scale, W·scale, 3) uint8 image, row 0 at the smallest z.
        """
        image = Image.fromarray(self._base.copy())
        pen = ImageDraw.Draw(image)
        width = max(1, self.scale // 2 + 1)
        for points, rgb in paths:
            pixels = self.world_to_pixel(np.asarray(points, dtype=np.float64).reshape(-1, 3))
            if len(pixels) > 1:
                pen.line(
                    [tuple(p) for p in pixels], fill=tuple(int(c) for c in rgb), width=width, joint="curve"
                )
        marker = max(3.0, 1.5 * self.scale)
        if goal is not None:
            u, v = self.world_to_pixel(np.asarray(goal, dtype=np.float64).reshape(3))
            if goal_radius is not None:
                r = float(goal_radius) / self.cell_size * self.scale
                pen.ellipse([u - r, v - r, u + r, v + r], outline=GOAL_RGB, width=width)
            pen.ellipse([u - marker, v - marker, u + marker, v + marker], fill=GOAL_RGB, outline=(0, 0, 0))
        if agent_position is not None:
            self._draw_agent(pen, np.asarray(agent_position, dtype=np.float64).reshape(3), agent_yaw, marker)
        return np.asarray(image, dtype=np.uint8)

    def _draw_agent(
        self, pen: ImageDraw.ImageDraw, position: np.ndarray, yaw: float | None, marker: float
    ) -> None:
        u, v = self.world_to_pixel(position)
        if yaw is None:
            pen.ellipse([u - marker, v - marker, u + marker, v + marker], fill=AGENT_RGB, outline=(0, 0, 0))
            return
        # Heading (-sin yaw, -cos yaw) in (x, z) is (column, row) in the image.
        length = max(2.5 * marker, 0.4 / self.cell_size * self.scale)
        hx, hz = -math.sin(yaw), -math.cos(yaw)
        px, pz = -hz, hx  # perpendicular
        tip = (u + length * 0.65 * hx, v + length * 0.65 * hz)
        back = (u - length * 0.35 * hx, v - length * 0.35 * hz)
        left = (back[0] + length * 0.3 * px, back[1] + length * 0.3 * pz)
        right = (back[0] - length * 0.3 * px, back[1] - length * 0.3 * pz)
        pen.polygon([tip, left, right], fill=AGENT_RGB, outline=(0, 0, 0))
