"""The scene model shared by the generator, the GLB loader, the renderer and the navigation grid.

A :class:`Scene` is a list of :class:`SceneMesh` batches (one per material) in the world frame of Habitat:
y up, right-handed, metres. Every face carries a semantic id; ``Scene.instances`` maps each id to what it is
(a category, the room it belongs to, a colour name).
Rooms and objects are annotated for instruction generation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

#: Semantic id of faces that belong to nothing annotated (imported scans without semantics).
UNLABELLED_ID = 0


def category_code(category: str) -> int:
    """A stable positive int32 code of a category name (CRC-32 of its UTF-8 bytes, 31 bits, never 0).

    The renderer's ``category`` images hold these codes, so a consumer maps names to classes without a
    vocabulary shared with every scene (0 stays "unlabelled").
    """
    return (zlib.crc32(category.encode("utf-8")) & 0x7FFFFFFF) or 1


@dataclass
class SceneMesh:
    """One material batch of triangles.

    Attributes:
        vertices: (V, 3) float32 positions in metres, world frame (y up).
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from the front.
        colors: (V, 3) uint8 linear-ish RGB base colour per vertex (material base colour × vertex colour).
        semantic_ids: (F,) int32 semantic id per face (see ``Scene.instances``).
        uvs: optional (V, 2) float32 texture coordinates (glTF convention: v down from the image top).
        texture: optional (H, W, 3) uint8 image multiplied with ``colors`` when ``uvs`` is set.
        double_sided: True (the default, right for scans, whose winding is inconsistent) draws both sides of
            every face. False promises that the faces bound closed solids wound counter-clockwise seen from
            outside, and that no camera sees the inside of a solid, so the renderer may skip back faces.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    semantic_ids: np.ndarray
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    double_sided: bool = True

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        self.colors = np.ascontiguousarray(self.colors, dtype=np.uint8).reshape(-1, 3)
        self.semantic_ids = np.ascontiguousarray(self.semantic_ids, dtype=np.int32).reshape(-1)
        n_v, n_f = len(self.vertices), len(self.faces)
        if len(self.colors) != n_v:
            raise ValueError(f"SceneMesh.colors has {len(self.colors)} rows, expected one per vertex ({n_v})")
        if len(self.semantic_ids) != n_f:
            raise ValueError(
                f"SceneMesh.semantic_ids has {len(self.semantic_ids)} entries, expected {n_f} faces"
            )
        if n_f and (self.faces.min() < 0 or self.faces.max() >= n_v):
            raise ValueError(f"SceneMesh.faces index out of range [0, {n_v})")
        if self.uvs is not None:
            self.uvs = np.ascontiguousarray(self.uvs, dtype=np.float32).reshape(-1, 2)
            if len(self.uvs) != n_v:
                raise ValueError(f"SceneMesh.uvs has {len(self.uvs)} rows, expected {n_v}")
        if self.texture is not None:
            self.texture = np.ascontiguousarray(self.texture, dtype=np.uint8)
            if self.texture.ndim != 3 or self.texture.shape[2] != 3:
                raise ValueError(f"SceneMesh.texture must be (H, W, 3) uint8, got shape {self.texture.shape}")

    @property
    def triangles(self) -> np.ndarray:
        """(F, 3, 3) float32 corner positions of every face."""
        return self.vertices[self.faces]


@dataclass
class Room:
    """A room annotation.

    Attributes:
        id: index of the room in ``Scene.rooms``.
        type: room type ("kitchen", "bedroom", ...).
        name: a unique human name ("kitchen", "second bedroom").
        color: colour name of the walls ("yellow").
        polygon: (N, 2) float32 floor polygon as (x, z) in metres, counter-clockwise seen from above.
        floor_y: floor height in metres.
    """

    id: int
    type: str
    name: str
    color: str
    polygon: np.ndarray
    floor_y: float = 0.0

    def __post_init__(self) -> None:
        self.polygon = np.asarray(self.polygon, dtype=np.float32).reshape(-1, 2)

    def contains(self, x: float, z: float) -> bool:
        """Whether the point (x, z) lies inside the room polygon (even-odd rule)."""
        poly = self.polygon
        inside = False
        n = len(poly)
        for i in range(n):
            (x1, z1), (x2, z2) = poly[i], poly[(i + 1) % n]
            if (z1 > z) != (z2 > z) and x < (x2 - x1) * (z - z1) / (z2 - z1) + x1:
                inside = not inside
        return inside


@dataclass
class Instance:
    """What a semantic id stands for: an object, or a structural part (floor, wall, door frame) of a room.

    Attributes:
        id: the semantic id (> 0; 0 is unlabelled).
        category: "sofa", "table", "floor", "wall", ...
        room: index into ``Scene.rooms`` or -1.
        color: colour name ("blue") or "".
        position: (3,) float32 centre of the bounding box in metres.
        size: (3,) float32 bounding-box extent in metres.
        is_object: True for furniture the instructions may refer to; False for structure.
    """

    id: int
    category: str
    room: int = -1
    color: str = ""
    position: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    size: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    is_object: bool = False

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float32).reshape(3)
        self.size = np.asarray(self.size, dtype=np.float32).reshape(3)


@dataclass
class Scene:
    """A 3-D indoor scene in Habitat's world frame.

    Attributes:
        meshes: material batches of triangles.
        instances: semantic id -> :class:`Instance` (id 0, unlabelled, is never listed).
        rooms: room annotations (empty for imported scans without annotations).
        name: a short identifier (the file stem or ``house_<seed>``).
        source: the file the scene was read from, or "" when generated in memory.
        doors: (N, 3) float32 centres of doorways between rooms, in metres.
    """

    meshes: list[SceneMesh]
    instances: dict[int, Instance] = field(default_factory=dict)
    rooms: list[Room] = field(default_factory=list)
    name: str = "scene"
    source: str = ""
    doors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))

    def __post_init__(self) -> None:
        self.doors = np.asarray(self.doors, dtype=np.float32).reshape(-1, 3)

    @property
    def n_triangles(self) -> int:
        """Total number of faces over all meshes."""
        return int(sum(len(m.faces) for m in self.meshes))

    def triangles(self) -> np.ndarray:
        """(F, 3, 3) float32 corners of every face of every mesh, concatenated."""
        if not self.meshes:
            return np.zeros((0, 3, 3), np.float32)
        return np.concatenate([m.triangles for m in self.meshes], axis=0)

    def face_semantic_ids(self) -> np.ndarray:
        """(F,) int32 semantic ids aligned with :meth:`triangles`."""
        if not self.meshes:
            return np.zeros(0, np.int32)
        return np.concatenate([m.semantic_ids for m in self.meshes])

    def bounds(self) -> np.ndarray:
        """(2, 3) float32 axis-aligned bounding box [min, max] of all vertices."""
        verts = [m.vertices for m in self.meshes if len(m.vertices)]
        if not verts:
            raise ValueError(f"scene {self.name!r} has no geometry")
        allv = np.concatenate(verts)
        return np.stack([allv.min(0), allv.max(0)]).astype(np.float32)

    def room_at(self, x: float, z: float) -> Room | None:
        """The annotated room containing the point (x, z), or None."""
        for room in self.rooms:
            if room.contains(x, z):
                return room
        return None

    def category_codes(self) -> np.ndarray:
        """(max id + 1,) int32 lookup: semantic id -> :func:`category_code` of its instance (0 unlabelled)."""
        lut = np.zeros(max(self.instances, default=0) + 1, np.int32)
        for k, inst in self.instances.items():
            lut[k] = category_code(inst.category)
        return lut

    def objects(self) -> list[Instance]:
        """Furniture instances (``is_object``), sorted by id."""
        return [self.instances[k] for k in sorted(self.instances) if self.instances[k].is_object]
