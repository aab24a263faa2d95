"""Scene files: GLB (glTF 2.0, Habitat's scene format) plus a JSON sidecar with the annotations.

``save_scene`` writes ``<name>.glb`` (one node per run of faces with one semantic id, vertex colours as
``COLOR_0``, textures as PBR base colour textures) and ``<name>.scene.json`` (name, rooms, instances,
doorways and how the nodes rebuild each mesh), both atomically. ``load_scene`` reads any GLB/glTF through
trimesh, applying the scene graph and turning z-up scenes into Habitat's y-up frame; with a sidecar beside
it, it gives back exactly the scene that was saved.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from envs.fileio import atomic_write
from envs.scenes.frames import check_up_axis, scene_frame
from envs.scenes.scene import UNLABELLED_ID, Scene, SceneMesh
from envs.scenes.sidecar import scene_from_sidecar, sidecar_dict

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".scene.json"


class SceneLoadError(ValueError):
    """A scene file (or its sidecar or stage config) exists but cannot be read as a scene."""


def glb_path(path: str | os.PathLike) -> Path:
    """The GLB file of ``path``: itself when it ends in .glb or .gltf, else ``<path>.glb``."""
    p = Path(path)
    return p if p.suffix.lower() in (".glb", ".gltf") else p.with_name(p.name + ".glb")


def sidecar_path(path: str | os.PathLike) -> Path:
    """The annotation sidecar ``<stem>.scene.json`` beside the scene file of ``path``."""
    glb = glb_path(path)
    return glb.with_name(glb.stem + SIDECAR_SUFFIX)


def _runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) ranges of consecutive equal values."""
    if len(ids) == 0:
        return []
    cuts = np.flatnonzero(np.diff(ids)) + 1
    bounds = [0, *cuts.tolist(), len(ids)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _visual(mesh: SceneMesh, lo: int, hi: int) -> trimesh.visual.base.Visuals:
    rgba = np.concatenate([mesh.colors[lo:hi], np.full((hi - lo, 1), 255, np.uint8)], axis=1)
    if mesh.texture is None or mesh.uvs is None:
        return trimesh.visual.ColorVisuals(vertex_colors=rgba)
    uv = mesh.uvs[lo:hi].astype(np.float64)
    uv[:, 1] = 1.0 - uv[:, 1]  # glTF's v runs down from the image top; trimesh's runs up
    material = trimesh.visual.material.PBRMaterial(
        baseColorFactor=[255, 255, 255, 255], baseColorTexture=Image.fromarray(mesh.texture)
    )
    visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    visual.vertex_attributes["color"] = rgba
    return visual


def save_scene(scene: Scene, path: str | os.PathLike) -> Path:
    """Write ``scene`` as ``<path>.glb`` plus the sidecar ``<stem>.scene.json``, each atomically.

    Args:
        scene: the scene; meshes without faces and vertices used by no face are not stored.
        path: the target, with or without the .glb suffix; missing folders are created.

    Returns:
        The path of the GLB file.
    """
    glb = glb_path(path)
    glb.parent.mkdir(parents=True, exist_ok=True)
    tm_scene = trimesh.Scene()
    layout = []
    for k, mesh in enumerate(scene.meshes):
        prims = []
        for j, (a, b) in enumerate(_runs(mesh.semantic_ids)):
            faces = mesh.faces[a:b]
            lo, hi = int(faces.min()), int(faces.max()) + 1
            sid = int(mesh.semantic_ids[a])
            node = f"mesh{k}_part{j}_id{sid}"
            geom = trimesh.Trimesh(
                mesh.vertices[lo:hi], faces - lo, visual=_visual(mesh, lo, hi), process=False
            )
            tm_scene.add_geometry(geom, geom_name=node, node_name=node)
            prims.append({"node": node, "semantic_id": sid, "vertex_offset": lo, "n_faces": b - a})
        if prims:
            layout.append(
                {"n_vertices": len(mesh.vertices), "double_sided": mesh.double_sided, "primitives": prims}
            )
    if not layout:
        raise ValueError(f"scene {scene.name!r} has no triangles to save to {glb}")
    sidecar = sidecar_dict(scene, glb.name, layout)
    atomic_write(glb, tm_scene.export(file_type="glb"))
    atomic_write(sidecar_path(glb), json.dumps(sidecar, indent=1).encode())
    return glb


def _to_uint8(colors: np.ndarray) -> np.ndarray:
    """(N, 3|4) colours of any glTF component type as (N, 3) uint8."""
    c = np.asarray(colors)[:, :3]
    if c.dtype == np.uint8:
        return c
    if np.issubdtype(c.dtype, np.integer):
        return (c.astype(np.int64) // 257).astype(np.uint8)
    return np.clip(np.round(c.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _material(visual: trimesh.visual.base.Visuals) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB base colour factor as uint8 (3,), base colour texture (H, W, 3) uint8 or None) of a visual."""
    mat = getattr(visual, "material", None)
    factor, image = None, None
    if isinstance(mat, trimesh.visual.material.PBRMaterial):
        factor, image = mat.baseColorFactor, mat.baseColorTexture
    elif isinstance(mat, trimesh.visual.material.SimpleMaterial):
        factor, image = mat.diffuse, mat.image
    factor = np.full(3, 255, np.uint8) if factor is None else _to_uint8(np.asarray(factor).reshape(1, -1))[0]
    texture = None if image is None else np.asarray(image.convert("RGB"), np.uint8)
    return factor, texture


def _appearance(geom: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(colors (V, 3) uint8 = base colour factor × vertex colours, uvs (V, 2) in glTF convention or None,
    texture or None) of one primitive."""
    visual, n = geom.visual, len(geom.vertices)
    factor, texture = _material(visual)
    if isinstance(visual, trimesh.visual.ColorVisuals):
        vcol = visual.vertex_colors if visual.defined else None
    else:
        vcol = visual.vertex_attributes.get("color")
    vcol = np.full((n, 3), 255, np.uint8) if vcol is None or len(vcol) != n else _to_uint8(vcol)
    colors = ((vcol.astype(np.uint32) * factor + 127) // 255).astype(np.uint8)
    uv = getattr(visual, "uv", None)
    if texture is not None and (uv is None or len(uv) != n):
        # A texture without coordinates: fold its mean colour into the base colour.
        mean = np.round(texture.reshape(-1, 3).mean(axis=0)).astype(np.uint32)
        return ((colors.astype(np.uint32) * mean + 127) // 255).astype(np.uint8), None, None
    if texture is None:
        return colors, None, None
    uvs = np.asarray(uv, np.float64)[:, :2].copy()
    uvs[:, 1] = 1.0 - uvs[:, 1]  # back to glTF's v-down convention
    return colors, uvs, texture


def _primitives(tm_scene: trimesh.Scene, rotation: np.ndarray, scale: np.ndarray) -> dict[str, SceneMesh]:
    """Every triangle primitive of the scene graph in Habitat's frame, by node name (id 0 on every face)."""
    out = {}
    for node in sorted(tm_scene.graph.nodes_geometry):
        transform, geom_name = tm_scene.graph[node]
        geom = tm_scene.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        v = np.asarray(geom.vertices, np.float64)
        if not np.array_equal(transform, np.eye(4)):
            v = v @ transform[:3, :3].T + transform[:3, 3]
        linear = rotation * scale  # rotation @ diag(scale)
        if not np.array_equal(linear, np.eye(3)):
            v = v @ linear.T
        faces = np.asarray(geom.faces, np.int64)
        if np.linalg.det(transform[:3, :3]) * np.prod(scale) < 0:
            faces = faces[:, ::-1]  # a mirroring transform would turn the faces inside out
        colors, uvs, texture = _appearance(geom)
        out[node] = SceneMesh(v, faces, colors, np.full(len(faces), UNLABELLED_ID), uvs, texture)
    return out


def load_scene(path: str | os.PathLike, up_axis: str | None = None) -> Scene:
    """Read a GLB/glTF scene (Habitat's format) into Habitat's world frame.

    Each triangle primitive becomes a :class:`SceneMesh` whose colours are the PBR base colour factor times
    the vertex colours (``COLOR_0``), with the base colour texture and its uvs kept beside them. The frame
    comes from ``<stem>.stage_config.json`` beside the file when present (``up``, ``front``, ``scale``),
    else from ``up_axis`` ("y" or "z"; a z-up point (x, y, z) becomes (x, z, -y)), else y up. With the
    sidecar ``<stem>.scene.json`` (written by :func:`save_scene`) the meshes, semantic ids, rooms, instances
    and doorways are restored exactly, with whether each mesh may be drawn single-sided; without it every face
    is unlabelled (id 0), there are no annotations and every mesh is double-sided (scans are not wound
    consistently, whatever glTF's ``doubleSided`` says).

    Args:
        path: the .glb/.gltf file (``<path>.glb`` when the suffix is missing).
        up_axis: None, "y" or "z"; used only without a stage config.

    Raises:
        ValueError: ``up_axis`` is not None, "y" or "z".
        FileNotFoundError: no file at ``path``.
        SceneLoadError: the file, its sidecar or its stage config cannot be read, or it holds no triangles.
    """
    check_up_axis(up_axis)
    glb = Path(path)
    if not glb.exists() and glb.suffix.lower() not in (".glb", ".gltf"):
        glb = glb_path(path)
    if not glb.is_file():
        raise FileNotFoundError(f"scene file not found: {glb}")
    try:
        rotation, scale = scene_frame(glb, up_axis)
    except ValueError as e:
        raise SceneLoadError(str(e)) from e
    try:
        tm_scene = trimesh.load(str(glb), force="scene")
        prims = _primitives(tm_scene, rotation, scale)
    except Exception as e:  # trimesh raises many types on a corrupt file
        raise SceneLoadError(f"{glb}: not a readable glTF/GLB scene ({type(e).__name__}: {e})") from e
    if not prims:
        raise SceneLoadError(f"{glb}: the file holds no triangles")
    side = sidecar_path(glb)
    if side.exists():
        try:
            return scene_from_sidecar(side, prims, source=str(glb))
        except ValueError as e:
            raise SceneLoadError(str(e)) from e
    return Scene(list(prims.values()), name=glb.stem, source=str(glb))
