"""Named colours of generated houses: furniture colours, wall paints and floor materials.

The names are what instructions say ("the blue sofa", "the yellow room"), so every colour a generated object
or wall carries is one of the names below. RGB values are uint8 base colours.
"""

from __future__ import annotations

#: Colour names of furniture (the main body of each object), in a fixed order for seeded draws.
OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 35, 35),
    "blue": (35, 75, 200),
    "green": (40, 150, 55),
    "yellow": (235, 205, 40),
    "white": (238, 238, 234),
    "black": (28, 28, 30),
    "brown": (120, 75, 40),
    "orange": (235, 125, 30),
    "purple": (125, 55, 165),
    "grey": (128, 128, 132),
    "pink": (240, 145, 185),
}

#: Wall paint names, one per room of a house (a house has at most as many rooms as there are paints).
WALL_COLORS: dict[str, tuple[int, int, int]] = {
    "yellow": (242, 226, 150),
    "light blue": (170, 200, 232),
    "green": (165, 205, 150),
    "beige": (226, 211, 180),
    "white": (246, 246, 241),
    "grey": (182, 182, 185),
    "pink": (240, 198, 205),
    "lavender": (202, 188, 228),
    "peach": (246, 206, 172),
}

#: Floor materials as (pattern, colour name, RGB); pattern is "wood" (planks), "tile" (checker) or "carpet".
FLOOR_MATERIALS: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("wood", "light brown", (196, 156, 104)),
    ("wood", "brown", (140, 96, 58)),
    ("wood", "dark brown", (96, 64, 40)),
    ("tile", "white", (226, 226, 222)),
    ("tile", "grey", (150, 152, 156)),
    ("tile", "beige", (214, 198, 166)),
    ("carpet", "blue", (86, 104, 150)),
    ("carpet", "red", (150, 62, 60)),
    ("carpet", "green", (92, 130, 88)),
    ("carpet", "grey", (120, 120, 124)),
)

#: Secondary (unnamed) colours of furniture details.
WOOD = (150, 104, 62)
DARK = (38, 38, 42)
SCREEN = (18, 22, 32)
METAL = (172, 174, 180)
LINEN = (244, 242, 236)
STONE = (205, 204, 198)
LEAF = (52, 128, 54)
SOIL = (70, 50, 35)
WATER = (150, 200, 225)
GLASS = (60, 80, 95)
CEILING = (250, 250, 248)

#: Colours of the books on shelves, cycled by a seeded draw.
BOOK_COLORS: tuple[tuple[int, int, int], ...] = (
    (170, 40, 40),
    (40, 70, 150),
    (50, 120, 60),
    (210, 170, 50),
    (90, 60, 40),
    (230, 230, 220),
    (120, 60, 140),
)


def shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """``rgb`` scaled by ``factor`` and clipped to [0, 255] (rounded half to even, as numpy does)."""
    return tuple(min(255, max(0, round(c * factor))) for c in rgb)  # type: ignore[return-value]
