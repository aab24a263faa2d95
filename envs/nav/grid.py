"""The navigability grid: which points of a scene the agent's body can stand on, on the x-z plane.

Cells are square, ``cell_size`` metres on a side. Row ``i`` grows with +z and column ``j`` with +x; ``origin``
is the world (x, z) of the centre of cell [0, 0], so cell [i, j] is centred at
``(origin[0] + j * cell_size, origin[1] + i * cell_size)`` and a point belongs to the cell whose centre is
nearest. How a grid is computed from geometry is described in :mod:`envs.nav.heightfield`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from envs.nav.heightfield import rasterize

#: Largest vertical distance (m) between a point and the floor for the point to count as on the floor.
MAX_FLOOR_OFFSET = 0.5


@dataclass(frozen=True)
class AgentBody:
    """The agent's collision body, a vertical cylinder (VLN-CE defaults).

    Attributes:
        radius: cylinder radius in metres (> 0).
        height: cylinder height in metres (> max_step).
        max_step: largest climb (m) between neighbouring cells; the agent steps over obstacles this high.
        max_slope: steepest walkable face, degrees from horizontal, in [0, 90).
    """

    radius: float = 0.1
    height: float = 1.5
    max_step: float = 0.2
    max_slope: float = 30.0

    def __post_init__(self) -> None:
        for name in ("radius", "height", "max_step", "max_slope"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"AgentBody.{name} must be a finite number, got {value!r}")
        if self.radius <= 0:
            raise ValueError(f"AgentBody.radius must be > 0 metres, got {self.radius}")
        if self.max_step < 0:
            raise ValueError(f"AgentBody.max_step must be >= 0 metres, got {self.max_step}")
        if self.height <= self.max_step:
            raise ValueError(f"AgentBody.height must exceed max_step ({self.max_step} m), got {self.height}")
        if not 0 <= self.max_slope < 90:
            raise ValueError(f"AgentBody.max_slope must be in [0, 90) degrees, got {self.max_slope}")


@dataclass
class NavGrid:
    """A navigability grid on the x-z plane (see the module docstring for the cell layout).

    Attributes:
        origin: (x0, z0) world coordinates (m) of the centre of cell [0, 0].
        cell_size: cell edge in metres.
        floor_y: (H, W) float32 floor height in metres, NaN where there is no floor.
        navigable: (H, W) bool, cells where the agent's centre may be.
        name: the scene name (used in messages).
        region: (H, W) int32 4-connected component label of navigable cells, -1 elsewhere (derived).
        clearance: (H, W) float32 signed distance (m) from each cell centre to the navigable boundary,
            positive on navigable cells, negative elsewhere; its gradient is the obstacle normal used for
            sliding (derived).
    """

    origin: tuple[float, float]
    cell_size: float
    floor_y: np.ndarray
    navigable: np.ndarray
    name: str = "grid"
    region: np.ndarray = field(init=False, repr=False)
    clearance: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.navigable = np.ascontiguousarray(self.navigable, dtype=bool)
        if self.navigable.ndim != 2 or 0 in self.navigable.shape:
            raise ValueError(
                f"NavGrid.navigable must be a non-empty (H, W) array, got {self.navigable.shape}"
            )
        self.floor_y = np.broadcast_to(np.asarray(self.floor_y, np.float32), self.navigable.shape).copy()
        if not (math.isfinite(self.cell_size) and self.cell_size > 0):
            raise ValueError(f"NavGrid.cell_size must be a positive number of metres, got {self.cell_size}")
        self.origin = (float(self.origin[0]), float(self.origin[1]))
        self.navigable &= np.isfinite(self.floor_y)
        labels, n = ndimage.label(self.navigable)
        self.region = (labels - 1).astype(np.int32)
        self.n_regions = int(n)
        self._region_cells = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        inside = ndimage.distance_transform_edt(np.pad(self.navigable, 1))[1:-1, 1:-1]
        outside = ndimage.distance_transform_edt(np.pad(~self.navigable, 1, constant_values=True))[1:-1, 1:-1]
        signed = np.where(self.navigable, inside - 0.5, 0.5 - outside) * self.cell_size
        self.clearance = signed.astype(np.float32)
        self._grad = np.gradient(self.clearance.astype(np.float64), self.cell_size)  # (d/dz, d/dx)
        self._nearest: np.ndarray | None = None
        self._cells_of_region: dict[int, np.ndarray] = {}

    @classmethod
    def from_scene(
        cls, scene, body: AgentBody | None = None, cell_size: float = 0.05, level_y: float | None = None
    ):
        """Compute the grid of one floor level from a scene's triangles (method: :mod:`envs.nav.heightfield`).

        Args:
            scene: an :class:`envs.scenes.scene.Scene` in the world frame (y up).
            body: the agent body (default :class:`AgentBody`).
            cell_size: cell edge in metres.
            level_y: height (m) of the floor level; None picks the dominant floor.

        Raises:
            ValueError: the scene has no navigable floor (the message names the scene and its source).
        """
        body = body or AgentBody()
        where = f"scene {scene.name!r}" + (f" ({scene.source})" if scene.source else "")
        tris = scene.triangles()
        if len(tris) == 0:
            raise ValueError(f"{where} has no navigable floor: it has no triangles")
        try:
            field_ = rasterize(tris, body, cell_size, level_y)
        except ValueError as err:
            raise ValueError(f"{where} has no navigable floor: {err}") from None
        if not field_.navigable.any():
            raise ValueError(
                f"{where} has no navigable floor at level y={field_.level_y:.2f} m for an agent of radius "
                f"{body.radius} m and height {body.height} m"
            )
        return cls(field_.origin, cell_size, field_.floor_y, field_.navigable, name=scene.name)

    @classmethod
    def from_mask(cls, mask, origin=(0.0, 0.0), cell_size: float = 0.05, floor_y=0.0, name: str = "mask"):
        """Build a grid from a boolean navigability map (e.g. Habitat's top-down map), already eroded.

        Args:
            mask: (H, W) bool, True where navigable; rows grow with +z, columns with +x.
            origin: (x0, z0) world coordinates (m) of the centre of cell [0, 0].
            cell_size: metres per cell (Habitat's ``meters_per_pixel``).
            floor_y: floor height (m), a scalar or an (H, W) array.
            name: a name used in messages.
        """
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.dtype != bool:
            raise ValueError(f"NavGrid.from_mask expects an (H, W) bool mask, got {mask.dtype} {mask.shape}")
        return cls(origin, cell_size, floor_y, mask, name=name)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) number of rows (z) and columns (x)."""
        return self.navigable.shape

    @property
    def largest_region(self) -> int:
        """Label of the region with the most navigable cells (-1 when nothing is navigable)."""
        return int(np.argmax(self._region_cells)) if self.n_regions else -1

    @property
    def navigable_area_m2(self) -> float:
        """Total navigable area in square metres."""
        return float(self.navigable.sum()) * self.cell_size**2

    def fractional_cell(self, x, z) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (row, column) coordinates of world (x, z); cell centres are at integers."""
        return (np.asarray(z, np.float64) - self.origin[1]) / self.cell_size, (
            np.asarray(x, np.float64) - self.origin[0]
        ) / self.cell_size

    def world_to_cell(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Integer (row, column) of the cell containing each point (may lie outside the grid).

        Args:
            points: (..., 3) world positions [x, y, z] in metres.
        """
        pts = np.asarray(points, np.float64)
        fi, fj = self.fractional_cell(pts[..., 0], pts[..., 2])
        return np.floor(fi + 0.5).astype(np.int64), np.floor(fj + 0.5).astype(np.int64)

    def fraction_of(self, x: float, z: float) -> tuple[float, float]:
        """:meth:`fractional_cell` of one world point (x, z) in plain Python floats (the per-step motion code
        works on scalars, where numpy's per-call overhead would dominate)."""
        return (z - self.origin[1]) / self.cell_size, (x - self.origin[0]) / self.cell_size

    def cell_of(self, x: float, z: float) -> tuple[int, int]:
        """(row, column) of the cell containing one world point (x, z), as :meth:`world_to_cell` gives it, in
        plain Python (see :meth:`fraction_of`)."""
        fi, fj = self.fraction_of(x, z)
        return math.floor(fi + 0.5), math.floor(fj + 0.5)

    def navigable_at(self, x: float, z: float) -> bool:
        """Whether one world point (x, z) falls in a navigable cell (the scalar :meth:`navigable_xz`)."""
        i, j = self.cell_of(x, z)
        return bool(self.in_bounds(i, j) and self.navigable[i, j])

    def in_bounds(self, i, j) -> np.ndarray:
        """Whether integer cells (i, j) lie on the grid."""
        return (i >= 0) & (i < self.shape[0]) & (j >= 0) & (j < self.shape[1])

    def cell_to_world(self, i, j) -> np.ndarray:
        """(N, 3) float32 world centres of cells (i, j), y = floor height (NaN where there is no floor)."""
        i, j = np.atleast_1d(np.asarray(i, np.int64)), np.atleast_1d(np.asarray(j, np.int64))
        y = np.full(i.shape, np.nan, np.float32)
        ok = self.in_bounds(i, j)
        y[ok] = self.floor_y[i[ok], j[ok]]
        x = self.origin[0] + j * self.cell_size
        z = self.origin[1] + i * self.cell_size
        return np.stack([x, y, z], axis=-1).astype(np.float32)

    def navigable_xz(self, x, z) -> np.ndarray:
        """Whether world (x, z) positions (any matching shapes) fall in navigable cells (ignores height)."""
        fi, fj = self.fractional_cell(x, z)
        i, j = np.floor(fi + 0.5).astype(np.int64), np.floor(fj + 0.5).astype(np.int64)
        ok = self.in_bounds(i, j)
        out = np.zeros(np.shape(ok), dtype=bool)
        out[ok] = self.navigable[i[ok], j[ok]]
        return out

    def is_navigable(self, p) -> bool:
        """Whether world point ``p`` (3,) is in a navigable cell and within 0.5 m of that cell's floor."""
        p = np.asarray(p, np.float64).reshape(3)
        i, j = self.world_to_cell(p)
        if not (self.in_bounds(i, j) and self.navigable[i, j]):
            return False
        return bool(abs(p[1] - self.floor_y[i, j]) <= MAX_FLOOR_OFFSET)

    def height_at(self, x: float, z: float) -> float:
        """Floor height (m) of the cell containing (x, z); NaN off the grid or where there is no floor."""
        i, j = self.cell_of(float(x), float(z))
        return float(self.floor_y[i, j]) if self.in_bounds(i, j) else math.nan

    def snap(self, p) -> np.ndarray:
        """The navigable point nearest to ``p`` (3,) in x-z, with y on the floor; (3,) float32.

        A navigable point is returned as is (y set to the floor); otherwise the closest point of the nearest
        navigable cell (by cell-centre distance) is returned.
        """
        p = np.asarray(p, np.float64).reshape(3)
        i, j = self.world_to_cell(p)
        if self.in_bounds(i, j) and self.navigable[i, j]:
            return np.array([p[0], self.floor_y[i, j], p[2]], np.float32)
        if self._nearest is None:
            if not self.navigable.any():
                raise ValueError(f"grid {self.name!r} has no navigable cell to snap to")
            self._nearest = ndimage.distance_transform_edt(
                ~self.navigable, return_distances=False, return_indices=True
            )
        ci, cj = int(np.clip(i, 0, self.shape[0] - 1)), int(np.clip(j, 0, self.shape[1] - 1))
        ni, nj = int(self._nearest[0, ci, cj]), int(self._nearest[1, ci, cj])
        centre = self.cell_to_world(ni, nj)[0].astype(np.float64)
        half = 0.499 * self.cell_size
        x = np.clip(p[0], centre[0] - half, centre[0] + half)
        z = np.clip(p[2], centre[2] - half, centre[2] + half)
        return np.array([x, centre[1], z], np.float32)

    def sample_navigable_point(self, rng: np.random.Generator, region: int | None = None) -> np.ndarray:
        """A uniformly random navigable point, (3,) float32 [x, floor y, z].

        Args:
            rng: the random generator.
            region: region label to sample from; None for :attr:`largest_region`.
        """
        region = self.largest_region if region is None else int(region)
        if not 0 <= region < self.n_regions:
            raise ValueError(f"grid {self.name!r} has regions 0..{self.n_regions - 1}, got region {region}")
        if region not in self._cells_of_region:
            self._cells_of_region[region] = np.flatnonzero(self.region.ravel() == region)
        cells = self._cells_of_region[region]
        i, j = np.divmod(cells[rng.integers(len(cells))], self.shape[1])
        jitter = rng.uniform(-0.499, 0.499, size=2) * self.cell_size
        x = self.origin[0] + j * self.cell_size + jitter[0]
        z = self.origin[1] + i * self.cell_size + jitter[1]
        return np.array([x, self.floor_y[i, j], z], np.float32)

    def clearance_gradient(self, x: float, z: float) -> tuple[float, float]:
        """Gradient (d/dx, d/dz) of :attr:`clearance` at world (x, z), bilinearly interpolated.

        It points away from the nearest obstacle (into free space).
        """
        fi, fj = self.fraction_of(x, z)
        return bilinear(self._grad[1], fi, fj), bilinear(self._grad[0], fi, fj)


def bilinear(values: np.ndarray, fi: float, fj: float) -> float:
    """Bilinear interpolation of (H, W) ``values`` at fractional (row, column), ignoring non-finite corners.

    Coordinates are clamped to the grid. Returns NaN when all four corners are non-finite.
    """
    h, w = values.shape
    fi = min(max(float(fi), 0.0), h - 1.0)
    fj = min(max(float(fj), 0.0), w - 1.0)
    i0, j0 = min(int(fi), max(h - 2, 0)), min(int(fj), max(w - 2, 0))
    i1, j1 = min(i0 + 1, h - 1), min(j0 + 1, w - 1)
    di, dj = fi - i0, fj - j0
    corners = (
        (float(values[i0, j0]), (1 - di) * (1 - dj)),
        (float(values[i0, j1]), (1 - di) * dj),
        (float(values[i1, j0]), di * (1 - dj)),
        (float(values[i1, j1]), di * dj),
    )
    finite = [(v, wt) for v, wt in corners if math.isfinite(v)]
    total = sum(wt for _, wt in finite)
    if total > 1e-12:
        return sum(v * wt for v, wt in finite) / total
    return sum(v for v, _ in finite) / len(finite) if finite else math.nan
