"""Wall decorations of a furnished room: windows in outer walls and pictures, where no tall furniture
stands in front of them and no doorway is near.

Both hang on the inner face of a wall (at most 3 cm deep, less than the gap kept behind furniture) and are
built in the furniture convention (footprint centred on the origin, front +z, back against the wall).
"""

from __future__ import annotations

import numpy as np

from envs.scenes.furnish import DoorZone, PlacedObject, Rect, walkable
from envs.scenes.furniture import draw_size
from envs.scenes.palette import DARK, GLASS, LINEN, OBJECT_COLORS, WOOD, shade
from envs.scenes.primitives import Part, box

#: Wall order: quarter turns of an object whose back is against the wall at z0 (north), x0, z1, x1.
WALLS = (0, 1, 2, 3)
_SKY = shade(GLASS, 2.6)


def _window(width: float) -> list[tuple[Part, tuple[int, int, int]]]:
    y0, y1, t, d = 0.9, 2.0, 0.06, 0.025
    parts = [(box((-width / 2 + t, y0 + t, -d / 2), (width / 2 - t, y1 - t, -d / 2 + 0.005)), _SKY)]
    parts += [(box((x, y0, -d / 2), (x + t, y1, d / 2)), LINEN) for x in (-width / 2, width / 2 - t, -t / 2)]
    parts += [(box((-width / 2 + t, y, -d / 2), (width / 2 - t, y + t, d / 2)), LINEN) for y in (y0, y1 - t)]
    return parts


def _picture(rng: np.random.Generator, width: float, height: float, rgb) -> list[tuple[Part, tuple]]:
    y0, d = 1.55 - height / 2, 0.03
    frame = WOOD if rng.random() < 0.5 else DARK
    parts = [
        (box((-width / 2 + 0.03, y0 + 0.03, 0.0), (width / 2 - 0.03, y0 + height - 0.03, d / 2 + 0.002)), rgb)
    ]
    parts.append((box((-width / 2, y0, -d / 2), (width / 2, y0 + height, d / 2)), frame))
    accent = list(OBJECT_COLORS.values())[int(rng.integers(len(OBJECT_COLORS)))]
    cx, cy = float(rng.uniform(-0.2, 0.2)) * width, y0 + height * float(rng.uniform(0.35, 0.65))
    parts.append(
        (
            box((cx - width / 5, cy - height / 6, d / 2), (cx + width / 5, cy + height / 6, d / 2 + 0.004)),
            accent,
        )
    )
    return parts


def _on_wall(inner: Rect, wall: int, along: float, depth: float) -> tuple[float, float]:
    """(x, z) centre of a footprint of ``depth`` whose back touches ``wall``'s inner face at ``along``."""
    x0, z0, x1, z1 = inner
    return {
        0: (along, z0 + depth / 2),
        1: (x0 + depth / 2, along),
        2: (along, z1 - depth / 2),
        3: (x1 - depth / 2, along),
    }[wall]


def _height(obj: PlacedObject) -> float:
    return float(max(p.vertices[:, 1].max() for p, _ in obj.parts))


def _free_span(inner: Rect, wall: int, span: tuple[float, float], reach: float, blockers: list[Rect]) -> bool:
    """Whether no ``blockers`` rectangle comes within ``reach`` of the wall along ``span``."""
    x0, z0, x1, z1 = inner
    a, b = span
    band = {
        0: (a, z0, b, z0 + reach),
        1: (x0, a, x0 + reach, b),
        2: (a, z1 - reach, b, z1),
        3: (x1 - reach, a, x1, b),
    }[wall]
    return not any(r[0] < band[2] and band[0] < r[2] and r[1] < band[3] and band[1] < r[3] for r in blockers)


def decorate_room(
    rng: np.random.Generator,
    inner: Rect,
    outer_walls: tuple[bool, bool, bool, bool],
    doors: list[DoorZone],
    furniture: list[PlacedObject],
) -> tuple[list[PlacedObject], list[PlacedObject]]:
    """Windows (on outer walls, up to two) and pictures (0–2) for one room.

    Args:
        rng: the house's generator.
        inner: (x0, z0, x1, z1) inner faces of the room's walls, metres.
        outer_walls: per wall in ``WALLS`` order (z0, x0, z1, x1), whether it is an outer wall of the house.
        doors: the room's doorways (nothing hangs within their keep-out zones).
        furniture: the room's furniture (tall pieces block windows; any piece blocks pictures).

    Returns:
        (windows, pictures); a window's colour name is "" and a picture's is its canvas colour.
    """
    tall = [o.footprint() for o in furniture if _height(o) > 0.85]
    low = [o.footprint() for o in furniture]
    keepouts = [dz.keepout for dz in doors]
    windows: list[PlacedObject] = []
    pictures: list[PlacedObject] = []
    for wall in WALLS:
        if outer_walls[wall] and len(windows) < 2 and rng.random() < 0.75:
            width = draw_size(rng, 0.9, 1.4)
            obj = _hang(
                rng, inner, wall, width, 0.12, tall + keepouts, PlacedObject("window", "", _window(width))
            )
            if obj is not None:
                windows.append(obj)
                tall.append(obj.footprint())
                low.append(obj.footprint())
    for _ in range(int(rng.integers(0, 3))):
        wall = int(rng.integers(4))
        width, height = draw_size(rng, 0.4, 0.9), draw_size(rng, 0.4, 0.7)
        names = [n for n in OBJECT_COLORS if n not in [p.color for p in pictures]]
        color = names[int(rng.integers(len(names)))]
        obj = _hang(
            rng,
            inner,
            wall,
            width,
            0.6,
            low + keepouts,
            PlacedObject("picture", color, _picture(rng, width, height, OBJECT_COLORS[color])),
        )
        if obj is not None and walkable(inner, low, doors, [obj.footprint()]):
            pictures.append(obj)
            low.append(obj.footprint())
    return windows, pictures


def _hang(
    rng: np.random.Generator,
    inner: Rect,
    wall: int,
    width: float,
    reach: float,
    blockers: list[Rect],
    template: PlacedObject,
    n_tries: int = 6,
) -> PlacedObject | None:
    """``template`` moved to a random spot on ``wall`` whose strip in front (``reach`` deep) is clear."""
    x0, z0, x1, z1 = inner
    lo, hi = (x0, x1) if wall % 2 == 0 else (z0, z1)
    if hi - lo < width + 0.6:
        return None
    back = min(float(p.vertices[:, 2].min()) for p, _ in template.parts)
    for _ in range(n_tries):
        along = float(rng.uniform(lo + width / 2 + 0.3, hi - width / 2 - 0.3))
        if not _free_span(inner, wall, (along - width / 2 - 0.1, along + width / 2 + 0.1), reach, blockers):
            continue
        x, z = _on_wall(inner, wall, along, -2 * back)
        parts = [(p.moved(wall, (x, 0.0, z)), c) for p, c in template.parts]
        return PlacedObject(template.category, template.color, parts)
    return None
