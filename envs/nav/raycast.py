"""Exact segment tests on a navigability grid: line of sight and the free prefix of a motion.

A segment is split where it crosses cell boundaries (an exact traversal, like Amanatides and Woo's voxel
walk): every cell it passes through is visited, in order. The segment is free while those cells are navigable;
where it passes exactly through a cell corner from one cell to its diagonal neighbour, one of the two cells
beside that corner must be navigable too, so a segment never slips between regions through a diagonal pinch
(regions are 4-connected, like the fast-marching stencil). A sub-segment of a free segment is free.
"""

from __future__ import annotations

import math

import numpy as np

#: Distance (m) a blocked move stops short of the face of the first blocked cell.
STANDOFF = 1e-4
#: Crossings closer than this (in units of the segment's parameter) count as one (a corner crossing).
_SAME_CROSSING = 1e-12
_EMPTY, _ZERO, _TRUE = np.zeros(0), np.zeros(1), np.ones(1, dtype=bool)


def _xz(p) -> np.ndarray:
    """(2,) x-z part of a (3,) world point or a (2,) x-z point."""
    p = np.asarray(p, np.float64).reshape(-1)
    return p[[0, 2]] if p.size == 3 else p[:2]


def _crossings(f0: float, f1: float) -> np.ndarray:
    """Parameters t in (0, 1) where the coordinate f0 + t (f1 - f0) crosses a half-integer cell boundary."""
    first, last = math.floor(min(f0, f1) + 0.5), math.floor(max(f0, f1) + 0.5)
    if first == last:
        return _EMPTY
    t = (np.arange(first, last) + (0.5 - f0)) / (f1 - f0)
    return t[(t > 0.0) & (t < 1.0)]


def traverse(grid, start_xz: np.ndarray, end_xz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells a segment visits and whether each step into them is free.

    Args:
        grid: a :class:`envs.nav.grid.NavGrid`.
        start_xz: (2,) x-z start point in metres.
        end_xz: (2,) x-z end point in metres.

    Returns:
        ``(t_enter, cells, free)``: (K,) parameters in [0, 1) at which the segment enters each visited cell
        (the first is 0, the start cell), the (2, K) int64 (row, column) of those cells, and (K,) bool,
        whether each cell is navigable and the step into it is allowed.
    """
    fi0, fj0 = grid.fraction_of(float(start_xz[0]), float(start_xz[1]))
    fi1, fj1 = grid.fraction_of(float(end_xz[0]), float(end_xz[1]))
    t = np.concatenate([_ZERO, _crossings(fi0, fi1), _crossings(fj0, fj1)])
    if len(t) > 1:
        t.sort()
        t = t[np.concatenate([_TRUE, (t[1:] - t[:-1]) > _SAME_CROSSING])]
    mid = 0.5 * (t + np.append(t[1:], 1.0))
    i = np.floor(fi0 + 0.5 + mid * (fi1 - fi0)).astype(np.int64)
    j = np.floor(fj0 + 0.5 + mid * (fj1 - fj0)).astype(np.int64)
    height, width = grid.navigable.shape
    ok = (i >= 0) & (i < height) & (j >= 0) & (j < width)
    if ok.all():
        free = grid.navigable[i, j]
    else:
        free = np.zeros(len(t), dtype=bool)
        free[ok] = grid.navigable[i[ok], j[ok]]
    if len(t) > 1:
        diag = np.flatnonzero((i[1:] != i[:-1]) & (j[1:] != j[:-1]) & free[:-1] & free[1:])
        if len(diag):
            beside = grid.navigable[i[diag], j[diag + 1]] | grid.navigable[i[diag + 1], j[diag]]
            free[diag[~beside] + 1] = False
    return t, np.stack([i, j]), free


def line_of_sight(grid, a, b) -> bool:
    """Whether the straight x-z segment from ``a`` to ``b`` lies on navigable cells (heights are ignored).

    Args:
        grid: a :class:`envs.nav.grid.NavGrid`.
        a: (3,) world point [x, y, z] in metres (or (2,) [x, z]).
        b: (3,) world point (or (2,)).
    """
    return bool(traverse(grid, _xz(a), _xz(b))[2].all())


def traverse_short(grid, start_xz, end_xz) -> tuple[list[float], list[tuple[int, int]], list[bool]]:
    """:func:`traverse` in plain Python, for the short segments of single moves (a few cells), where numpy's
    per-call overhead would cost more than the walk itself. Same arithmetic, same results, as lists."""
    fi0, fj0 = grid.fraction_of(float(start_xz[0]), float(start_xz[1]))
    fi1, fj1 = grid.fraction_of(float(end_xz[0]), float(end_xz[1]))
    raw = [0.0]
    for f0, f1 in ((fi0, fi1), (fj0, fj1)):
        for k in range(math.floor(min(f0, f1) + 0.5), math.floor(max(f0, f1) + 0.5)):
            t = (k + (0.5 - f0)) / (f1 - f0)
            if 0.0 < t < 1.0:
                raw.append(t)
    raw.sort()
    ts = [raw[0]] + [b for a, b in zip(raw, raw[1:], strict=False) if b - a > _SAME_CROSSING]
    height, width = grid.navigable.shape
    nav = grid.navigable
    cells, free = [], []
    for k, t in enumerate(ts):
        mid = 0.5 * (t + (ts[k + 1] if k + 1 < len(ts) else 1.0))
        i = math.floor(fi0 + 0.5 + mid * (fi1 - fi0))
        j = math.floor(fj0 + 0.5 + mid * (fj1 - fj0))
        cells.append((i, j))
        free.append(0 <= i < height and 0 <= j < width and bool(nav[i, j]))
    # Corner crossings between diagonal neighbours need one navigable cell beside the corner (as traverse).
    blocked = [
        k + 1
        for k in range(len(ts) - 1)
        if cells[k][0] != cells[k + 1][0]
        and cells[k][1] != cells[k + 1][1]
        and free[k]
        and free[k + 1]
        and not (nav[cells[k][0], cells[k + 1][1]] or nav[cells[k + 1][0], cells[k][1]])
    ]
    for k in blocked:
        free[k] = False
    return ts, cells, free


def free_fraction(
    grid, start_xz: np.ndarray, disp_xz: np.ndarray
) -> tuple[float, np.ndarray | None, np.ndarray]:
    """How far a straight move stays on navigable cells.

    Args:
        grid: a :class:`envs.nav.grid.NavGrid`.
        start_xz: (2,) start point (x, z) in metres.
        disp_xz: (2,) displacement (dx, dz) in metres.

    Returns:
        ``(t, contact, face_normal)``: the fraction ``t`` in [0, 1] of the displacement that keeps the segment
        free, the (2,) x-z point where the segment enters the first blocked cell (None when the whole segment
        is free and ``t == 1``), and the (2,) unit normal (x, z) of the cell face it crossed there, pointing
        back into free space (zeros when free or blocked at the start). A blocked move stops ``STANDOFF``
        metres short of that face, measured perpendicular to it, so a later move along the face does not touch
        it.
    """
    sx, sz, dx, dz = (float(v) for v in (*start_xz, *disp_xz))
    t, contact, normal = free_fraction_xz(grid, sx, sz, dx, dz)
    return t, None if contact is None else np.array(contact), np.array(normal)


def free_fraction_xz(
    grid, sx: float, sz: float, dx: float, dz: float
) -> tuple[float, tuple[float, float] | None, tuple[float, float]]:
    """:func:`free_fraction` on plain floats, for the per-step motion code: ``(t, contact (x, z) or None,
    face normal (x, z))``."""
    ex, ez = sx + dx, sz + dz
    i0, j0 = grid.cell_of(min(sx, ex), min(sz, ez))
    i1, j1 = grid.cell_of(max(sx, ex), max(sz, ez))
    if 0 <= i0 and i1 < grid.shape[0] and 0 <= j0 and j1 < grid.shape[1]:
        # Every cell the segment visits lies in its bounding box of cells: all navigable, all free (the
        # common case of a step in the open, answered without the traversal).
        if grid.navigable[i0 : i1 + 1, j0 : j1 + 1].all():
            return 1.0, None, (0.0, 0.0)
    t, cells, free = traverse_short(grid, (sx, sz), (ex, ez))
    if all(free):
        return 1.0, None, (0.0, 0.0)
    k = free.index(False)
    if k == 0:
        return 0.0, (sx, sz), (0.0, 0.0)
    # (di, dj) into the blocked cell; the normal points back, as (x, z) = -(dj, di), normalised.
    di, dj = cells[k][0] - cells[k - 1][0], cells[k][1] - cells[k - 1][1]
    norm = math.hypot(dj, di)
    nx, nz = -dj / norm, -di / norm
    approach = max(-(nx * dx + nz * dz), 1e-12)
    return max(t[k - 1], t[k] - STANDOFF / approach), (sx + t[k] * dx, sz + t[k] * dz), (nx, nz)
