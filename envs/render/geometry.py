"""Upload-time preparation of a batch's triangles: spatial chunks, compact vertex runs and per-face data.

Three things make frames cheap on llvmpipe without changing which pixels a triangle covers:

* Faces are sorted into spatial chunks (:func:`envs.render.culling.build_chunks`) so that whole chunks can be
  skipped when they are outside the view or hidden.
* Every chunk gets its own contiguous run of vertices (a vertex shared by two chunks is copied): llvmpipe
  shades every vertex in the index range a draw spans, so a chunk whose faces reached across the buffer
  would shade most of it.
* Every face gets a vertex of its own as its *provoking* (last) vertex, which carries the face's unit normal
  and semantic id to the fragment shader through ``flat`` varyings. The fragment shader then needs no
  screen-space derivatives for flat shading and no lookup texture for semantics. Rotating a face's corners
  to put that vertex last keeps its winding and its edges, so coverage is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.render.culling import FaceChunks, build_chunks


@dataclass(frozen=True)
class PreparedBatch:
    """Triangles of one batch, ready to upload.

    Attributes:
        vertex_source: (V',) int64 index of the input vertex each output vertex copies.
        faces: (F, 3) int32 output vertex indices in chunk order; corner 2 is the face's own provoking
            vertex (no two faces share one).
        normals: (V', 3) float32 unit normal of the face whose provoking vertex each vertex is (zeros for
            vertices that provoke no face, and for degenerate faces).
        semantic_ids: (V',) int32 semantic id of the face each vertex provokes (0 where none).
        chunks: the chunks, in the order of ``faces``; ``chunks.order`` maps them back to input faces.
    """

    vertex_source: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    semantic_ids: np.ndarray
    chunks: FaceChunks


def face_normals(triangles: np.ndarray) -> np.ndarray:
    """(F, 3) float64 unit normals (counter-clockwise front) of (F, 3, 3) corners; zeros when degenerate."""
    tri = np.asarray(triangles, np.float64)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def compact_chunks(faces: np.ndarray, n_vertices: int, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber vertices so that each chunk uses its own contiguous, increasing run of them.

    Args:
        faces: (F, 3) vertex indices, chunks contiguous.
        n_vertices: number of input vertices.
        count: (C,) faces per chunk.

    Returns:
        (source, faces'): (V',) input vertex of each output vertex and (F, 3) int64 output indices.
    """
    chunk_of_face = np.repeat(np.arange(len(count), dtype=np.int64), count)
    keys = chunk_of_face[:, None] * n_vertices + faces  # unique per (chunk, vertex), sorted by chunk first
    uniq, inverse = np.unique(keys.ravel(), return_inverse=True)
    return uniq % n_vertices, inverse.reshape(-1, 3)


def assign_provoking(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Give every face a distinct last corner, copying vertices where the faces outnumber them.

    Greedy and vectorised: in three rounds, each unassigned face proposes one of its corners (the current
    last one first); the first face to propose a free vertex gets it. Faces left over get a copy of their
    last corner, appended after the existing vertices.

    Args:
        faces: (F, 3) vertex indices.
        n_vertices: number of vertices.

    Returns:
        (faces', source): (F, 3) int64 faces with corners rotated (winding kept) so that corner 2 is the
        face's own vertex, and (V'',) int64 index of the vertex each output vertex copies (identity first).
    """
    faces = np.asarray(faces, np.int64)
    owner = np.full(n_vertices, -1, np.int64)  # face whose provoking vertex this is
    chosen = np.full(len(faces), -1, np.int64)  # corner of each face that provokes it
    for corner in (2, 0, 1):
        todo = np.flatnonzero(chosen < 0)
        if not len(todo):
            break
        proposal = faces[todo, corner]
        free = owner[proposal] < 0
        todo, proposal = todo[free], proposal[free]
        _, first = np.unique(proposal, return_index=True)
        owner[proposal[first]] = todo[first]
        chosen[todo[first]] = corner
    left = np.flatnonzero(chosen < 0)
    source = np.r_[np.arange(n_vertices), faces[left, 2]]
    faces = faces.copy()
    faces[left, 2] = n_vertices + np.arange(len(left))
    chosen[left] = 2
    # Rotate the corners so that the chosen one comes last: a cyclic shift keeps the winding.
    rows = np.arange(len(faces))[:, None]
    return faces[rows, (np.arange(3)[None] + chosen[:, None] + 1) % 3], source


def prepare_batch(positions: np.ndarray, faces: np.ndarray, semantic_ids: np.ndarray) -> PreparedBatch:
    """Chunk, compact and assign provoking vertices to one batch.

    Args:
        positions: (V, 3) vertex positions, metres (world frame).
        faces: (F, 3) vertex indices.
        semantic_ids: (F,) semantic id of each face.

    Returns:
        The prepared batch; copy vertex attributes with ``vertex_source``.
    """
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    chunks = build_chunks(positions[faces])
    faces = faces[chunks.order]
    source, faces = compact_chunks(faces, len(positions), chunks.count)
    # Provoking vertices are assigned per chunk so that copies stay inside the chunk's vertex run.
    out_faces, out_source = [], []
    base = 0
    starts = np.r_[chunks.first, len(faces)]
    for begin, end in zip(starts[:-1], starts[1:], strict=True):
        local = faces[begin:end]
        lo, hi = int(local.min()), int(local.max()) + 1
        rotated, local_source = assign_provoking(local - lo, hi - lo)
        out_faces.append(rotated + base)
        out_source.append(source[lo + local_source])
        base += len(local_source)
    faces = np.concatenate(out_faces) if out_faces else np.zeros((0, 3), np.int64)
    source = np.concatenate(out_source) if out_source else np.zeros(0, np.int64)
    normals = np.zeros((len(source), 3), np.float32)
    sem = np.zeros(len(source), np.int32)
    provoking = faces[:, 2]
    normals[provoking] = face_normals(positions[source][faces])
    sem[provoking] = np.asarray(semantic_ids, np.int32)[chunks.order]
    return PreparedBatch(source, faces.astype(np.int32), normals, sem, chunks)
