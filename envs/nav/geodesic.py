"""Geodesic distances and shortest paths on a navigability grid.

**Distance field.** For a goal point ``g`` the solver runs scikit-fmm's second-order fast marching
(``travel_time`` with unit speed, i.e. the eikonal equation ``|grad T| = 1``) on the navigable cells of the
goal's region, cropped to that region's bounding box. The front starts from a circle of radius one cell around
the exact goal (``phi = |x - g| - cell_size``), so ``T + cell_size`` is the travel distance from each cell
centre to ``g`` itself (cells inside the circle take the straight-line distance). Unreachable cells are
``inf``. Fields are cached in a small LRU keyed by the goal position (to 1 mm), so with an episode's fixed
goal each step's query is a lookup.

**Queries.** ``geodesic_distance(a, b)`` is the exact straight-line x-z distance when the segment a-b is on
navigable cells (:func:`envs.nav.raycast.line_of_sight`), and otherwise the bilinear interpolation of ``b``'s
field at ``a`` over the finite corners. Points on non-navigable cells are snapped to the nearest navigable
point when it is within ``snap_distance``; points off the grid, or farther, are unreachable (``inf``).

**Shortest paths.** From ``a``'s cell the path steps to the 8-neighbour with the smallest field value
(diagonal steps only where both cells beside the diagonal are navigable) until the goal's cell, then is
string-pulled: from each anchor the farthest path point in line of sight (galloping then bisection over the
path) becomes the next waypoint, so the path bends only at the corners of the navigable area, as a navmesh
path does.

Distances are measured on the x-z plane; heights do not add length.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import skfmm

from envs.nav.grid import NavGrid, bilinear
from envs.nav.raycast import line_of_sight

__all__ = ["GeodesicSolver", "line_of_sight"]

#: Passes and bisection steps of the final path tightening.
_TIGHTEN_PASSES = 2
_TIGHTEN_BISECTIONS = 10
# 8-neighbour offsets (di, dj); diagonals last.
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


class GeodesicSolver:
    """Geodesic distances and shortest paths on a :class:`~envs.nav.grid.NavGrid` (method: module docstring).

    Args:
        grid: the navigability grid.
        cache_size: number of goal distance fields kept (least recently used first out).
        snap_distance: largest x-z distance (m) from a point to the navigable area at which it is snapped.
    """

    def __init__(self, grid: NavGrid, cache_size: int = 16, snap_distance: float = 0.5):
        if cache_size < 1:
            raise ValueError(f"GeodesicSolver.cache_size must be >= 1, got {cache_size}")
        self.grid = grid
        self.cache_size = int(cache_size)
        self.snap_distance = float(snap_distance)
        self._fields: OrderedDict[tuple[int, int], dict] = OrderedDict()

    def resolve(self, p) -> np.ndarray | None:
        """The (2,) x-z navigable point standing for world point ``p`` (3,), or None (module docstring)."""
        p = np.asarray(p, np.float64).reshape(3)
        i, j = self.grid.world_to_cell(p)
        if not self.grid.in_bounds(i, j):
            return None
        if self.grid.navigable[i, j]:
            return p[[0, 2]]
        if not self.grid.navigable.any():
            return None
        snapped = self.grid.snap(p).astype(np.float64)[[0, 2]]
        return snapped if math.dist(snapped, p[[0, 2]]) <= self.snap_distance else None

    def _entry(self, goal) -> dict | None:
        goal_xz = self.resolve(goal)
        if goal_xz is None:
            return None
        key = (round(goal_xz[0] * 1000), round(goal_xz[1] * 1000))
        if key in self._fields:
            self._fields.move_to_end(key)
            return self._fields[key]
        entry = {"goal": goal_xz, "field": self._solve(goal_xz), "next": None}
        self._fields[key] = entry
        if len(self._fields) > self.cache_size:
            self._fields.popitem(last=False)
        return entry

    def _solve(self, goal_xz: np.ndarray) -> np.ndarray:
        """(H, W) float64 travel distance (m) from every cell centre to ``goal_xz``; inf where unreachable."""
        grid = self.grid
        gi, gj = grid.world_to_cell(np.array([goal_xz[0], 0.0, goal_xz[1]]))
        rows, cols = np.nonzero(grid.region == grid.region[gi, gj])
        i0, i1, j0, j1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        inside = grid.region[i0:i1, j0:j1] == grid.region[gi, gj]
        ci, cj = np.mgrid[i0:i1, j0:j1]
        euclid = np.hypot(
            grid.origin[0] + cj * grid.cell_size - goal_xz[0],
            grid.origin[1] + ci * grid.cell_size - goal_xz[1],
        )
        phi = euclid - grid.cell_size
        crop = np.where(inside, euclid, np.inf)
        if (phi[inside] > 0).any():
            travel = skfmm.travel_time(
                np.ma.MaskedArray(phi, ~inside), np.ones(phi.shape), dx=grid.cell_size, order=2
            )
            far = inside & (phi > 0) & ~np.ma.getmaskarray(travel)
            crop[far] = np.ma.getdata(travel)[far] + grid.cell_size
            crop[inside & (phi > 0) & np.ma.getmaskarray(travel)] = np.inf
        field = np.full(grid.shape, np.inf)
        field[i0:i1, j0:j1] = crop
        return field

    def distance_field(self, goal) -> np.ndarray:
        """(H, W) float64 geodesic distance (m) from each cell centre to ``goal`` (3,), inf if unreachable.

        The array is cached and shared: do not modify it. All inf when the goal cannot be resolved.
        """
        entry = self._entry(goal)
        return np.full(self.grid.shape, np.inf) if entry is None else entry["field"]

    def geodesic_distance(self, a, b) -> float:
        """Geodesic x-z distance (m) from world point ``a`` (3,) to ``b`` (3,); inf when unreachable."""
        a_xz = self.resolve(a)
        entry = self._entry(b)
        if a_xz is None or entry is None:
            return math.inf
        if line_of_sight(self.grid, a_xz, entry["goal"]):
            return math.dist(a_xz, entry["goal"])
        fi, fj = self.grid.fractional_cell(a_xz[0], a_xz[1])
        value = bilinear(entry["field"], fi, fj)
        return math.inf if math.isnan(value) else value

    def shortest_path(self, a, b) -> np.ndarray:
        """(N, 3) float32 waypoints of a shortest path from ``a`` (3,) to ``b`` (3,), y on the floor.

        The first waypoint is ``a`` and the last ``b`` (both resolved onto the navigable area); consecutive
        waypoints are in line of sight. Returns a (0, 3) array when ``b`` is unreachable from ``a``.
        """
        points = self._pulled(a, b, first_only=False)
        if points is None:
            return np.zeros((0, 3), np.float32)
        return np.array([[x, self.grid.height_at(x, z), z] for x, z in points], np.float32)

    def next_waypoint(self, a, b) -> np.ndarray | None:
        """(2,) x-z first waypoint after ``a`` on the shortest path to ``b``; None when unreachable."""
        points = self._pulled(a, b, first_only=True)
        return None if points is None else points[1]

    def _pulled(self, a, b, first_only: bool) -> list[np.ndarray] | None:
        a_xz = self.resolve(a)
        entry = self._entry(b)
        if a_xz is None or entry is None:
            return None
        # Waypoints are returned as float32: test line of sight on the float32 values themselves.
        a_xz, goal = _f32(a_xz), _f32(entry["goal"])
        if line_of_sight(self.grid, a_xz, goal):
            return [a_xz, goal]
        cells = self._descend(entry, a_xz)
        if cells is None:
            return None
        pulled = _string_pull(self.grid, np.vstack([a_xz, cells, goal]), first_only)
        return pulled if first_only else _tighten(self.grid, pulled)

    def _descend(self, entry: dict, a_xz: np.ndarray) -> np.ndarray | None:
        """(N, 2) x-z cell centres of the steepest 8-neighbour descent of the field from ``a``'s cell."""
        if entry["next"] is None:
            entry["next"] = _descent_pointers(entry["field"], self.grid.navigable).tolist()
        width = self.grid.shape[1]
        i, j = self.grid.world_to_cell(np.array([a_xz[0], 0.0, a_xz[1]]))
        if not np.isfinite(entry["field"][i, j]):
            return None
        cell, nxt, flat = int(i * width + j), entry["next"], []
        while nxt[cell] != cell and len(flat) < len(nxt):
            cell = nxt[cell]
            flat.append(cell)
        ii, jj = np.divmod(np.asarray(flat, np.int64), width)
        xz = np.stack(
            [self.grid.origin[0] + jj * self.grid.cell_size, self.grid.origin[1] + ii * self.grid.cell_size]
        )
        return _f32(xz.T.reshape(-1, 2))


def _f32(p: np.ndarray) -> np.ndarray:
    """The point(s) rounded to float32, held as float64."""
    return np.asarray(p, np.float32).astype(np.float64)


def _descent_pointers(field: np.ndarray, navigable: np.ndarray) -> np.ndarray:
    """(H*W,) flat index of each cell's steepest-descent 8-neighbour (itself where none is lower)."""
    h, w = field.shape
    padded = np.pad(field, 1, constant_values=np.inf)
    nav = np.pad(navigable, 1, constant_values=False)
    candidates = np.empty((8, h, w))
    for k, (di, dj) in enumerate(_NEIGHBOURS):
        values = padded[1 + di : 1 + di + h, 1 + dj : 1 + dj + w].copy()
        if di and dj:
            beside = nav[1 + di : 1 + di + h, 1 : 1 + w] & nav[1 : 1 + h, 1 + dj : 1 + dj + w]
            values[~beside] = np.inf
        candidates[k] = values
    best = np.argmin(candidates, axis=0)
    lower = np.take_along_axis(candidates, best[None], axis=0)[0] < field
    offsets = np.array([di * w + dj for di, dj in _NEIGHBOURS])
    flat = np.arange(h * w).reshape(h, w)
    return np.where(lower, flat + offsets[best], flat).ravel()


def _string_pull(grid: NavGrid, points: np.ndarray, first_only: bool) -> list[np.ndarray]:
    """From each anchor, keep the farthest point of the (N, 2) polyline in line of sight of it.

    Consecutive polyline points (neighbouring cell centres) are in line of sight of each other.
    """
    out, anchor, last = [points[0]], 0, len(points) - 1
    while anchor < last:
        step, good = 1, anchor + 1
        while good + step <= last and line_of_sight(grid, points[anchor], points[good + step]):
            good, step = good + step, step * 2
        bad = min(good + step, last + 1)
        while bad - good > 1:
            mid = (good + bad) // 2
            if line_of_sight(grid, points[anchor], points[mid]):
                good = mid
            else:
                bad = mid
        out.append(points[good])
        anchor = good
        if first_only:
            break
    return out


def _slide_limit(grid: NavGrid, fixed: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The point farthest along ``start -> end`` (rounded to float32) in line of sight from both ``fixed`` and
    ``end`` (bisection; ``start`` itself sees both)."""
    if line_of_sight(grid, fixed, end):
        return end
    lo, hi, best = 0.0, 1.0, start
    for _ in range(_TIGHTEN_BISECTIONS):
        mid = 0.5 * (lo + hi)
        point = _f32(start + mid * (end - start))
        if line_of_sight(grid, fixed, point) and line_of_sight(grid, point, end):
            lo, best = mid, point
        else:
            hi = mid
    return best


def _tighten(grid: NavGrid, points: list[np.ndarray]) -> list[np.ndarray]:
    """Pull a polyline taut: slide each inner waypoint along its next, then its previous, segment while it
    stays in line of sight of its other neighbour (each slide shortens the path), then drop waypoints that
    became collinear. The pulled grid path bends at path cells; this moves the bends onto the corners of the
    navigable area, as a navmesh path bends."""
    points = list(points)
    for _ in range(_TIGHTEN_PASSES):
        for k in range(1, len(points) - 1):
            points[k] = _slide_limit(grid, points[k - 1], points[k], points[k + 1])
        for k in range(len(points) - 2, 0, -1):
            points[k] = _slide_limit(grid, points[k + 1], points[k], points[k - 1])
    out = [points[0]]
    for k in range(1, len(points) - 1):
        if not line_of_sight(grid, out[-1], points[k + 1]):
            out.append(points[k])
    out.append(points[-1])
    return out
