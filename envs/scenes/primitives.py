"""Triangle primitives (boxes, cylinders, quads) and a builder that batches them into a :class:`SceneMesh`.

All coordinates are metres in Habitat's frame (y up). Every primitive gets its own vertices (flat shading),
faces are wound counter-clockwise seen from outside, and only exact arithmetic is used (quarter-turn
rotations, a circle built from square roots), so the same inputs give bit-identical meshes on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.scenes.scene import SceneMesh

# A 12-gon unit circle from square roots only: IEEE 754 rounds sqrt exactly, while np.cos/np.sin may differ in
# the last bit between SIMD implementations, which would break bit-identical scenes across machines.
_H = float(np.sqrt(3.0) / 2.0)
UNIT_CIRCLE = np.array(
    [(1, 0), (_H, 0.5), (0.5, _H), (0, 1), (-0.5, _H), (-_H, 0.5)]
    + [(-1, 0), (-_H, -0.5), (-0.5, -_H), (0, -1), (0.5, -_H), (_H, -0.5)],
    dtype=np.float64,
)

_BOX_SIDES = {
    "-x": (0, 0),
    "+x": (0, 1),
    "-y": (1, 0),
    "+y": (1, 1),
    "-z": (2, 0),
    "+z": (2, 1),
}


@dataclass
class Part:
    """A convex piece of geometry.

    Attributes:
        vertices: (V, 3) float64 positions in metres.
        faces: (F, 3) int64 vertex indices, counter-clockwise seen from outside.
    """

    vertices: np.ndarray
    faces: np.ndarray

    def moved(self, quarter_turns: int = 0, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Part:
        """This part turned ``quarter_turns`` × 90° about +y (counter-clockwise from above), then shifted.

        A quarter turn maps the front direction +z to +x, exactly (no trigonometry).
        """
        v = self.vertices.copy()
        x, z = v[:, 0].copy(), v[:, 2].copy()
        k = quarter_turns % 4
        if k == 1:
            v[:, 0], v[:, 2] = z, -x
        elif k == 2:
            v[:, 0], v[:, 2] = -x, -z
        elif k == 3:
            v[:, 0], v[:, 2] = -z, x
        v += np.asarray(offset, dtype=np.float64)
        return Part(v, self.faces)


def _orient_outward(vertices: np.ndarray, faces: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Faces of a convex solid re-wound so that every normal points away from the inner point ``centre``."""
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("ij,ij->i", normal, tri.mean(axis=1) - centre) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces


def box(lo: tuple[float, float, float], hi: tuple[float, float, float], skip: tuple[str, ...] = ()) -> Part:
    """An axis-aligned box from corner ``lo`` to corner ``hi``.

    Args:
        lo: (x, y, z) minimum corner in metres.
        hi: (x, y, z) maximum corner in metres (each coordinate > the one of ``lo``).
        skip: sides to leave out, among "-x", "+x", "-y", "+y", "-z", "+z" (hidden sides save triangles).
    """
    lo_a, hi_a = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if np.any(hi_a <= lo_a):
        raise ValueError(f"box corners must satisfy lo < hi on every axis, got lo={lo}, hi={hi}")
    corners = np.stack([lo_a, hi_a])
    verts, faces = [], []
    for side, (axis, end) in _BOX_SIDES.items():
        if side in skip:
            continue
        u, w = [a for a in range(3) if a != axis]
        quad = np.empty((4, 3))
        quad[:, axis] = corners[end, axis]
        for i, (a, b) in enumerate(((0, 0), (1, 0), (1, 1), (0, 1))):
            quad[i, u], quad[i, w] = corners[a, u], corners[b, w]
        n = 4 * len(verts)
        verts.append(quad)
        faces.extend([(n, n + 1, n + 2), (n, n + 2, n + 3)])
    vertices = np.concatenate(verts)
    faces_a = np.asarray(faces, np.int64)
    return Part(vertices, _orient_outward(vertices, faces_a, (lo_a + hi_a) / 2))


def cylinder(centre: tuple[float, float, float], radius: float, height: float, axis: str = "y") -> Part:
    """A closed 12-sided cylinder.

    Args:
        centre: (x, y, z) centre of the bottom cap (for axis "y") or of the cap at the low end of ``axis``.
        radius: radius in metres.
        height: length along ``axis`` in metres.
        axis: "x", "y" or "z", the direction of the cylinder's length.
    """
    n = len(UNIT_CIRCLE)
    ring = np.zeros((n, 3))
    ring[:, 0], ring[:, 2] = UNIT_CIRCLE[:, 0] * radius, UNIT_CIRCLE[:, 1] * radius
    top = ring.copy()
    top[:, 1] = height
    side_v = np.concatenate([ring, top])
    idx = np.arange(n)
    nxt = (idx + 1) % n
    side_f = np.concatenate([np.stack([idx, nxt, nxt + n], 1), np.stack([idx, nxt + n, idx + n], 1)])
    fan = np.stack([np.zeros(n - 2, np.int64), np.arange(1, n - 1), np.arange(2, n)], 1)
    vertices = np.concatenate([side_v, ring, top])
    faces = np.concatenate([side_f, fan + 2 * n, fan + 3 * n])
    perm = {"y": [0, 1, 2], "x": [1, 0, 2], "z": [0, 2, 1]}[axis]
    vertices = vertices[:, perm] + np.asarray(centre, np.float64)
    return Part(vertices, _orient_outward(vertices, faces, vertices.mean(axis=0)))


def quad_y(x0: float, x1: float, z0: float, z1: float, y: float, up: bool = True) -> Part:
    """A horizontal rectangle at height ``y`` facing +y (``up``) or -y (a ceiling)."""
    v = np.array([(x0, y, z0), (x0, y, z1), (x1, y, z1), (x1, y, z0)], np.float64)
    faces = np.array([(0, 1, 2), (0, 2, 3)], np.int64)
    return Part(v, faces if up else faces[:, ::-1].copy())


class MeshBuilder:
    """Collects parts with a colour and a semantic id each, then packs them into one :class:`SceneMesh`.

    Faces keep the order in which parts were added, so adding an instance's parts one after the other keeps
    its faces contiguous.
    """

    def __init__(self) -> None:
        self._vertices: list[np.ndarray] = []
        self._faces: list[np.ndarray] = []
        self._colors: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._n = 0

    def add(self, part: Part, rgb: tuple[int, int, int], semantic_id: int) -> None:
        """Append ``part`` coloured ``rgb`` (uint8 triple) with every face labelled ``semantic_id``."""
        nv = len(part.vertices)
        self._vertices.append(part.vertices)
        self._faces.append(part.faces + self._n)
        self._colors.append(np.tile(np.asarray(rgb, np.uint8), (nv, 1)))
        self._ids.append(np.full(len(part.faces), semantic_id, np.int32))
        self._n += nv

    def build(self, double_sided: bool = True) -> SceneMesh:
        """The collected parts as one mesh (float32 vertices, int32 faces, uint8 colours); ``double_sided``
        as :class:`SceneMesh` has it (False: every part is a closed solid wound outward, or a face seen only
        from its front)."""
        if not self._faces:
            return SceneMesh(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
        return SceneMesh(
            vertices=np.concatenate(self._vertices).astype(np.float32),
            faces=np.concatenate(self._faces),
            colors=np.concatenate(self._colors),
            semantic_ids=np.concatenate(self._ids),
            double_sided=double_sided,
        )
