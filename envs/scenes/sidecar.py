"""The JSON sidecar of a saved scene: annotations (rooms, instances, doorways) and the layout that rebuilds
each mesh from the GLB's nodes (one node per run of faces sharing a semantic id).

Floats are float32 values written as JSON numbers, which read back bit-exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from envs.scenes.scene import Instance, Room, Scene, SceneMesh

FORMAT = "navgym.scene"
VERSION = 1


def sidecar_dict(scene: Scene, glb_name: str, layout: list[dict]) -> dict:
    """The sidecar content of ``scene`` saved as ``glb_name`` with the node ``layout`` of its meshes."""
    rooms = [
        {
            "id": r.id,
            "type": r.type,
            "name": r.name,
            "color": r.color,
            "polygon": r.polygon.tolist(),
            "floor_y": float(r.floor_y),
        }
        for r in scene.rooms
    ]
    instances = [
        {
            "id": int(i.id),
            "category": i.category,
            "room": int(i.room),
            "color": i.color,
            "position": i.position.tolist(),
            "size": i.size.tolist(),
            "is_object": bool(i.is_object),
        }
        for i in (scene.instances[k] for k in sorted(scene.instances))
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": scene.name,
        "glb": glb_name,
        "meshes": layout,
        "rooms": rooms,
        "instances": instances,
        "doors": scene.doors.tolist(),
    }


def _field(obj: dict, key: str, kind: type | tuple[type, ...], where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}: field {key!r} must be {kind}, got {value!r}")
    return value


def _mesh(entry: dict, where: str, prims: dict[str, SceneMesh]) -> SceneMesh:
    """One mesh rebuilt from its nodes: vertices placed at their offsets, faces shifted, ids per node."""
    n_vertices = _field(entry, "n_vertices", int, where)
    vertices = np.zeros((n_vertices, 3), np.float32)
    colors = np.zeros((n_vertices, 3), np.uint8)
    uvs, texture = None, None
    faces, ids = [], []
    for j, prim in enumerate(_field(entry, "primitives", list, where)):
        at = f"{where}.primitives[{j}]"
        node = _field(prim, "node", str, at)
        offset = _field(prim, "vertex_offset", int, at)
        sid = _field(prim, "semantic_id", int, at)
        part = prims.get(node)
        if part is None:
            raise ValueError(f"{at}: node {node!r} is not in the GLB file")
        if len(part.faces) != _field(prim, "n_faces", int, at) or offset + len(part.vertices) > n_vertices:
            raise ValueError(f"{at}: node {node!r} does not match the GLB file (faces or vertex range)")
        vertices[offset : offset + len(part.vertices)] = part.vertices
        colors[offset : offset + len(part.vertices)] = part.colors
        if part.texture is not None:
            if uvs is None:
                uvs, texture = np.zeros((n_vertices, 2), np.float32), part.texture
            uvs[offset : offset + len(part.vertices)] = part.uvs
        faces.append(part.faces + offset)
        ids.append(np.full(len(part.faces), sid, np.int32))
    # Optional: sidecars written before the field existed describe double-sided meshes.
    double_sided = entry.get("double_sided", True)
    if not isinstance(double_sided, bool):
        raise ValueError(f"{where}: field 'double_sided' must be true or false, got {double_sided!r}")
    return SceneMesh(
        vertices, np.concatenate(faces), colors, np.concatenate(ids), uvs, texture, double_sided=double_sided
    )


def scene_from_sidecar(path: Path, prims: dict[str, SceneMesh], source: str) -> Scene:
    """The scene described by the sidecar at ``path`` over the GLB primitives ``prims`` (by node name).

    Raises:
        ValueError: the sidecar is not JSON of this format, lacks a field or does not match the GLB; the
            message names the file and the field.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON scene sidecar ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: field 'format' must be {FORMAT!r}")
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: field 'version' must be {VERSION}, got {data.get('version')!r}")
    try:
        meshes = [
            _mesh(m, f"{path}: meshes[{k}]", prims)
            for k, m in enumerate(_field(data, "meshes", list, str(path)))
        ]
        rooms = [
            Room(
                _field(r, "id", int, f"{path}: rooms[{k}]"),
                _field(r, "type", str, f"{path}: rooms[{k}]"),
                _field(r, "name", str, f"{path}: rooms[{k}]"),
                _field(r, "color", str, f"{path}: rooms[{k}]"),
                np.asarray(_field(r, "polygon", list, f"{path}: rooms[{k}]"), np.float32),
                float(_field(r, "floor_y", (int, float), f"{path}: rooms[{k}]")),
            )
            for k, r in enumerate(_field(data, "rooms", list, str(path)))
        ]
        instances = {}
        for k, i in enumerate(_field(data, "instances", list, str(path))):
            at = f"{path}: instances[{k}]"
            inst = Instance(
                _field(i, "id", int, at),
                _field(i, "category", str, at),
                _field(i, "room", int, at),
                _field(i, "color", str, at),
                np.asarray(_field(i, "position", list, at), np.float32),
                np.asarray(_field(i, "size", list, at), np.float32),
                _field(i, "is_object", bool, at),
            )
            instances[inst.id] = inst
        doors = np.asarray(_field(data, "doors", list, str(path)), np.float32).reshape(-1, 3)
        name = _field(data, "name", str, str(path))
    except (TypeError, ValueError) as e:
        raise ValueError(str(e) if str(path) in str(e) else f"{path}: {e}") from e
    return Scene(meshes, instances, rooms, name=name, source=source, doors=doors)
