"""Floor plans of generated houses: a rectangle split recursively (BSP) into rooms, doorways between them.

Coordinates are (x, z) in metres on a 10 cm grid; the house is centred on the origin. Rooms are axis-aligned
cells that share their boundaries with neighbours (the wall between two cells is centred on the shared line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = 0.1


@dataclass(frozen=True)
class Cell:
    """An axis-aligned room cell [x0, x1] × [z0, z1] in metres."""

    x0: float
    z0: float
    x1: float
    z1: float

    @property
    def area(self) -> float:
        """Area in square metres."""
        return (self.x1 - self.x0) * (self.z1 - self.z0)


@dataclass(frozen=True)
class Door:
    """A doorway in the wall on the line ``axis`` = ``coord`` (axis "x": a wall at constant x), spanning
    [lo, hi] along the wall, between rooms ``a`` and ``b``."""

    a: int
    b: int
    axis: str
    coord: float
    lo: float
    hi: float

    @property
    def centre(self) -> tuple[float, float]:
        """(x, z) centre of the doorway in metres."""
        mid = (self.lo + self.hi) / 2
        return (self.coord, mid) if self.axis == "x" else (mid, self.coord)


def _snap(value: float) -> float:
    return round(value / GRID) * GRID


def house_size(rng: np.random.Generator, n_rooms: int) -> tuple[float, float]:
    """(width along x, depth along z) in metres: about 15–21 m² per room, 6–16 m per side."""
    area = max(40.0, n_rooms * float(rng.uniform(15.0, 21.0)))
    aspect = float(rng.uniform(1.0, 1.5))
    long_side = min(16.0, max(8.0, float(np.sqrt(area * aspect))))
    short_side = min(16.0, max(6.0, area / long_side))
    if rng.random() < 0.5:
        return _snap(long_side), _snap(short_side)
    return _snap(short_side), _snap(long_side)


def _split(rng: np.random.Generator, cell: Cell, min_side: float) -> tuple[Cell, Cell] | None:
    """Split ``cell`` across its longer side (or the other one when that one is too short)."""
    w, d = cell.x1 - cell.x0, cell.z1 - cell.z0
    axes = ["x", "z"] if w >= d else ["z", "x"]
    if max(w, d) < 1.25 * min(w, d) and rng.random() < 0.5:
        axes.reverse()
    for axis in axes:
        lo, hi = (cell.x0, cell.x1) if axis == "x" else (cell.z0, cell.z1)
        length = hi - lo
        a = np.ceil(max(min_side, 0.35 * length) / GRID) * GRID
        b = np.floor(min(length - min_side, 0.65 * length) / GRID) * GRID
        if a > b + 1e-9:
            continue
        cut = _snap(lo + a + float(rng.uniform(0.0, b - a)))
        if axis == "x":
            return Cell(cell.x0, cell.z0, cut, cell.z1), Cell(cut, cell.z0, cell.x1, cell.z1)
        return Cell(cell.x0, cell.z0, cell.x1, cut), Cell(cell.x0, cut, cell.x1, cell.z1)
    return None


def split_house(
    rng: np.random.Generator, width: float, depth: float, n_rooms: int, min_side: float
) -> list[Cell]:
    """``n_rooms`` cells tiling the house, splitting the largest splittable cell ([] if impossible)."""
    cells = [Cell(_snap(-width / 2), _snap(-depth / 2), _snap(-width / 2) + width, _snap(-depth / 2) + depth)]
    while len(cells) < n_rooms:
        order = sorted(range(len(cells)), key=lambda i: (-cells[i].area, i))
        for i in order:
            halves = _split(rng, cells[i], min_side)
            if halves is not None:
                cells[i : i + 1] = list(halves)
                break
        else:
            return []
    return cells


def shared_walls(cells: list[Cell], min_length: float) -> list[tuple[int, int, str, float, float, float]]:
    """Pairs of cells whose boundaries share a segment of at least ``min_length`` metres.

    Returns:
        (i, j, axis, coord, lo, hi) with i < j: the shared segment lies on ``axis`` = ``coord``, spanning
        [lo, hi].
    """
    out = []
    for i, a in enumerate(cells):
        for j in range(i + 1, len(cells)):
            b = cells[j]
            for axis, ca, cb, (lo, hi) in (
                ("x", a.x1, b.x0, (max(a.z0, b.z0), min(a.z1, b.z1))),
                ("x", a.x0, b.x1, (max(a.z0, b.z0), min(a.z1, b.z1))),
                ("z", a.z1, b.z0, (max(a.x0, b.x0), min(a.x1, b.x1))),
                ("z", a.z0, b.z1, (max(a.x0, b.x0), min(a.x1, b.x1))),
            ):
                if abs(ca - cb) < 1e-6 and hi - lo >= min_length - 1e-9:
                    out.append((i, j, axis, ca, lo, hi))
    return out


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def place_doors(
    rng: np.random.Generator,
    cells: list[Cell],
    widths: tuple[float, float],
    extra_door_prob: float,
    corner_margin: float = 0.35,
) -> list[Door]:
    """Doorways along a random spanning tree of the neighbour graph, maybe plus one; [] if disconnected."""
    walls = shared_walls(cells, widths[1] + 2 * corner_margin)
    parent = list(range(len(cells)))
    chosen, spare = [], []
    for k in rng.permutation(len(walls)):
        i, j = walls[k][0], walls[k][1]
        ri, rj = _find(parent, i), _find(parent, j)
        if ri != rj:
            parent[ri] = rj
            chosen.append(walls[k])
        else:
            spare.append(walls[k])
    if len(chosen) != len(cells) - 1:
        return []
    if spare and rng.random() < extra_door_prob:
        chosen.append(spare[int(rng.integers(len(spare)))])
    doors = []
    for i, j, axis, coord, lo, hi in chosen:
        width = round(float(rng.uniform(*widths)) / 0.05) * 0.05
        a, b = lo + corner_margin + width / 2, hi - corner_margin - width / 2
        mid = round((a + float(rng.uniform(0.0, max(0.0, b - a)))) / 0.05) * 0.05
        mid = min(max(mid, a), b)
        doors.append(Door(i, j, axis, coord, mid - width / 2, mid + width / 2))
    return doors


#: How big a room of each type likes to be (larger types take the larger cells).
_SIZE_RANK = {
    "living room": 8,
    "dining room": 7,
    "kitchen": 6,
    "bedroom": 5,
    "office": 4,
    "hallway": 3,
    "laundry room": 2,
    "bathroom": 1,
}
_CORE = ("kitchen", "bedroom", "bathroom")
_EXTRA = ("bedroom", "office", "dining room", "hallway", "laundry room", "bathroom", "bedroom")


def room_types(rng: np.random.Generator, cells: list[Cell]) -> list[str]:
    """A type per cell: a living room, then kitchen/bedroom/bathroom, then extras; big types in big cells."""
    n = len(cells)
    types = ["living room"]
    if n - 1 <= len(_CORE):
        types += [_CORE[k] for k in sorted(rng.choice(len(_CORE), n - 1, replace=False))]
    else:
        types += list(_CORE) + [_EXTRA[k] for k in rng.choice(len(_EXTRA), n - 4, replace=False)]
    types.sort(key=lambda t: -_SIZE_RANK[t])
    by_area = sorted(range(n), key=lambda i: (-cells[i].area, i))
    out = [""] * n
    for t, i in zip(types, by_area, strict=True):
        out[i] = t
    return out


_ORDINALS = ("", "second ", "third ", "fourth ", "fifth ", "sixth ", "seventh ", "eighth ")


def room_names(types: list[str]) -> list[str]:
    """Unique names: the first room of a type is named after it, later ones "second bedroom", "third ..."."""
    seen: dict[str, int] = {}
    names = []
    for t in types:
        k = seen.get(t, 0)
        seen[t] = k + 1
        names.append(f"{_ORDINALS[k]}{t}")
    return names
