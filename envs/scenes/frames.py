"""From a scene file's own frame to Habitat's world frame (y up, -z front), as Habitat's stage configs state
it.

A stage config ``<name>.stage_config.json`` beside ``<name>.glb`` may give ``up`` and ``front`` (3-vectors
in the file's frame), ``scale`` (per-axis factors, applied in the file's frame) and ``units_to_meters``.
Without one, an ``up_axis`` of "y" (the glTF convention) or "z" (many scans) says which way is up.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STAGE_CONFIG_SUFFIX = ".stage_config.json"
UP_AXES = {"y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def check_up_axis(up_axis: str | None) -> None:
    """Raise ValueError unless ``up_axis`` is None, "y" or "z"."""
    if up_axis is not None and up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be None, 'y' or 'z', got {up_axis!r}")


def rotation_to_habitat(up: np.ndarray, front: np.ndarray | None = None) -> np.ndarray:
    """(3, 3) rotation taking the file's ``up`` to +y and its ``front`` to -z.

    Without a usable ``front`` (missing, or not perpendicular to ``up``) the smallest rotation taking ``up``
    to +y is used; for up = +z that maps (x, y, z) to (x, z, -y). Axis-aligned inputs give exact 0/±1
    matrices.
    """
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    if front is not None:
        front = np.asarray(front, np.float64)
        norm = np.linalg.norm(front)
        if norm > 0 and abs(float(up @ front)) < 1e-6 * norm:
            back = -front / norm
            right = np.cross(up, back)
            return np.stack([right, up, back])  # rows: file axes onto x, y, z
    axis = np.cross(up, (0.0, 1.0, 0.0))
    s, c = float(np.linalg.norm(axis)), float(up[1])
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + k + k @ k * ((1.0 - c) / s**2)


def _vector(config: dict, key: str, path: Path) -> np.ndarray | None:
    if key not in config:
        return None
    value = np.asarray(config[key], dtype=object).reshape(-1)
    try:
        vec = np.array([float(v) for v in value], np.float64)
    except (TypeError, ValueError):
        vec = np.zeros(0)
    if len(vec) != 3 or not np.all(np.isfinite(vec)):
        raise ValueError(f"{path}: field {key!r} must be a list of 3 numbers, got {config[key]!r}")
    return vec


def stage_config_path(scene_file: Path) -> Path:
    """Habitat's stage config beside a scene file: ``<stem>.stage_config.json``."""
    return scene_file.with_name(scene_file.stem + STAGE_CONFIG_SUFFIX)


def scene_frame(scene_file: Path, up_axis: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(rotation (3, 3), scale (3,)) such that a file point p maps to ``rotation @ (scale * p)`` in
    Habitat's frame.

    The stage config beside ``scene_file`` wins when present; else ``up_axis``; else y up.

    Raises:
        ValueError: a stage config that is not JSON, or whose up/front/scale/units_to_meters field is
            malformed (the message names the file and the field).
    """
    check_up_axis(up_axis)
    config_file = stage_config_path(scene_file)
    if not config_file.exists():
        return rotation_to_habitat(np.array(UP_AXES[up_axis or "y"])), np.ones(3)
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{config_file}: not a readable JSON stage config ({e})") from e
    if not isinstance(config, dict):
        raise ValueError(f"{config_file}: a stage config must be a JSON object")
    up = _vector(config, "up", config_file)
    if up is not None and np.linalg.norm(up) == 0:
        raise ValueError(f"{config_file}: field 'up' must be a non-zero vector, got {config['up']!r}")
    if up is None:
        up = np.array(UP_AXES[up_axis or "y"])
    scale = _vector(config, "scale", config_file)
    scale = np.ones(3) if scale is None else scale
    units = config.get("units_to_meters", 1.0)
    if isinstance(units, bool) or not isinstance(units, (int, float)) or not units > 0:
        raise ValueError(f"{config_file}: field 'units_to_meters' must be a positive number, got {units!r}")
    if np.any(scale == 0):
        raise ValueError(f"{config_file}: field 'scale' must have non-zero entries, got {config['scale']!r}")
    return rotation_to_habitat(up, _vector(config, "front", config_file)), scale * float(units)
