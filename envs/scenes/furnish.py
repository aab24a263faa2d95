"""Furnishing a room: per-type recipes of furniture groups, placed against walls or in the open, so that an
agent of radius 0.1 m can still walk between every doorway and reach every object.

A group is a few objects placed together (a bed with its nightstands, a table with its chairs). Its frame
follows the furniture convention of :mod:`envs.scenes.furniture`: footprint centred on the origin, front
towards +z, so a group stands against a wall with its back (-z) to the wall. All rectangles are
(x0, z0, x1, z1) in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from envs.scenes.furniture import MODELS, Model
from envs.scenes.palette import OBJECT_COLORS
from envs.scenes.primitives import Part

Rect = tuple[float, float, float, float]
RES = 0.05
AGENT_RADIUS = 0.1
_CLEARANCE = AGENT_RADIUS + 0.05
_REACH = 0.8
_GAP = 0.05


@dataclass
class PlacedObject:
    """A furniture object in world coordinates: ``parts`` are (part, RGB) pairs, main body first."""

    category: str
    color: str
    parts: list[tuple[Part, tuple[int, int, int]]]

    def footprint(self) -> Rect:
        """(x0, z0, x1, z1) bounding rectangle of the object seen from above."""
        v = np.concatenate([p.vertices for p, _ in self.parts])
        return float(v[:, 0].min()), float(v[:, 2].min()), float(v[:, 0].max()), float(v[:, 2].max())


_COLOR_NAMES = tuple(OBJECT_COLORS)
# A plant's named colour is its pot's: a green pot under green leaves would not tell plants apart.
_UNSUITED = {"plant": ["green"]}


class _Group:
    """Objects built in a common frame, recentred so that their joint footprint is centred on the origin."""

    def __init__(self, rng: np.random.Generator, taken: list[tuple[str, str]]) -> None:
        self.rng, self.taken, self.objects = rng, taken, []

    def add(
        self, category: str, turns: int = 0, offset: tuple[float, float, float] = (0, 0, 0), **size
    ) -> Model:
        used = [c for cat, c in self.taken + [(o.category, o.color) for o in self.objects] if cat == category]
        used += _UNSUITED.get(category, [])
        free = [c for c in _COLOR_NAMES if c not in used] or list(_COLOR_NAMES)
        color = free[int(self.rng.integers(len(free)))]
        model = MODELS[category](OBJECT_COLORS[color], self.rng, **size)
        parts = [(p.moved(turns, offset), rgb) for p, rgb in model.parts]
        self.objects.append(PlacedObject(model.category, color, parts))
        return model

    def move_last(self, offset: tuple[float, float, float]) -> None:
        last = self.objects[-1]
        last.parts = [(p.moved(0, offset), c) for p, c in last.parts]

    def size(self) -> tuple[float, float]:
        rects = np.array([o.footprint() for o in self.objects])
        return float(rects[:, 2].max() - rects[:, 0].min()), float(rects[:, 3].max() - rects[:, 1].min())

    def centred(self) -> list[PlacedObject]:
        rects = np.array([o.footprint() for o in self.objects])
        cx, cz = (rects[:, 0].min() + rects[:, 2].max()) / 2, (rects[:, 1].min() + rects[:, 3].max()) / 2
        return [
            PlacedObject(o.category, o.color, [(p.moved(0, (-cx, 0.0, -cz)), c) for p, c in o.parts])
            for o in self.objects
        ]


def _extent(model: Model) -> tuple[float, float, float]:
    v = np.concatenate([p.vertices for p, _ in model.parts])
    return float(v[:, 0].max() - v[:, 0].min()), float(v[:, 1].max()), float(v[:, 2].max() - v[:, 2].min())


def _bed(g: _Group, level: int) -> None:
    w, _, d = _extent(g.add("bed", w=0.95 if level == 2 else 0.0))
    for side in (-1, 1)[: 2 - level]:
        x = side * (w / 2 + 0.05 + 0.225)
        g.add("nightstand", 0, (x, 0.0, -d / 2 + 0.2))
        if side == -1:
            g.add("lamp", 0, (x, 0.5, -d / 2 + 0.2))


def _desk(g: _Group, level: int) -> None:
    w, h, d = _extent(g.add("desk"))
    g.add("computer", 0, (-0.15, h, 0.0))
    if level < 2:
        g.add("chair", 2, (-0.15, 0.0, d / 2 + 0.1))


def _table(g: _Group, level: int) -> None:
    w, _, d = _extent(g.add("table"))
    xs = (-w / 4, w / 4) if w >= 1.3 else (0.0,)
    n_sides = 2 if level < 2 else 1
    for turns, z in ((2, d / 2 + 0.12), (0, -d / 2 - 0.12))[:n_sides]:
        for x in xs[: 2 - level // 2]:
            g.add("chair", turns, (x, 0.0, z))
    if level == 0:
        for turns, x in ((3, w / 2 + 0.12), (1, -w / 2 - 0.12)):
            g.add("chair", turns, (x, 0.0, 0.0))


def _sofa(g: _Group, level: int) -> None:
    _, _, d = _extent(g.add("sofa"))
    if level < 2:
        g.move_last((0.0, 0.0, d / 2 + 0.45 + _extent(g.add("coffee table"))[2] / 2))


def _tv(g: _Group, level: int) -> None:
    _, h, _ = _extent(g.add("tv stand"))
    g.add("tv", 0, (0.0, h, -0.05))


def _bathtub(g: _Group, level: int) -> None:
    g.add("bathtub", w=1.4 if level == 2 else 0.0)


_GROUPS = {"bathtub": _bathtub, "bed": _bed, "desk": _desk, "dining table": _table, "sofa": _sofa, "tv": _tv}

#: Recipes: (group or category, "wall" | "centre", required) in placement order.
RECIPES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "kitchen": (
        ("counter", "wall", True),
        ("fridge", "wall", True),
        ("stove", "wall", True),
        ("dining table", "centre", False),
        ("plant", "wall", False),
    ),
    "bedroom": (
        ("bed", "wall", True),
        ("wardrobe", "wall", True),
        ("desk", "wall", False),
        ("plant", "wall", False),
        ("floor lamp", "wall", False),
    ),
    "bathroom": (
        ("bathtub", "wall", True),
        ("toilet", "wall", True),
        ("sink", "wall", True),
        ("laundry basket", "wall", False),
    ),
    "living room": (
        ("sofa", "wall", True),
        ("tv", "wall", True),
        ("armchair", "wall", True),
        ("bookcase", "wall", False),
        ("plant", "wall", False),
        ("floor lamp", "wall", False),
    ),
    "office": (
        ("desk", "wall", True),
        ("bookcase", "wall", True),
        ("armchair", "wall", False),
        ("plant", "wall", False),
        ("shelf", "wall", False),
    ),
    "dining room": (
        ("dining table", "centre", True),
        ("cabinet", "wall", True),
        ("plant", "wall", False),
        ("floor lamp", "wall", False),
    ),
    "hallway": (
        ("coat rack", "wall", True),
        ("shelf", "wall", True),
        ("plant", "wall", True),
        ("bench", "wall", False),
    ),
    "laundry room": (
        ("washing machine", "wall", True),
        ("dryer", "wall", True),
        ("laundry basket", "wall", False),
        ("shelf", "wall", False),
        ("sink", "wall", False),
    ),
}


@dataclass(frozen=True)
class DoorZone:
    """A doorway seen from inside a room: ``point`` (x, z) just inside it, which must stay reachable, and
    ``keepout``, the rectangle in front of it where no furniture may stand."""

    point: tuple[float, float]
    keepout: Rect


def door_zone(cell: Rect, axis: str, coord: float, lo: float, hi: float, depth: float = 1.0) -> DoorZone:
    """The :class:`DoorZone` of a doorway on the cell boundary ``axis`` = ``coord`` spanning [lo, hi]."""
    x0, z0, x1, z1 = cell
    mid = (lo + hi) / 2
    if axis == "x":
        inward = 1.0 if abs(coord - x0) < abs(coord - x1) else -1.0
        xs = sorted((coord, coord + inward * depth))
        return DoorZone((coord + inward * 0.25, mid), (xs[0], lo - 0.1, xs[1], hi + 0.1))
    inward = 1.0 if abs(coord - z0) < abs(coord - z1) else -1.0
    zs = sorted((coord, coord + inward * depth))
    return DoorZone((mid, coord + inward * 0.25), (lo - 0.1, zs[0], hi + 0.1, zs[1]))


def _overlaps(a: Rect, b: Rect, gap: float = 0.0) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def walkable(inner: Rect, obstacles: list[Rect], doors: list[DoorZone], targets: list[Rect]) -> bool:
    """Whether a disc of radius ``AGENT_RADIUS`` (+5 cm margin) can go from every door point to every other
    and to within ``_REACH`` metres of every target rectangle, inside ``inner`` (the walls' inner faces)."""
    x0, z0, x1, z1 = inner
    nx, nz = int(round((x1 - x0) / RES)), int(round((z1 - z0) / RES))
    xs, zs = x0 + (np.arange(nx) + 0.5) * RES, z0 + (np.arange(nz) + 0.5) * RES
    free = np.ones((nz, nx), bool)
    for a, b, c, d in obstacles:
        free[
            np.searchsorted(zs, b) : np.searchsorted(zs, d, "right"),
            np.searchsorted(xs, a) : np.searchsorted(xs, c, "right"),
        ] = False
    dist = ndimage.distance_transform_edt(np.pad(free, 1))[1:-1, 1:-1] * RES
    labels, _ = ndimage.label(dist - RES / 2 >= _CLEARANCE)
    ix = [min(nx - 1, max(0, int((p[0] - x0) / RES))) for p in (dz.point for dz in doors)]
    iz = [min(nz - 1, max(0, int((p[1] - z0) / RES))) for p in (dz.point for dz in doors)]
    door_labels = labels[iz, ix]
    if len(door_labels) == 0 or door_labels[0] == 0 or np.any(door_labels != door_labels[0]):
        return False
    reach = labels == door_labels[0]
    for a, b, c, d in targets:
        near = reach[
            np.searchsorted(zs, b - _REACH) : np.searchsorted(zs, d + _REACH, "right"),
            np.searchsorted(xs, a - _REACH) : np.searchsorted(xs, c + _REACH, "right"),
        ]
        if not near.any():
            return False
    return True


def _candidate(
    rng: np.random.Generator, inner: Rect, size: tuple[float, float], mode: str
) -> tuple[int, float, float] | None:
    """(quarter turns, x, z) of a random placement of a group of footprint ``size`` = (w, d)."""
    x0, z0, x1, z1 = inner
    w, d = size
    if mode == "centre":
        turns = int(rng.integers(2))
        ex, ez = (w, d) if turns == 0 else (d, w)
        lo_x, hi_x, lo_z, hi_z = x0 + ex / 2 + 0.3, x1 - ex / 2 - 0.3, z0 + ez / 2 + 0.3, z1 - ez / 2 - 0.3
        if lo_x > hi_x or lo_z > hi_z:
            return None
        return turns, float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_z, hi_z))
    turns = int(rng.integers(4))
    gap = 0.02
    if turns % 2 == 0:
        lo, hi = x0 + w / 2 + gap, x1 - w / 2 - gap
        along = float(rng.uniform(lo, hi)) if lo <= hi else None
        across = z0 + gap + d / 2 if turns == 0 else z1 - gap - d / 2
        return None if along is None else (turns, along, across)
    lo, hi = z0 + w / 2 + gap, z1 - w / 2 - gap
    along = float(rng.uniform(lo, hi)) if lo <= hi else None
    across = x0 + gap + d / 2 if turns == 1 else x1 - gap - d / 2
    return None if along is None else (turns, across, along)


def _build(rng: np.random.Generator, kind: str, level: int, taken: list[tuple[str, str]]) -> _Group:
    group = _Group(rng, taken)
    if kind in _GROUPS:
        _GROUPS[kind](group, level)
    else:
        group.add(kind)
    return group


def furnish_room(
    rng: np.random.Generator, room_type: str, inner: Rect, doors: list[DoorZone]
) -> list[PlacedObject]:
    """Furniture for one room, following ``RECIPES[room_type]``.

    Args:
        rng: the house's generator (consumed deterministically).
        room_type: a key of ``RECIPES``.
        inner: (x0, z0, x1, z1) rectangle of the room's free floor (inner faces of its walls), metres.
        doors: the room's doorways.

    Returns:
        Placed objects in world coordinates; optional items that do not fit are left out, required ones are
        tried smaller (fewer chairs, no nightstand) before being left out.
    """
    placed: list[PlacedObject] = []
    for kind, mode, required in RECIPES[room_type]:
        if not required and rng.random() < 0.35:
            continue
        for level in range(3):
            taken = [(o.category, o.color) for o in placed]
            group = _build(rng, kind, level, taken)
            fit = _fit(rng, group, mode, inner, doors, placed)
            if fit is not None:
                placed += fit
                break
    return placed


def _fit(
    rng: np.random.Generator,
    group: _Group,
    mode: str,
    inner: Rect,
    doors: list[DoorZone],
    placed: list[PlacedObject],
    n_tries: int = 20,
) -> list[PlacedObject] | None:
    """The group moved to the first random spot that keeps doors clear and the room walkable, or None."""
    objects = group.centred()
    taken = [o.footprint() for o in placed]
    for _ in range(n_tries):
        spot = _candidate(rng, inner, group.size(), mode)
        if spot is None:
            return None
        turns, x, z = spot
        moved = [
            PlacedObject(o.category, o.color, [(p.moved(turns, (x, 0.0, z)), c) for p, c in o.parts])
            for o in objects
        ]
        rects = [o.footprint() for o in moved]
        if any(r[0] < inner[0] or r[1] < inner[1] or r[2] > inner[2] or r[3] > inner[3] for r in rects):
            continue
        if any(_overlaps(r, t, _GAP) for r in rects for t in taken):
            continue
        if any(_overlaps(r, dz.keepout) for r in rects for dz in doors):
            continue
        if walkable(inner, taken + rects, doors, taken + rects):
            return moved
    return None
