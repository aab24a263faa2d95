"""Procedural single-floor houses: rooms from a recursive split of a rectangle, walls with doorways, patterned
floors, ceilings and furniture, all annotated (rooms, instances with categories and colour names, doorways).

The house is centred on the origin of Habitat's frame (y up, floor at y = 0). Only
``np.random.default_rng(seed)`` draws, exact arithmetic and ordered containers are used, so a seed gives a
bit-identical scene on every machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

from envs.scenes.decor import decorate_room
from envs.scenes.furnish import PlacedObject, door_zone, furnish_room
from envs.scenes.layout import Cell, Door, house_size, place_doors, room_names, room_types, split_house
from envs.scenes.palette import CEILING, FLOOR_MATERIALS, LINEN, WALL_COLORS, shade
from envs.scenes.primitives import MeshBuilder, box, quad_y
from envs.scenes.scene import Instance, Room, Scene, SceneMesh

log = logging.getLogger(__name__)

MIN_ROOMS, MAX_ROOMS = 2, 8
TRIM_WIDTH, TRIM_DEPTH = 0.06, 0.012
TRIM = shade(LINEN, 0.97)


@dataclass(frozen=True)
class HouseOptions:
    """Options of :func:`generate_house` (lengths in metres).

    Attributes:
        wall_height: height of walls and ceilings.
        wall_thickness: thickness of every wall (interior walls are centred on the line between two rooms).
        door_height: height of the lintel's underside above doorways; None leaves full-height openings.
        door_width: (min, max) width of doorways.
        min_room_side: shortest side of a room.
        extra_door_prob: probability of one doorway beyond a spanning tree of the rooms (a loop).
        furnish: whether to place furniture.
    """

    wall_height: float = 2.6
    wall_thickness: float = 0.1
    door_height: float | None = 2.1
    door_width: tuple[float, float] = (0.9, 1.1)
    min_room_side: float = 2.5
    extra_door_prob: float = 0.5
    furnish: bool = True

    def __post_init__(self) -> None:
        if not 2.0 <= self.wall_height <= 5.0:
            raise ValueError(f"wall_height must be in [2, 5] m, got {self.wall_height}")
        if not 0.02 <= self.wall_thickness <= 0.4:
            raise ValueError(f"wall_thickness must be in [0.02, 0.4] m, got {self.wall_thickness}")
        if self.door_height is not None and not 1.8 <= self.door_height < self.wall_height:
            raise ValueError(f"door_height must be None or in [1.8, wall_height), got {self.door_height}")
        lo, hi = self.door_width
        if not 0.6 <= lo <= hi <= 1.5:
            raise ValueError(
                f"door_width must be (min, max) with 0.6 <= min <= max <= 1.5 m, got {self.door_width}"
            )
        if not 2.0 <= self.min_room_side <= 4.0:
            raise ValueError(f"min_room_side must be in [2, 4] m, got {self.min_room_side}")
        if not 0.0 <= self.extra_door_prob <= 1.0:
            raise ValueError(f"extra_door_prob must be in [0, 1], got {self.extra_door_prob}")


def _layout(rng: np.random.Generator, n_rooms: int, opts: HouseOptions) -> tuple[list[Cell], list[Door]]:
    """Room cells and doorways; a house that cannot be split or connected is redrawn a little larger."""
    for attempt in range(30):
        width, depth = house_size(rng, n_rooms)
        grow = 0.5 * attempt
        cells = split_house(rng, width + grow, depth + grow, n_rooms, opts.min_room_side)
        doors = place_doors(rng, cells, opts.door_width, opts.extra_door_prob) if cells else []
        if cells and doors:
            return cells, doors
        log.debug("layout attempt %d failed for %d rooms", attempt, n_rooms)
    raise RuntimeError(f"could not lay out {n_rooms} rooms of at least {opts.min_room_side} m")


def _edges(cell: Cell) -> list[tuple[str, float, float, float, float]]:
    """The four boundary lines of a cell as (axis, coord, lo, hi, inward sign)."""
    return [
        ("z", cell.z0, cell.x0, cell.x1, 1.0),
        ("z", cell.z1, cell.x0, cell.x1, -1.0),
        ("x", cell.x0, cell.z0, cell.z1, 1.0),
        ("x", cell.x1, cell.z0, cell.z1, -1.0),
    ]


def _slab(
    axis: str, along: tuple[float, float], ys: tuple[float, float], across: tuple[float, float], skip=()
):
    """A box spanning ``along`` the wall line ``axis`` = const, ``across`` it, and ``ys`` in height."""
    (a, b), (y0, y1), (c0, c1) = along, ys, sorted(across)
    if axis == "z":
        return box((a, y0, c0), (b, y1, c1), skip=skip)
    return box((c0, y0, a), (c1, y1, b), skip=skip)


def _trim(axis: str, face: float, inward: float, spans: list, gaps: list, opts: HouseOptions) -> list:
    """Skirting boards along the wall spans and casings around the doorways, on the room's side of a wall."""
    across = (face, face + inward * TRIM_DEPTH)
    parts = [_slab(axis, (a, b), (0.0, 0.08), across, ("-y",)) for a, b in spans if b - a > 1e-6]
    top = opts.door_height if opts.door_height is not None else opts.wall_height - TRIM_WIDTH
    for g_lo, g_hi in gaps:
        for a in (g_lo - TRIM_WIDTH, g_hi):
            parts.append(_slab(axis, (a, a + TRIM_WIDTH), (0.0, top + TRIM_WIDTH), across, ("-y",)))
        parts.append(_slab(axis, (g_lo, g_hi), (top, top + TRIM_WIDTH), across))
    return parts


def _walls(cell: Cell, i: int, doors: list[Door], house: Cell, opts: HouseOptions, paint: tuple) -> list:
    """(part, RGB) of room ``i``'s half of every wall around it (all of it for outer walls), with trim."""
    half, height = opts.wall_thickness / 2, opts.wall_height
    out = []
    for axis, coord, lo, hi, inward in _edges(cell):
        outer = coord in ((house.x0, house.x1) if axis == "x" else (house.z0, house.z1))
        ends = (house.z0, house.z1) if axis == "x" else (house.x0, house.x1)
        across = (coord + inward * half, coord - inward * half if outer else coord)
        hidden = () if outer else ((f"-{axis}",) if inward > 0 else (f"+{axis}",))
        gaps = sorted(
            (d.lo, d.hi) for d in doors if i in (d.a, d.b) and d.axis == axis and abs(d.coord - coord) < 1e-6
        )
        start = lo - half if outer and lo in ends else lo
        stops = [*gaps, (hi + half if outer and hi in ends else hi, None)]
        for g_lo, g_hi in stops:
            out.append((_slab(axis, (start, g_lo), (0.0, height), across, hidden + ("-y",)), paint))
            if g_hi is not None and opts.door_height is not None:
                out.append((_slab(axis, (g_lo, g_hi), (opts.door_height, height), across, hidden), paint))
            start = g_hi
        bounds = [lo + half] + [x for g in gaps for x in (g[0] - TRIM_WIDTH, g[1] + TRIM_WIDTH)] + [hi - half]
        spans = list(zip(bounds[::2], bounds[1::2], strict=True))
        out += [(part, TRIM) for part in _trim(axis, coord + inward * half, inward, spans, gaps, opts)]
    return out


#: Floor pieces (x, z) in metres per pattern. Each piece is two triangles; on llvmpipe a frame's cost grows
#: with the triangles drawn and the floor is in almost every frame, so pieces are large: wide planks, large
#: tiles and wall-to-wall carpet.
FLOOR_PIECES = {"wood": (2.4, 0.4), "tile": (1.0, 1.0), "carpet": (None, None)}


def _floor(mb: MeshBuilder, rng: np.random.Generator, cell: Cell, material: tuple, sid: int) -> None:
    """Floor of a cell: staggered wood planks and carpet slightly varied in tone, or checkered tiles."""
    pattern, _, rgb = material
    step_x, step_z = FLOOR_PIECES[pattern]
    if step_x is None:  # one piece
        step_x, step_z = cell.x1 - cell.x0, cell.z1 - cell.z0
    nx, nz = (
        int(np.ceil((cell.x1 - cell.x0) / step_x - 1e-9)),
        int(np.ceil((cell.z1 - cell.z0) / step_z - 1e-9)),
    )
    for j in range(nz):
        z0, z1 = cell.z0 + j * step_z, min(cell.z1, cell.z0 + (j + 1) * step_z)
        offset = (j % 3) * step_x / 3 if pattern == "wood" else 0.0
        xs = [cell.x0] + [cell.x0 + k * step_x - offset for k in range(1, nx + 1)] + [cell.x1]
        xs = sorted({min(max(x, cell.x0), cell.x1) for x in xs})
        for k in range(len(xs) - 1):
            if xs[k + 1] - xs[k] < 1e-6:
                continue
            tone = 0.92 if pattern == "tile" and (j + k) % 2 else 1.0
            tone *= float(rng.uniform(0.94, 1.06)) if pattern != "tile" else 1.0
            mb.add(quad_y(xs[k], xs[k + 1], z0, z1, 0.0), shade(rgb, tone), sid)


def _outline(cells: list[Cell]) -> Cell:
    """The rectangle of the whole house."""
    return Cell(
        min(c.x0 for c in cells), min(c.z0 for c in cells), max(c.x1 for c in cells), max(c.z1 for c in cells)
    )


def _structure(rng, cells, doors, paints, floors, opts) -> tuple[SceneMesh, dict[int, Instance]]:
    """Floors, walls and ceilings of every room, with their instances (ids from 1, three per room)."""
    mb = MeshBuilder()
    instances: dict[int, Instance] = {}
    house = _outline(cells)
    half, height = opts.wall_thickness / 2, opts.wall_height
    for i, cell in enumerate(cells):
        sid = 3 * i + 1
        _floor(mb, rng, cell, floors[i], sid)
        for part, rgb in _walls(cell, i, doors, house, opts, WALL_COLORS[paints[i]]):
            mb.add(part, rgb, sid + 1)
        mb.add(
            quad_y(cell.x0 + half, cell.x1 - half, cell.z0 + half, cell.z1 - half, height, up=False),
            CEILING,
            sid + 2,
        )
        if opts.door_height is None:
            for d in doors:
                if d.a == i:
                    x0, z0 = (d.coord - half, d.lo) if d.axis == "x" else (d.lo, d.coord - half)
                    x1, z1 = (d.coord + half, d.hi) if d.axis == "x" else (d.hi, d.coord + half)
                    mb.add(quad_y(x0, x1, z0, z1, height, up=False), CEILING, sid + 2)
        instances[sid] = Instance(sid, "floor", i, floors[i][1])
        instances[sid + 1] = Instance(sid + 1, "wall", i, paints[i])
        instances[sid + 2] = Instance(sid + 2, "ceiling", i, "white")
    return mb.build(double_sided=False), instances


def _furniture(rng, cells, doors, types, opts, first_id) -> tuple[SceneMesh, dict[int, Instance]]:
    """Furniture, windows and pictures of every room, one instance each (ids from ``first_id``)."""
    mb = MeshBuilder()
    instances: dict[int, Instance] = {}
    half = opts.wall_thickness / 2
    house = _outline(cells)
    sid = first_id
    for i, cell in enumerate(cells):
        rect = (cell.x0, cell.z0, cell.x1, cell.z1)
        zones = [door_zone(rect, d.axis, d.coord, d.lo, d.hi) for d in doors if i in (d.a, d.b)]
        inner = (cell.x0 + half, cell.z0 + half, cell.x1 - half, cell.z1 - half)
        objects: list[PlacedObject] = furnish_room(rng, types[i], inner, zones) if opts.furnish else []
        outer = (cell.z0 == house.z0, cell.x0 == house.x0, cell.z1 == house.z1, cell.x1 == house.x1)
        windows, pictures = decorate_room(rng, inner, outer, zones, objects)
        for obj in objects + windows + (pictures if opts.furnish else []):
            for part, rgb in obj.parts:
                mb.add(part, rgb, sid)
            instances[sid] = Instance(sid, obj.category, i, obj.color, is_object=obj.category != "window")
            sid += 1
    return mb.build(double_sided=False), instances


def _set_boxes(meshes: list[SceneMesh], instances: dict[int, Instance]) -> None:
    """Fill every instance's ``position`` (bounding-box centre) and ``size`` (extent) from its faces."""
    for mesh in meshes:
        tri = mesh.triangles
        lo, hi = tri.min(axis=1), tri.max(axis=1)
        for sid in np.unique(mesh.semantic_ids):
            sel = mesh.semantic_ids == sid
            a, b = lo[sel].min(axis=0), hi[sel].max(axis=0)
            instances[int(sid)].position = ((a + b) / 2).astype(np.float32)
            instances[int(sid)].size = (b - a).astype(np.float32)


def generate_house(seed: int, n_rooms: int | None = None, **options) -> Scene:
    """A furnished single-floor house drawn from ``seed``.

    Args:
        seed: non-negative integer; the same seed (and arguments) gives a bit-identical scene on every
            machine.
        n_rooms: number of rooms in [2, 8]; None draws 3–6 from the seed.
        **options: fields of :class:`HouseOptions` (wall_height, wall_thickness, door_height, door_width,
            min_room_side, extra_door_prob, furnish).

    Returns:
        A :class:`Scene` named ``house_<seed:05d>`` in Habitat's frame (y up, floor at y = 0, metres): mesh
        0 holds floors, walls and ceilings, mesh 1 the furniture, windows and pictures. Every face has a
        semantic id listed in ``instances``; each room has a floor, a wall and a ceiling instance and maybe
        windows (``is_object=False``); each piece of furniture and each picture an instance with a category,
        a colour name from ``palette.OBJECT_COLORS`` and ``is_object=True``. ``rooms`` hold rectangular
        polygons (counter-clockwise seen from above), wall colour names and unique names; ``doors`` the
        doorway centres (x, 0, z).

    Raises:
        ValueError: for a negative or non-integer seed, a room count outside [2, 8] or a bad option.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if n_rooms is not None and (isinstance(n_rooms, bool) or not MIN_ROOMS <= n_rooms <= MAX_ROOMS):
        raise ValueError(f"n_rooms must be None or an integer in [{MIN_ROOMS}, {MAX_ROOMS}], got {n_rooms!r}")
    valid = [f.name for f in fields(HouseOptions)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown house option(s) {unknown}; valid options are {valid}")
    opts = HouseOptions(**options)
    rng = np.random.default_rng(int(seed))
    drawn = int(rng.integers(3, 7))
    n = int(n_rooms) if n_rooms is not None else drawn
    cells, doors = _layout(rng, n, opts)
    types = room_types(rng, cells)
    names = room_names(types)
    paints = [list(WALL_COLORS)[k] for k in rng.choice(len(WALL_COLORS), n, replace=False)]
    floors = [FLOOR_MATERIALS[k] for k in rng.choice(len(FLOOR_MATERIALS), n, replace=False)]
    structure, instances = _structure(rng, cells, doors, paints, floors, opts)
    meshes = [structure]
    furniture, objects = _furniture(rng, cells, doors, types, opts, first_id=3 * n + 1)
    if len(furniture.faces):
        meshes.append(furniture)
        instances.update(objects)
    _set_boxes(meshes, instances)
    rooms = [
        Room(i, types[i], names[i], paints[i], [(c.x0, c.z1), (c.x1, c.z1), (c.x1, c.z0), (c.x0, c.z0)])
        for i, c in enumerate(cells)
    ]
    door_xyz = [(d.centre[0], 0.0, d.centre[1]) for d in doors]
    return Scene(meshes, instances, rooms, name=f"house_{int(seed):05d}", doors=door_xyz)
