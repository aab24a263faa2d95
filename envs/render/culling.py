"""Skipping spatial chunks of faces that cannot show in a frame, so that llvmpipe rasterises fewer triangles.

On llvmpipe a frame's cost is setting up every triangle that reaches the viewport and depth-testing every
fragment it covers, visible or not; indoors much of that work is for geometry behind walls. At upload the
faces of each batch are sorted into chunks (:func:`build_chunks`): a face goes to the cell of a loose quadtree
over the x-z plane that contains its centroid, at the finest level whose cells are at least as large as the
face, so large faces (walls, floors) do not inflate the bounds of small ones (furniture). Each chunk keeps
its faces' exact bounding box.

Per frame (:class:`ChunkCuller`):

1. Chunks whose corners all lie outside one clip plane are skipped: their triangles would be clipped away.
   Of the others, those that come nearer than ``split`` metres (or reach the near plane) are drawn first.
   When the rest hold fewer than :data:`OCCLUSION_MIN_FACES` faces, they are drawn right after, untested.
2. The linear depth drawn so far is read back and reduced to the farthest depth per column of
   :data:`COLUMN` pixels. A remaining chunk is skipped when its nearest point is farther, by a margin, than
   the farthest depth drawn in every column its projected bounding box touches: each of its fragments would
   then fail the depth test against geometry that stays in the frame, so the image is unchanged.
3. The others are drawn. Chunks consecutive in a batch's index buffer are merged into one draw.

The per-frame work is a handful of numpy calls on small arrays and short Python loops: in a frame that
costs well under a millisecond, every numpy call counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Side in metres of the finest chunk cells (x-z plane).
CHUNK_SIZE = 1.0
#: Number of quadtree levels: cells of CHUNK_SIZE * 2**k metres, k = 0..LEVELS-1.
LEVELS = 5
#: Chunks whose nearest point is closer than this many metres are drawn before the occlusion test.
SPLIT = 2.0
#: Width in pixels of the columns of the occlusion test.
COLUMN = 4
#: Pending chunks with fewer faces than this in all are drawn without the occlusion test: reading the depth
#: back and testing costs about as much as setting up this many triangles on llvmpipe.
OCCLUSION_MIN_FACES = 200
#: A chunk is hidden when its nearest depth exceeds a column's farthest by this fraction plus DEPTH_SLACK
#: metres: far more than the rounding of float32 depths and of the 24-bit depth buffer within 100 m.
DEPTH_SLACK_REL, DEPTH_SLACK = 2e-3, 1e-2

_SNAP = np.array([-1.0 / COLUMN, 1.0 / COLUMN])  # one pixel either side, in columns
_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float64)


@dataclass(frozen=True)
class FaceChunks:
    """Faces of one batch sorted into spatial chunks.

    Attributes:
        order: (F,) int64 permutation: face ``k`` of the chunk-ordered index buffer is face ``order[k]`` of
            the batch.
        first: (C,) int64 index of each chunk's first face in the chunk-ordered buffer (increasing).
        count: (C,) int64 number of faces of each chunk (> 0); chunks are contiguous and cover all faces.
        lo: (C, 3) float64 minimum corner of each chunk's bounding box, metres (world frame).
        hi: (C, 3) float64 maximum corner of each chunk's bounding box, metres.
    """

    order: np.ndarray
    first: np.ndarray
    count: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def build_chunks(triangles: np.ndarray, chunk_size: float = CHUNK_SIZE, levels: int = LEVELS) -> FaceChunks:
    """Sort faces into loose-quadtree chunks over the x-z plane.

    Args:
        triangles: (F, 3, 3) corner positions of every face, metres (world frame, y up).
        chunk_size: side of the finest cells in metres (> 0).
        levels: number of quadtree levels (>= 1); faces larger than the coarsest cells go to it anyway.

    Returns:
        The chunks; faces keep their relative order within a chunk (a stable sort), and chunks are ordered by
        level, then cell.
    """
    if not chunk_size > 0 or levels < 1:
        raise ValueError(f"chunk_size must be > 0 m and levels >= 1, got {chunk_size!r} and {levels!r}")
    tri = np.asarray(triangles, np.float64).reshape(-1, 3, 3)
    if len(tri) == 0:
        empty = np.zeros(0, np.int64)
        return FaceChunks(empty, empty, empty, np.zeros((0, 3)), np.zeros((0, 3)))
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    extent = np.maximum(hi[:, 0] - lo[:, 0], hi[:, 2] - lo[:, 2])
    level = np.ceil(np.log2(np.maximum(extent, 1e-9) / chunk_size)).clip(0, levels - 1).astype(np.int64)
    size = chunk_size * 2.0**level
    centre = 0.5 * (lo + hi)
    ix = np.floor(centre[:, 0] / size).astype(np.int64)
    iz = np.floor(centre[:, 2] / size).astype(np.int64)
    order = np.lexsort((iz, ix, level))  # stable; the last key is the primary one
    key = np.stack([level, ix, iz], axis=1)[order]
    starts = np.flatnonzero(np.r_[True, np.any(key[1:] != key[:-1], axis=1)])
    return FaceChunks(
        order=order,
        first=starts,
        count=np.diff(np.r_[starts, len(order)]),
        lo=np.minimum.reduceat(lo[order], starts, axis=0),
        hi=np.maximum.reduceat(hi[order], starts, axis=0),
    )


class ChunkCuller:
    """Which chunks of a renderer's batches to draw in a frame (see the module docstring).

    Args:
        batches: the chunks of every batch, in draw order.
        split: distance in metres below which chunks are drawn before the occlusion test.
        min_test_faces: when the chunks left after the first pass have fewer faces than this in all, they are
            drawn in the first pass without the occlusion test (0: always test; None:
            :data:`OCCLUSION_MIN_FACES`).

    Per frame, call :meth:`first_pass` and draw its ranges, then call :meth:`second_pass` with the linear
    depth drawn so far (when :attr:`pending` is non-empty) and draw its ranges. Together they give the order
    in which drawing every chunk would go, less the skipped chunks.
    """

    def __init__(
        self, batches: Sequence[FaceChunks], split: float = SPLIT, min_test_faces: int | None = None
    ) -> None:
        self.split = split
        self.min_test_faces = OCCLUSION_MIN_FACES if min_test_faces is None else min_test_faces
        batch = np.concatenate([np.full(len(c.count), i, np.int64) for i, c in enumerate(batches)] or [[]])
        first = np.concatenate([c.first for c in batches] or [[]]).astype(np.int64)
        count = np.concatenate([c.count for c in batches] or [[]]).astype(np.int64)
        lo = np.concatenate([c.lo for c in batches] or [np.zeros((0, 3))])
        hi = np.concatenate([c.hi for c in batches] or [np.zeros((0, 3))])
        self.n_chunks = len(first)
        # Homogeneous corners, corner-major: column k * C + c is corner k of chunk c, so that reductions over
        # the corners of every chunk run along the leading axis (fast in numpy).
        corners = (lo[None] + (hi - lo)[None] * _CORNERS[:, None]).reshape(-1, 3)
        self._corners = np.ascontiguousarray(np.concatenate([corners, np.ones((len(corners), 1))], axis=1).T)
        # Python lists: the per-frame loops read single items, which numpy arrays serve slowly.
        self._batch, self._first, self._count = batch.tolist(), first.tolist(), count.tolist()
        # Whether chunk i directly follows chunk i - 1 in the same index buffer (so their draws can merge).
        self._joins = [False] + (batch[1:] == batch[:-1]).tolist()
        self._count_array = count
        #: Chunks left for :meth:`second_pass`, increasing.
        self.pending = np.zeros(0, np.int64)
        self._near = np.zeros(0)
        self._cols = np.zeros(0, np.int64)

    def first_pass(
        self, mvp: Sequence[Sequence[float]], width: int, near: float, far: float, cull: bool = True
    ) -> list[tuple[int, int, int]]:
        """Start a frame: the ranges to draw before the occlusion test.

        Args:
            mvp: the 4 rows of the world -> clip matrix of the frame (column vectors), as the vertex shader
                uses it.
            width: image width in pixels.
            near: the projection's near plane distance in metres.
            far: the projection's far plane distance in metres.
            cull: False skips nothing, neither here nor in :meth:`second_pass`, and draws in the same order.

        Returns:
            (batch, first face, number of faces) of each draw, in draw order.
        """
        # Rows x' = (x + w) * s and y' = (y + w) * s, s = width / 2 / COLUMN, and w (the z-depth): a point is
        # left of the view when x' < 0, right of it when x' > 2 s w, and x' / w is its column coordinate.
        s = 0.5 * width / COLUMN
        rows = [[(a + b) * s for a, b in zip(mvp[0], mvp[3], strict=True)]]
        rows += [[(a + b) * s for a, b in zip(mvp[1], mvp[3], strict=True)], list(mvp[3])]
        xyw = (np.array(rows) @ self._corners).reshape(3, 8, -1)
        w = xyw[2]
        nearest = np.minimum.reduce(w, axis=0)
        now = nearest < max(self.split, near)  # includes the chunks reaching the near plane
        if not cull:
            self.pending = np.flatnonzero(~now)
            return self.ranges(np.flatnonzero(now).tolist())
        # A chunk is out of view when all its corners are outside one clip plane.
        beyond = xyw[:2] - (2.0 * s) * w  # > 0 right of / above the view
        out = (np.maximum.reduce(xyw[:2], axis=1) < 0.0) | (np.minimum.reduce(beyond, axis=1) > 0.0)
        # Behind the near plane or beyond the far one, with margins for the GPU's float32 rounding.
        out = out[0] | out[1] | (np.maximum.reduce(w, axis=0) < near - 1e-4) | (nearest > far * (1.0 + 1e-4))
        self.pending = np.flatnonzero(~(now | out))
        p = self.pending
        if int(self._count_array[p].sum()) < self.min_test_faces:
            # Too few faces left to be worth the test: draw them now, after the near ones (as a second pass).
            self.pending = np.zeros(0, np.int64)
            return self.ranges(np.flatnonzero(now & ~out).tolist()) + self.ranges(p.tolist())
        x = xyw[0][:, p] / w[:, p]  # pending chunks lie wholly in front of the near plane
        self._near = nearest[p]
        # Column ranges, widened by a pixel for vertex snapping, as reduceat bounds [first, last + 1).
        n_cols = -(-width // COLUMN)
        cols = np.empty((len(p), 2))
        cols[:, 0], cols[:, 1] = np.minimum.reduce(x, axis=0), np.maximum.reduce(x, axis=0)
        cols += _SNAP
        np.floor(cols, out=cols)
        np.minimum(np.maximum(cols, 0.0, out=cols), n_cols - 1.0, out=cols)
        cols[:, 1] += 1.0
        self._cols = cols.astype(np.int64).ravel()
        return self.ranges(np.flatnonzero(now & ~out).tolist())

    def second_pass(self, linear_depth: np.ndarray | None) -> list[tuple[int, int, int]]:
        """The ranges of the pending chunks that are not hidden behind what the first pass drew.

        Args:
            linear_depth: (H, W) z-depth in metres after the first pass (a huge value where nothing was
                drawn); None hides nothing.
        """
        pending, self.pending = self.pending, np.zeros(0, np.int64)
        if linear_depth is None or not len(pending):
            return self.ranges(pending.tolist())
        width = linear_depth.shape[1]
        columns = np.maximum.reduceat(np.maximum.reduce(linear_depth, axis=0), range(0, width, COLUMN))
        # One more column, -inf, so that a range may end at the last column (reduceat needs first < end).
        far = np.maximum.reduceat(np.append(columns, -np.inf), self._cols)[0::2]
        hidden = self._near > far * (1.0 + DEPTH_SLACK_REL) + DEPTH_SLACK
        return self.ranges(pending[~hidden].tolist())

    def ranges(self, chunks: list[int]) -> list[tuple[int, int, int]]:
        """Merge increasing chunk indices into (batch, first face, number of faces) runs within batches."""
        out: list[tuple[int, int, int]] = []
        previous = -2
        for c in chunks:
            if c == previous + 1 and self._joins[c]:
                batch, first, _ = out[-1]
                out[-1] = (batch, first, self._first[c] + self._count[c] - first)
            else:
                out.append((self._batch[c], self._first[c], self._count[c]))
            previous = c
        return out
