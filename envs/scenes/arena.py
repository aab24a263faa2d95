"""Cluttered arenas: an open walled floor with many obstacles, the System-1 training and evaluation scenes.

NavDP's ``cluttered_easy`` / ``cluttered_hard`` benchmark scenes are open floors scattered with obstacles;
these are their procedural counterpart. An arena holds boxes, cylinders, thin poles, tables on legs (the
camera sees under their tops, the body does not pass) and pieces of house furniture
(:mod:`envs.scenes.furniture`), all on a 5 cm grid and turned by quarter turns only. ``hard`` arenas are
denser and their obstacles larger.

Like the houses (:mod:`envs.scenes.generate`), only ``np.random.default_rng(seed)`` draws and exact
arithmetic are used, so a seed gives a bit-identical scene on every machine. An arena whose free floor is not
one large connected region is redrawn (from the same generator, so still deterministic); after
``max_tries`` draws generation fails with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

from envs.nav.grid import AgentBody, NavGrid
from envs.scenes import furniture
from envs.scenes.palette import FLOOR_MATERIALS, OBJECT_COLORS, WALL_COLORS
from envs.scenes.primitives import MeshBuilder, Part, box, cylinder, quad_y
from envs.scenes.scene import Instance, Room, Scene

log = logging.getLogger(__name__)

DIFFICULTIES = ("easy", "hard")
#: Per difficulty: obstacles per m² of floor and the (min, max) footprint side of boxes and cylinders (m).
DENSITY = {"easy": 0.2, "hard": 0.35}
OBSTACLE_SIDE = {"easy": (0.3, 0.8), "hard": (0.4, 1.2)}
#: Relative frequency of each obstacle kind (fixed order: seeded draws index it).
KINDS = (("box", 4), ("cylinder", 3), ("pole", 2), ("table", 2), ("furniture", 3))
#: Furniture models that make sense standing alone in an arena.
FURNITURE = ("chair", "sofa", "armchair", "bookcase", "cabinet", "plant", "bench", "coffee_table", "desk")
WALL_THICKNESS = 0.1
#: The free floor must keep this fraction of the floor and its largest region this fraction of the free cells.
MIN_FREE_FRACTION = 0.35
MIN_LARGEST_REGION = 0.9


@dataclass(frozen=True)
class ArenaOptions:
    """Options of :func:`generate_arena` (lengths in metres).

    Attributes:
        difficulty: ``easy`` or ``hard`` (density and obstacle sizes, see ``DENSITY`` / ``OBSTACLE_SIDE``).
        size: side of the square floor, in [4, 40].
        density: obstacles per m² (None: the difficulty's).
        wall_height: height of the surrounding walls, in [0.5, 5].
        max_tries: draws before giving up on a navigable arena.
    """

    difficulty: str = "easy"
    size: float = 8.0
    density: float | None = None
    wall_height: float = 1.5
    max_tries: int = 20

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(
                f"ArenaOptions.difficulty must be one of {DIFFICULTIES}, got {self.difficulty!r}"
            )
        if not 4.0 <= self.size <= 40.0:
            raise ValueError(f"ArenaOptions.size must be in [4, 40] m, got {self.size!r}")
        if self.density is not None and not 0.0 <= self.density <= 1.0:
            raise ValueError(f"ArenaOptions.density must be None or in [0, 1] per m², got {self.density!r}")
        if not 0.5 <= self.wall_height <= 5.0:
            raise ValueError(f"ArenaOptions.wall_height must be in [0.5, 5] m, got {self.wall_height!r}")
        if isinstance(self.max_tries, bool) or not isinstance(self.max_tries, int) or self.max_tries < 1:
            raise ValueError(f"ArenaOptions.max_tries must be an int >= 1, got {self.max_tries!r}")

    @property
    def obstacle_density(self) -> float:
        """Obstacles per m² of floor."""
        return DENSITY[self.difficulty] if self.density is None else float(self.density)


def _grid(value: float) -> float:
    """``value`` rounded to the 5 cm grid."""
    return round(value / 0.05) * 0.05


def _color(rng: np.random.Generator) -> tuple[str, tuple[int, int, int]]:
    name = list(OBJECT_COLORS)[int(rng.integers(len(OBJECT_COLORS)))]
    return name, OBJECT_COLORS[name]


def _obstacle(rng: np.random.Generator, kind: str, side: tuple[float, float]):
    """(category, colour name, parts centred on the origin) of one obstacle of ``kind``."""
    name, rgb = _color(rng)
    lo, hi = side
    if kind == "box":
        w, d = furniture.draw_size(rng, lo, hi), furniture.draw_size(rng, lo, hi)
        h = furniture.draw_size(rng, 0.3, 1.6)
        return "box", name, [(box((-w / 2, 0.0, -d / 2), (w / 2, h, d / 2)), rgb)]
    if kind == "cylinder":
        r, h = furniture.draw_size(rng, lo / 2, hi / 2), furniture.draw_size(rng, 0.4, 1.8)
        return "cylinder", name, [(cylinder((0.0, 0.0, 0.0), r, h), rgb)]
    if kind == "pole":
        r = furniture.draw_size(rng, 0.03, 0.06) if rng.random() < 0.5 else 0.03
        return "pole", name, [(cylinder((0.0, 0.0, 0.0), r, furniture.draw_size(rng, 1.4, 2.4)), rgb)]
    if kind == "table":
        height = furniture.draw_size(rng, 0.4, 0.8)
        model = furniture.table(rgb, rng, height=height, w=furniture.draw_size(rng, 0.6, 1.4))
        return "table", name, model.parts
    model_name = FURNITURE[int(rng.integers(len(FURNITURE)))]
    model = getattr(furniture, model_name)(rgb, rng)
    return model.category, name, model.parts


def _place(rng: np.random.Generator, parts: list, half: float) -> tuple[list, tuple[float, ...]]:
    """Parts turned by a random quarter turn and moved to a random spot inside the walls; footprint."""
    turns = int(rng.integers(4))
    x, z = _grid(float(rng.uniform(-half, half))), _grid(float(rng.uniform(-half, half)))
    moved = [(p.moved(turns, (x, 0.0, z)), c) for p, c in parts]
    v = np.concatenate([p.vertices for p, _ in moved])
    return moved, (float(v[:, 0].min()), float(v[:, 2].min()), float(v[:, 0].max()), float(v[:, 2].max()))


def _structure(rng: np.random.Generator, opts: ArenaOptions) -> tuple[list[tuple[Part, tuple, int]], dict]:
    """Floor (id 1) and walls (id 2)."""
    half, t, h = opts.size / 2, WALL_THICKNESS, opts.wall_height
    floor = FLOOR_MATERIALS[int(rng.integers(len(FLOOR_MATERIALS)))]
    paint = list(WALL_COLORS)[int(rng.integers(len(WALL_COLORS)))]
    parts = [(quad_y(-half, half, -half, half, 0.0), floor[2], 1)]
    walls = [
        box((-half - t, 0.0, -half - t), (half + t, h, -half)),
        box((-half - t, 0.0, half), (half + t, h, half + t)),
        box((-half - t, 0.0, -half), (-half, h, half)),
        box((half, 0.0, -half), (half + t, h, half)),
    ]
    parts += [(w, WALL_COLORS[paint], 2) for w in walls]
    instances = {1: Instance(1, "floor", 0, floor[1]), 2: Instance(2, "wall", 0, paint)}
    return parts, instances


def _draw(rng: np.random.Generator, opts: ArenaOptions) -> Scene:
    """One arena, not yet checked for navigability."""
    half = opts.size / 2
    parts, instances = _structure(rng, opts)
    weights = np.array([w for _, w in KINDS], np.float64)
    n = int(round(opts.obstacle_density * opts.size * opts.size))
    side = OBSTACLE_SIDE[opts.difficulty]
    sid = 3
    for _ in range(n):
        kind = KINDS[int(rng.choice(len(KINDS), p=weights / weights.sum()))][0]
        category, color, model = _obstacle(rng, kind, side)
        moved, (x0, z0, x1, z1) = _place(rng, model, half - 0.3)
        if x0 < -half or z0 < -half or x1 > half or z1 > half:
            continue  # would cut into a wall
        parts += [(p, c, sid) for p, c in moved]
        instances[sid] = Instance(sid, category, 0, color, is_object=True)
        sid += 1
    mb = MeshBuilder()
    for part, rgb, k in parts:
        mb.add(part, rgb, k)
    mesh = mb.build(double_sided=False)
    tri = mesh.triangles
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    for k in np.unique(mesh.semantic_ids):
        sel = mesh.semantic_ids == k
        a, b = lo[sel].min(axis=0), hi[sel].max(axis=0)
        instances[int(k)].position, instances[int(k)].size = (a + b) / 2, b - a
    corners = [(-half, half), (half, half), (half, -half), (-half, -half)]
    room = Room(0, "arena", "arena", instances[2].color, corners)
    return Scene([mesh], instances, [room])


def arena_navigability(scene: Scene, body: AgentBody | None = None) -> tuple[float, float]:
    """(free fraction of the floor, fraction of the free cells in the largest connected region)."""
    grid = NavGrid.from_scene(scene, body or AgentBody(), 0.05)
    free = int(grid.navigable.sum())
    floor = float(np.isfinite(grid.floor_y).sum()) or 1.0
    largest = int((grid.region == grid.largest_region).sum()) if free else 0
    return free / floor, largest / max(free, 1)


def generate_arena(seed: int, options: ArenaOptions | None = None, **overrides) -> Scene:
    """A cluttered arena drawn from ``seed``.

    Args:
        seed: non-negative integer; the same seed and options give a bit-identical scene on every machine.
        options: :class:`ArenaOptions` (default: easy, 8 m).
        **overrides: fields of :class:`ArenaOptions` replacing those of ``options``.

    Returns:
        A :class:`Scene` named ``arena_<difficulty>_<seed:05d>`` in Habitat's frame (y up, floor at y = 0,
        centred on the origin), one mesh. Instance 1 is the floor, 2 the walls; every obstacle is an instance
        with a category (``box``, ``cylinder``, ``pole``, ``table`` or a furniture category), a colour name
        and ``is_object=True``. One room ``arena`` covers the floor.

    Raises:
        ValueError: a bad seed or option (the message names it).
        RuntimeError: no draw of ``max_tries`` left one large navigable region.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    valid = [f.name for f in fields(ArenaOptions)]
    if unknown := sorted(set(overrides) - set(valid)):
        raise ValueError(f"unknown arena option(s) {unknown}; valid options are {valid}")
    base = {f: getattr(options, f) for f in valid} if options is not None else {}
    opts = ArenaOptions(**{**base, **overrides})
    rng = np.random.default_rng(int(seed))
    reasons = []
    for attempt in range(opts.max_tries):
        scene = _draw(rng, opts)
        free, largest = arena_navigability(scene)
        if free >= MIN_FREE_FRACTION and largest >= MIN_LARGEST_REGION:
            scene.name = f"arena_{opts.difficulty}_{int(seed):05d}"
            return scene
        reasons.append(f"free {free:.2f}, largest region {largest:.2f}")
        log.debug("arena seed %d attempt %d refused: %s", seed, attempt, reasons[-1])
    raise RuntimeError(
        f"arena seed {seed} ({opts}): no navigable draw in {opts.max_tries} tries (need free fraction >= "
        f"{MIN_FREE_FRACTION} and largest region >= {MIN_LARGEST_REGION}; got {'; '.join(reasons[:5])}); "
        "lower the density or enlarge the floor"
    )
