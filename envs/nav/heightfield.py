"""Rasterise scene triangles into a navigability heightfield at the agent's scale.

The method behind :meth:`envs.nav.grid.NavGrid.from_scene` (a point-sampled cousin of Recast's voxel
heightfield, which builds Habitat's navmesh):

1. **Walkable faces** are the faces whose normal (from the counter-clockwise winding, as the scene model
   specifies) is within ``max_slope`` of +y. Down-facing faces (ceilings, the undersides of slabs and table
   tops) never carry a floor.
2. **Level.** ``level_y`` defaults to the area-weighted mode of the walkable face heights (0.05 m bins); when
   several bins hold at least half of the largest bin's area, the lowest wins (a roof slab's top surface has
   the area of the floor below it).
3. **Surface sampling.** Faces are split by longest-edge bisection until no edge exceeds 32 sample spacings;
   pieces entirely above ``level_y + max_step + height`` or below ``level_y - height`` cannot affect this
   level and are dropped. Each piece is sampled on a barycentric lattice whose spacing is at most
   ``cell_size / 2`` (``n = ceil(longest edge / spacing)`` subdivisions, ``(n+1)(n+2)/2`` points, vectorised
   per subdivision count), so every cell a face crosses receives samples.
4. **Floor.** Per cell, the floor height is the highest walkable sample at or below ``level_y + max_step``.
5. **Obstacles.** A cell is an obstacle when any sample (of any face) lies in the band
   ``(floor + max_step, floor + height]``: walls, furniture legs and a table top at 0.75 m block, a ceiling
   above the agent's height does not.
6. **Cliffs.** A cell whose floor differs from a 4-neighbour's floor by more than ``max_step`` is blocked.
7. **Erosion.** Cells without floor, obstacles and cliffs are *blocked*; a free cell is navigable when the
   Euclidean distance from its centre to the nearest blocked cell centre (or the grid border) is at least
   ``radius + cell_size / 2``, i.e. the agent's disc centred on the cell does not reach a blocked cell.

Limitation: sampling sees surfaces, not volumes, so the inside of a closed solid wider than about
``2 * (radius + cell_size)`` whose top is above the agent (a tall wardrobe, a very thick wall) survives as a
small navigable island, as it does in a Recast navmesh. Such islands are regions of their own: they are never
reached from, nor sampled in, the largest region.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

#: Width (m) of the height bins used to find the dominant floor level.
LEVEL_BIN_M = 0.05
#: Largest grid (rows x columns) built from a scene.
MAX_CELLS = 50_000_000
#: Faces are split until no edge is longer than this many sample spacings.
_SPLIT_SPACINGS = 32
#: Largest number of sample points materialised at once (bounds memory on big scans).
_CHUNK_POINTS = 2_000_000


@dataclass
class Heightfield:
    """The per-cell result of rasterisation.

    Attributes:
        origin: (x0, z0) world coordinates (m) of the centre of cell [0, 0].
        floor_y: (H, W) float32 floor height (m), NaN where there is no floor.
        navigable: (H, W) bool, free and eroded by the agent radius.
        level_y: the level (m) the floor was taken from.
    """

    origin: tuple[float, float]
    floor_y: np.ndarray
    navigable: np.ndarray
    level_y: float


def face_normals_areas(tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (F, 3) and areas (F,) of (F, 3, 3) triangles; degenerate faces get a zero normal."""
    cross = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    norm = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, norm[:, None], out=np.zeros_like(cross), where=norm[:, None] > 0)
    return normals, 0.5 * norm


def dominant_level(tris: np.ndarray, walkable: np.ndarray, areas: np.ndarray) -> float:
    """The lowest walkable height bin holding at least half the largest bin's area (module docstring)."""
    heights = tris[walkable, :, 1].mean(axis=1)
    weights = areas[walkable]
    bins = np.floor(heights / LEVEL_BIN_M).astype(np.int64)
    _, inverse = np.unique(bins, return_inverse=True)
    totals = np.bincount(inverse, weights=weights)
    chosen = int(np.flatnonzero(totals >= 0.5 * totals.max())[0])
    in_bin = inverse == chosen
    return float(np.average(heights[in_bin], weights=weights[in_bin] + 1e-12))


def _lattice(n: int) -> np.ndarray:
    """(P, 3) barycentric weights of the lattice with ``n`` subdivisions per edge."""
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    a, b = i[keep] / n, j[keep] / n
    return np.stack([1.0 - a - b, a, b], axis=1)


def split_long_edges(tris: np.ndarray, max_edge: float, y_range: tuple[float, float]) -> np.ndarray:
    """Bisect triangles across their longest edge until no edge exceeds ``max_edge`` (m).

    Pieces entirely outside the height range ``y_range`` are dropped as they appear. Longest-edge bisection
    keeps the triangles' shape quality, so the lattice of each piece is about as dense as its area needs.

    Args:
        tris: (F, 3, 3) triangle corners.
        max_edge: longest edge allowed in the output (m).
        y_range: (low, high) heights (m) of the part of the scene that matters.

    Returns:
        (F', 3, 3) triangles covering the same surface within ``y_range``.
    """
    done = []
    while len(tris):
        ys = tris[:, :, 1]
        tris = tris[(ys.max(axis=1) >= y_range[0]) & (ys.min(axis=1) <= y_range[1])]
        lengths = np.linalg.norm(tris - np.roll(tris, -1, axis=1), axis=2)  # edge k: corner k -> k+1
        longest = lengths.argmax(axis=1)
        small = lengths.max(axis=1) <= max_edge
        done.append(tris[small])
        tris, longest = tris[~small], longest[~small]
        # Rotate corners so the longest edge is 0 -> 1, then split it at its midpoint.
        order = (longest[:, None] + np.arange(3)) % 3
        tris = np.take_along_axis(tris, order[:, :, None], axis=1)
        mid = 0.5 * (tris[:, 0] + tris[:, 1])
        tris = np.concatenate(
            [np.stack([tris[:, 0], mid, tris[:, 2]], axis=1), np.stack([mid, tris[:, 1], tris[:, 2]], axis=1)]
        )
    return np.concatenate(done) if done else np.zeros((0, 3, 3))


def sample_surfaces(tris: np.ndarray, spacing: float):
    """Yield (N, 3) float32 point chunks on every triangle, neighbouring points at most ``spacing`` apart.

    Args:
        tris: (F, 3, 3) float triangle corners (m), best split first (:func:`split_long_edges`).
        spacing: largest distance (m) between neighbouring lattice points along a face.
    """
    edges = np.linalg.norm(tris - np.roll(tris, -1, axis=1), axis=2)
    subdiv = np.maximum(1, np.ceil(edges.max(axis=1) / spacing)).astype(np.int64)
    for n in np.unique(subdiv):
        faces = np.flatnonzero(subdiv == n)
        weights = _lattice(int(n)).astype(np.float32)
        per_chunk = max(1, _CHUNK_POINTS // len(weights))
        for start in range(0, len(faces), per_chunk):
            corners = tris[faces[start : start + per_chunk]].astype(np.float32)
            yield (weights @ corners).reshape(-1, 3)  # (P, 3) @ (F, 3, 3) -> (F, P, 3)


def rasterize(tris: np.ndarray, body, cell_size: float, level_y: float | None) -> Heightfield:
    """Classify the cells of an x-z grid over ``tris`` (see the module docstring for the method).

    Args:
        tris: (F, 3, 3) triangle corners in the world frame (m, y up).
        body: an :class:`envs.nav.grid.AgentBody`.
        cell_size: cell edge (m).
        level_y: floor level (m) or None for the dominant level.

    Returns:
        The heightfield; ``navigable`` may be all False (the caller reports it).

    Raises:
        ValueError: no walkable face at all, or none near the level.
    """
    tris = np.asarray(tris, dtype=np.float64)
    finite = np.isfinite(tris).all(axis=(1, 2))
    if not finite.all():
        logger.warning("ignoring %d triangles with non-finite corners", int((~finite).sum()))
        tris = tris[finite]
    normals, areas = face_normals_areas(tris)
    walkable = normals[:, 1] >= math.cos(math.radians(body.max_slope)) - 1e-9
    if not walkable.any():
        raise ValueError("it has no upward-facing walkable faces")
    if level_y is None:
        level_y = dominant_level(tris, walkable, areas)
    y_range = (level_y - body.height, level_y + body.max_step + body.height)
    piece = _SPLIT_SPACINGS * cell_size / 2
    floors = split_long_edges(tris[walkable], piece, y_range)
    others = split_long_edges(tris[~walkable], piece, y_range)
    if not len(floors):
        raise ValueError(f"it has no walkable faces near the level y={level_y:.2f} m")
    corners = floors.reshape(-1, 3)[:, [0, 2]]  # cells beyond the floor are blocked whatever is there
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    shape = tuple(max(1, math.ceil((hi[k] - lo[k]) / cell_size - 1e-6)) for k in (1, 0))
    if shape[0] * shape[1] > MAX_CELLS:
        raise ValueError(
            f"its floor spans {hi[0] - lo[0]:.1f} x {hi[1] - lo[1]:.1f} m, more than {MAX_CELLS} cells of "
            f"{cell_size} m (use a larger cell_size or check the scene's scale)"
        )
    origin = (float(lo[0] + cell_size / 2), float(lo[1] + cell_size / 2))
    floor, obstacle = _classify(floors, others, shape, lo, cell_size, level_y, body)
    blocked = np.isnan(floor) | obstacle | _cliffs(floor, body.max_step)
    navigable = erode(~blocked, body.radius, cell_size)
    logger.debug(
        "rasterised %d pieces into %s cells at level %.3f m", len(floors) + len(others), shape, level_y
    )
    return Heightfield(origin=origin, floor_y=floor.astype(np.float32), navigable=navigable, level_y=level_y)


def _cells(pts: np.ndarray, shape, lo: np.ndarray, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell index of the x-z sample positions on the grid, and the (N,) mask of those samples."""
    i = np.floor((pts[:, 2] - lo[1]) / cell_size).astype(np.int64)
    j = np.floor((pts[:, 0] - lo[0]) / cell_size).astype(np.int64)
    # A sample on the far border belongs to the last cell.
    i[i == shape[0]] = shape[0] - 1
    j[j == shape[1]] = shape[1] - 1
    inside = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1])
    return (i * shape[1] + j)[inside], inside


def _classify(floors, others, shape, lo, cell_size, level_y, body) -> tuple[np.ndarray, np.ndarray]:
    """Two passes over the samples: per-cell floor height, then the obstacle band above it."""
    n_cells = shape[0] * shape[1]
    floor = np.full(n_cells, -np.inf)
    spacing = cell_size / 2
    for pts in sample_surfaces(floors, spacing):
        pts = pts[pts[:, 1] <= level_y + body.max_step]
        cell, inside = _cells(pts, shape, lo, cell_size)
        np.maximum.at(floor, cell, pts[inside, 1])
    obstacle = np.zeros(n_cells, dtype=bool)
    for part in (floors, others):
        for pts in sample_surfaces(part, spacing):
            cell, inside = _cells(pts, shape, lo, cell_size)
            height = pts[inside, 1] - floor[cell]
            obstacle[cell[(height > body.max_step) & (height <= body.height)]] = True
    floor[np.isneginf(floor)] = np.nan
    return floor.reshape(shape), obstacle.reshape(shape)


def _cliffs(floor: np.ndarray, max_step: float) -> np.ndarray:
    """Cells whose floor differs from a 4-neighbour's by more than ``max_step`` (both sides of the edge)."""
    cliff = np.zeros(floor.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        rows = np.abs(np.diff(floor, axis=0)) > max_step
        cols = np.abs(np.diff(floor, axis=1)) > max_step
    cliff[:-1] |= rows
    cliff[1:] |= rows
    cliff[:, :-1] |= cols
    cliff[:, 1:] |= cols
    return cliff


def erode(free: np.ndarray, radius: float, cell_size: float) -> np.ndarray:
    """Free cells whose centre is at least ``radius + cell_size / 2`` from every blocked cell centre.

    Cells beyond the grid border count as blocked.
    """
    padded = np.pad(free, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1] * cell_size
    return free & (dist >= radius + cell_size / 2 - 1e-9)
