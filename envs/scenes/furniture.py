"""Furniture models built from boxes and cylinders.

Every model lives in its own frame: the footprint is centred on the origin, the floor is y = 0 and the front
faces +z (a sofa's seat, a wardrobe's doors). The first part of each model is its main body and carries the
object's named colour; details (mattresses, screens, handles) use fixed secondary colours. Sizes are in metres
and drawn from ``rng`` on a 5 cm grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from envs.scenes.palette import (
    BOOK_COLORS,
    DARK,
    GLASS,
    LEAF,
    LINEN,
    METAL,
    SCREEN,
    SOIL,
    STONE,
    WATER,
    WOOD,
    shade,
)
from envs.scenes.primitives import Part, box, cylinder

RGB = tuple[int, int, int]


@dataclass
class Model:
    """An object's geometry in its own frame: ``parts`` as (part, RGB) pairs, main body first."""

    category: str
    parts: list[tuple[Part, RGB]]


def _b(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> Part:
    return box((x0, y0, z0), (x1, y1, z1))


def draw_size(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A length drawn uniformly in [lo, hi] on a 5 cm grid."""
    return round(float(rng.uniform(lo, hi)) / 0.05) * 0.05


def _legs(w: float, d: float, h: float, t: float, rgb: RGB, inset: float = 0.02) -> list[tuple[Part, RGB]]:
    xs, zs = (-w / 2 + inset, w / 2 - inset - t), (-d / 2 + inset, d / 2 - inset - t)
    return [(_b(x, x + t, 0, h, z, z + t), rgb) for x in xs for z in zs]


def table(c: RGB, rng: np.random.Generator, height: float = 0.75, w: float = 0.0, d: float = 0.0) -> Model:
    """A table top on four legs; ``w``/``d`` of 0 draw a size."""
    w = w or draw_size(rng, 1.0, 1.6)
    d = d or draw_size(rng, 0.7, 0.9)
    top = _b(-w / 2, w / 2, height - 0.04, height, -d / 2, d / 2)
    return Model("table", [(top, c), *_legs(w, d, height - 0.04, 0.06, shade(c, 0.8))])


def coffee_table(c: RGB, rng: np.random.Generator) -> Model:
    """A low table with a shelf."""
    w, d = draw_size(rng, 0.9, 1.2), draw_size(rng, 0.5, 0.6)
    model = table(c, rng, height=0.42, w=w, d=d)
    model.parts.append(
        (_b(-w / 2 + 0.05, w / 2 - 0.05, 0.1, 0.13, -d / 2 + 0.05, d / 2 - 0.05), shade(c, 0.8))
    )
    return Model("coffee table", model.parts)


def chair(c: RGB, rng: np.random.Generator) -> Model:
    """A chair with a backrest at the back (-z)."""
    s = 0.45
    parts = [(_b(-s / 2, s / 2, 0.42, 0.46, -s / 2, s / 2), c), *_legs(s, s, 0.42, 0.04, shade(c, 0.75), 0.0)]
    parts.append((_b(-s / 2, s / 2, 0.46, 0.92, -s / 2, -s / 2 + 0.05), c))
    return Model("chair", parts)


def _upholstered(category: str, c: RGB, w: float, d: float) -> Model:
    arm, back = 0.16, 0.22
    parts = [(_b(-w / 2, w / 2, 0.08, 0.42, -d / 2, d / 2), c)]
    parts.append((_b(-w / 2, w / 2, 0.08, 0.86, -d / 2, -d / 2 + back), c))
    for x0 in (-w / 2, w / 2 - arm):
        parts.append((_b(x0, x0 + arm, 0.08, 0.62, -d / 2, d / 2), shade(c, 0.9)))
    n_seats = max(1, round((w - 2 * arm) / 0.7))
    seat_w = (w - 2 * arm) / n_seats
    for i in range(n_seats):
        x0 = -w / 2 + arm + i * seat_w
        parts.append(
            (_b(x0 + 0.01, x0 + seat_w - 0.01, 0.42, 0.5, -d / 2 + back, d / 2 - 0.02), shade(c, 1.1))
        )
    parts += _legs(w, d, 0.08, 0.05, DARK)
    return Model(category, parts)


def sofa(c: RGB, rng: np.random.Generator) -> Model:
    """A two- or three-seat sofa."""
    return _upholstered("sofa", c, draw_size(rng, 1.7, 2.3), 0.9)


def armchair(c: RGB, rng: np.random.Generator) -> Model:
    """A one-seat armchair."""
    return _upholstered("armchair", c, draw_size(rng, 0.8, 0.95), 0.85)


def bed(c: RGB, rng: np.random.Generator, w: float = 0.0) -> Model:
    """A bed: frame and blanket in the named colour, white mattress and pillows, headboard at the back; ``w``
    of 0 draws a width."""
    w, d = w or draw_size(rng, 1.2, 1.6), 2.05
    parts = [(_b(-w / 2, w / 2, 0.5, 0.58, -d / 2 + 0.65, d / 2 + 0.01), c)]
    parts.append((_b(-w / 2, w / 2, 0.05, 0.3, -d / 2, d / 2), shade(c, 0.7)))
    parts.append((_b(-w / 2 + 0.02, w / 2 - 0.02, 0.3, 0.5, -d / 2 + 0.05, d / 2 - 0.02), LINEN))
    parts.append((_b(-w / 2, w / 2, 0.0, 1.05, -d / 2, -d / 2 + 0.06), shade(c, 0.7)))
    n_pillows = 2 if w >= 1.35 else 1
    pw = (w - 0.2) / n_pillows
    for i in range(n_pillows):
        x0 = -w / 2 + 0.1 + i * pw
        parts.append((_b(x0 + 0.03, x0 + pw - 0.03, 0.5, 0.64, -d / 2 + 0.12, -d / 2 + 0.5), LINEN))
    parts += _legs(w, d, 0.05, 0.06, DARK)
    return Model("bed", parts)


def nightstand(c: RGB, rng: np.random.Generator) -> Model:
    """A small cabinet with one drawer."""
    w, d, h = 0.45, 0.4, 0.5
    parts = [(_b(-w / 2, w / 2, 0.0, h, -d / 2, d / 2), c)]
    parts.append((_b(-w / 2 + 0.03, w / 2 - 0.03, h - 0.18, h - 0.17, d / 2, d / 2 + 0.01), DARK))
    parts.append((_b(-0.04, 0.04, h - 0.12, h - 0.09, d / 2, d / 2 + 0.03), METAL))
    return Model("nightstand", parts)


def lamp(c: RGB, rng: np.random.Generator, floor: bool = False) -> Model:
    """A table lamp, or a floor lamp (``floor``): base, pole and a coloured shade."""
    pole = 1.35 if floor else 0.28
    r = 0.22 if floor else 0.14
    parts = [(cylinder((0, pole, 0), r, 0.26), c)]
    parts.append((cylinder((0, 0, 0), 0.15 if floor else 0.08, 0.03), METAL))
    parts.append((cylinder((0, 0.03, 0), 0.015, pole - 0.03), METAL))
    return Model("lamp", parts)


def wardrobe(c: RGB, rng: np.random.Generator) -> Model:
    """A tall two-door wardrobe."""
    w, d, h = draw_size(rng, 1.0, 1.4), 0.6, 2.0
    parts = [
        (_b(-w / 2, w / 2, 0.05, h, -d / 2, d / 2), c),
        (_b(-w / 2, w / 2, 0, 0.05, -d / 2, d / 2), DARK),
    ]
    parts.append((_b(-0.005, 0.005, 0.1, h - 0.05, d / 2, d / 2 + 0.01), DARK))
    for x in (-0.06, 0.04):
        parts.append((_b(x, x + 0.02, 0.9, 1.3, d / 2, d / 2 + 0.03), METAL))
    return Model("wardrobe", parts)


def bookcase(c: RGB, rng: np.random.Generator, height: float = 0.0, category: str = "bookcase") -> Model:
    """An open shelf unit with books; ``height`` of 0 draws one."""
    w, d, h, t = draw_size(rng, 0.8, 1.1), 0.32, height or draw_size(rng, 1.6, 2.0), 0.03
    parts = [(_b(-w / 2, -w / 2 + t, 0, h, -d / 2, d / 2), c), (_b(w / 2 - t, w / 2, 0, h, -d / 2, d / 2), c)]
    parts.append((_b(-w / 2 + t, w / 2 - t, 0, h, -d / 2, -d / 2 + 0.01), shade(c, 0.8)))
    n_levels = max(2, int(h / 0.4))
    for i in range(n_levels + 1):
        y = i * (h - t) / n_levels
        parts.append((_b(-w / 2 + t, w / 2 - t, y, y + t, -d / 2 + 0.01, d / 2), c))
        if i < n_levels and rng.random() < 0.75:
            x, book_h = -w / 2 + t + 0.02, 0.22 + 0.02 * (i % 3)
            for k in range(int(rng.integers(4, 8))):
                bw = 0.04 + 0.01 * (k % 3)
                if x + bw > w / 2 - t:
                    break
                rgb = BOOK_COLORS[int(rng.integers(len(BOOK_COLORS)))]
                parts.append((_b(x, x + bw, y + t, y + t + book_h, -d / 2 + 0.04, d / 2 - 0.04), rgb))
                x += bw + 0.005
    return Model(category, parts)


def shelf(c: RGB, rng: np.random.Generator) -> Model:
    """A low shelf unit."""
    return bookcase(c, rng, height=1.0, category="shelf")


def desk(c: RGB, rng: np.random.Generator) -> Model:
    """A desk: top on two side panels and a drawer block."""
    w, d, h = draw_size(rng, 1.2, 1.5), 0.65, 0.75
    parts = [(_b(-w / 2, w / 2, h - 0.04, h, -d / 2, d / 2), c)]
    parts.append((_b(-w / 2, -w / 2 + 0.04, 0, h - 0.04, -d / 2, d / 2), shade(c, 0.85)))
    parts.append((_b(w / 2 - 0.45, w / 2, 0, h - 0.04, -d / 2, d / 2), shade(c, 0.85)))
    parts.append((_b(w / 2 - 0.42, w / 2 - 0.03, 0.45, 0.46, d / 2, d / 2 + 0.01), DARK))
    return Model("desk", parts)


def computer(c: RGB, rng: np.random.Generator) -> Model:
    """A monitor on a stand with a keyboard in front (stands on a desk: y = 0 is the desk top)."""
    parts = [(_b(-0.3, 0.3, 0.12, 0.5, -0.2, -0.16), c)]
    parts.append((_b(-0.28, 0.28, 0.14, 0.48, -0.16, -0.155), SCREEN))
    parts.append((_b(-0.03, 0.03, 0.0, 0.12, -0.21, -0.17), c))
    parts.append((_b(-0.1, 0.1, 0.0, 0.015, -0.25, -0.12), c))
    parts.append((_b(-0.22, 0.22, 0.0, 0.02, 0.0, 0.15), DARK))
    return Model("computer", parts)


def tv_stand(c: RGB, rng: np.random.Generator) -> Model:
    """A low cabinet for a television."""
    w, d, h = draw_size(rng, 1.2, 1.6), 0.42, 0.5
    parts = [
        (_b(-w / 2, w / 2, 0.05, h, -d / 2, d / 2), c),
        (_b(-w / 2, w / 2, 0, 0.05, -d / 2, d / 2), DARK),
    ]
    parts.append((_b(-0.005, 0.005, 0.1, h - 0.05, d / 2, d / 2 + 0.01), DARK))
    return Model("tv stand", parts)


def tv(c: RGB, rng: np.random.Generator) -> Model:
    """A flat television on a foot (stands on a cabinet: y = 0 is the cabinet top)."""
    w = draw_size(rng, 0.9, 1.2)
    parts = [(_b(-w / 2, w / 2, 0.08, 0.08 + w * 0.58, -0.04, 0.02), c)]
    parts.append((_b(-w / 2 + 0.03, w / 2 - 0.03, 0.11, 0.05 + w * 0.58, 0.02, 0.025), SCREEN))
    parts.append((_b(-0.04, 0.04, 0.0, 0.08, -0.03, 0.01), c))
    parts.append((_b(-0.2, 0.2, 0.0, 0.02, -0.12, 0.1), c))
    return Model("tv", parts)


def plant(c: RGB, rng: np.random.Generator) -> Model:
    """A potted plant: coloured pot, soil and a stack of leafy tiers."""
    parts = [(cylinder((0, 0, 0), 0.18, 0.36), c), (cylinder((0, 0.36, 0), 0.16, 0.01), SOIL)]
    parts.append((cylinder((0, 0.36, 0), 0.03, 0.3), WOOD))
    tiers = ((0.34, 0.55, 0.25), (0.3, 0.78, 0.22), (0.2, 0.98, 0.18))
    for r, y, h in tiers[: int(rng.integers(2, 4))]:
        parts.append((cylinder((0, y, 0), r, h), shade(LEAF, float(rng.uniform(0.85, 1.15)))))
    return Model("plant", parts)


def fridge(c: RGB, rng: np.random.Generator) -> Model:
    """A tall fridge-freezer with handles."""
    w, d, h = 0.7, 0.7, draw_size(rng, 1.75, 1.95)
    parts = [
        (_b(-w / 2, w / 2, 0.02, h, -d / 2, d / 2), c),
        (_b(-w / 2, w / 2, 0, 0.02, -d / 2, d / 2), DARK),
    ]
    parts.append((_b(-w / 2, w / 2, h * 0.62, h * 0.62 + 0.01, d / 2, d / 2 + 0.01), DARK))
    for y0, y1 in ((h * 0.66, h * 0.85), (h * 0.3, h * 0.56)):
        parts.append((_b(w / 2 - 0.08, w / 2 - 0.05, y0, y1, d / 2, d / 2 + 0.04), METAL))
    return Model("fridge", parts)


def counter(c: RGB, rng: np.random.Generator) -> Model:
    """Kitchen base cabinets with a stone worktop and a sink."""
    w, d, h = draw_size(rng, 1.2, 2.2), 0.62, 0.88
    parts = [(_b(-w / 2, w / 2, 0.08, h - 0.04, -d / 2, d / 2 - 0.02), c)]
    parts.append((_b(-w / 2, w / 2, 0, 0.08, -d / 2, d / 2 - 0.06), DARK))
    parts.append((_b(-w / 2, w / 2, h - 0.04, h, -d / 2, d / 2), STONE))
    for i in range(1, int(w / 0.6)):
        x = -w / 2 + i * w / int(w / 0.6)
        parts.append((_b(x - 0.005, x + 0.005, 0.1, h - 0.06, d / 2 - 0.02, d / 2 - 0.01), DARK))
    parts.append((_b(-0.25, 0.25, h, h + 0.005, -0.15, 0.15), METAL))
    parts.append((cylinder((0, h, -0.22), 0.02, 0.28), METAL))
    parts.append((_b(-0.015, 0.015, h + 0.24, h + 0.27, -0.22, -0.08), METAL))
    return Model("counter", parts)


def stove(c: RGB, rng: np.random.Generator) -> Model:
    """A cooker: oven with a glass door and four burners."""
    w, d, h = 0.6, 0.62, 0.88
    parts = [(_b(-w / 2, w / 2, 0.0, h, -d / 2, d / 2), c)]
    parts.append((_b(-w / 2 + 0.01, w / 2 - 0.01, h, h + 0.01, -d / 2 + 0.01, d / 2 - 0.01), DARK))
    parts.append((_b(-0.22, 0.22, 0.15, 0.55, d / 2, d / 2 + 0.01), GLASS))
    parts.append((_b(-0.24, 0.24, 0.62, 0.64, d / 2, d / 2 + 0.04), METAL))
    for x in (-0.14, 0.14):
        for z in (-0.14, 0.14):
            parts.append((cylinder((x, h + 0.01, z), 0.08, 0.015), METAL))
    return Model("stove", parts)


def toilet(c: RGB, rng: np.random.Generator) -> Model:
    """A toilet: cistern against the wall (-z), bowl and lid in front."""
    parts = [(cylinder((0, 0, 0.08), 0.19, 0.4), c), (_b(-0.2, 0.2, 0.3, 0.78, -0.35, -0.17), c)]
    parts.append((cylinder((0, 0.4, 0.08), 0.2, 0.03), shade(c, 0.9)))
    parts.append((_b(-0.17, 0.17, 0.0, 0.3, -0.3, -0.1), c))
    return Model("toilet", parts)


def sink(c: RGB, rng: np.random.Generator) -> Model:
    """A wash basin on a vanity cabinet with a mirror above (mirror against the wall at -z)."""
    w, d = draw_size(rng, 0.6, 0.8), 0.46
    parts = [
        (_b(-w / 2, w / 2, 0.1, 0.8, -d / 2, d / 2), c),
        (_b(-w / 2, w / 2, 0, 0.1, -d / 2, d / 2 - 0.04), DARK),
    ]
    parts.append((_b(-w / 2 + 0.05, w / 2 - 0.05, 0.8, 0.9, -d / 2 + 0.06, d / 2 - 0.02), LINEN))
    parts.append((cylinder((0, 0.9, -d / 2 + 0.1), 0.02, 0.18), METAL))
    parts.append((_b(-w / 2 + 0.05, w / 2 - 0.05, 1.15, 1.85, -d / 2, -d / 2 + 0.02), WATER))
    return Model("sink", parts)


def bathtub(c: RGB, rng: np.random.Generator, w: float = 0.0) -> Model:
    """A bathtub: four rims around a water surface, long side along x; ``w`` of 0 draws a length."""
    w, d, h, t = w or draw_size(rng, 1.5, 1.7), 0.75, 0.56, 0.08
    parts = [
        (_b(-w / 2, w / 2, 0.0, h, d / 2 - t, d / 2), c),
        (_b(-w / 2, w / 2, 0.0, h, -d / 2, -d / 2 + t), c),
    ]
    parts += [(_b(x, x + t, 0.0, h, -d / 2 + t, d / 2 - t), c) for x in (-w / 2, w / 2 - t)]
    parts.append((_b(-w / 2 + t, w / 2 - t, 0.0, 0.38, -d / 2 + t, d / 2 - t), WATER))
    parts.append((cylinder((-w / 2 + 0.04, h, 0), 0.02, 0.2), METAL))
    return Model("bathtub", parts)


def _appliance(category: str, c: RGB, door_rgb: RGB) -> Model:
    w, d, h = 0.6, 0.6, 0.85
    parts = [(_b(-w / 2, w / 2, 0.0, h, -d / 2, d / 2), c)]
    parts.append((_b(-w / 2 + 0.02, w / 2 - 0.02, h - 0.12, h - 0.02, d / 2, d / 2 + 0.01), DARK))
    parts.append((cylinder((0, 0.4, d / 2), 0.2, 0.03, axis="z"), door_rgb))
    return Model(category, parts)


def washing_machine(c: RGB, rng: np.random.Generator) -> Model:
    """A front-loading washing machine with a round glass door."""
    return _appliance("washing machine", c, GLASS)


def dryer(c: RGB, rng: np.random.Generator) -> Model:
    """A tumble dryer with a round metal door."""
    return _appliance("dryer", c, METAL)


def laundry_basket(c: RGB, rng: np.random.Generator) -> Model:
    """A round laundry basket with some clothes in it."""
    return Model(
        "laundry basket", [(cylinder((0, 0, 0), 0.22, 0.5), c), (cylinder((0, 0.5, 0), 0.19, 0.02), LINEN)]
    )


def coat_rack(c: RGB, rng: np.random.Generator) -> Model:
    """A standing coat rack: base, pole and hooks."""
    parts = [(cylinder((0, 0.03, 0), 0.025, 1.72), c), (cylinder((0, 0, 0), 0.22, 0.03), shade(c, 0.8))]
    for k in range(4):
        parts.append((box((-0.01, 1.55, 0.0), (0.01, 1.58, 0.16)).moved(k), shade(c, 0.8)))
    return Model("coat rack", parts)


def bench(c: RGB, rng: np.random.Generator) -> Model:
    """A low bench."""
    w, d = draw_size(rng, 1.0, 1.4), 0.4
    return Model(
        "bench", [(_b(-w / 2, w / 2, 0.4, 0.46, -d / 2, d / 2), c), *_legs(w, d, 0.4, 0.05, shade(c, 0.7))]
    )


def cabinet(c: RGB, rng: np.random.Generator) -> Model:
    """A sideboard with two doors."""
    w, d, h = draw_size(rng, 1.2, 1.6), 0.45, 0.85
    parts = [(_b(-w / 2, w / 2, 0.08, h, -d / 2, d / 2), c), *_legs(w, d, 0.08, 0.05, DARK)]
    parts.append((_b(-0.005, 0.005, 0.12, h - 0.04, d / 2, d / 2 + 0.01), DARK))
    parts += [(_b(x, x + 0.02, 0.5, 0.65, d / 2, d / 2 + 0.03), METAL) for x in (-0.06, 0.04)]
    return Model("cabinet", parts)


#: Model builders by category (a builder takes the main RGB and a generator).
MODELS: dict[str, Callable[[RGB, np.random.Generator], Model]] = {
    "armchair": armchair,
    "bathtub": bathtub,
    "bed": bed,
    "bench": bench,
    "bookcase": bookcase,
    "cabinet": cabinet,
    "chair": chair,
    "coat rack": coat_rack,
    "coffee table": coffee_table,
    "computer": computer,
    "counter": counter,
    "desk": desk,
    "dryer": dryer,
    "floor lamp": lambda c, rng: lamp(c, rng, floor=True),
    "fridge": fridge,
    "lamp": lamp,
    "laundry basket": laundry_basket,
    "nightstand": nightstand,
    "plant": plant,
    "shelf": shelf,
    "sink": sink,
    "sofa": sofa,
    "stove": stove,
    "table": table,
    "toilet": toilet,
    "tv": tv,
    "tv stand": tv_stand,
    "wardrobe": wardrobe,
    "washing machine": washing_machine,
}
