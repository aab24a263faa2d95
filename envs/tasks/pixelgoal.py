"""Pixel goals: the goal's projection into the current camera image as a small box mask (NavDP's pixel goal).

The goal point (on the floor) is projected with :func:`envs.render.projection.project` into the camera at
the agent's pose. The mask is 1 on a box of ``2·r + 1`` pixels around that pixel (``r`` = ``BOX_FRACTION`` of
the image width, at least 1) when the goal is in view and not occluded, and all zeros otherwise. Occlusion is
read from the current depth image: the goal is hidden when the surface drawn at its pixel is nearer than the
goal by more than ``0.1 m + 5 %`` of its distance (a floor seen at a grazing angle changes depth quickly from
one pixel to the next); a goal beyond the camera's ``max_depth`` counts as its ``max_depth``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from envs.render.camera import CameraSpec
from envs.render.projection import point_mask, project

#: Half-size of the mask's box as a fraction of the image width.
BOX_FRACTION = 0.02


def pixel_goal_mask(
    camera: CameraSpec, position, rotation, goal, depth: np.ndarray, tilt: float = 0.0
) -> tuple[np.ndarray, bool]:
    """The pixel-goal mask of ``goal`` seen from an agent pose.

    Args:
        camera: the camera that drew ``depth``.
        position: (3,) agent position, metres; rotation: (4,) quaternion [x, y, z, w].
        goal: (3,) goal position on the floor, metres.
        depth: (H, W) or (H, W, 1) z-depth image (metres) of ``camera`` at that pose.
        tilt: extra camera pitch in degrees (LOOK_UP / LOOK_DOWN).

    Returns:
        ``(mask (H, W) uint8 in {0, 1}, visible)``.
    """
    cam = dataclasses.replace(camera, pitch=camera.pitch + tilt) if tilt else camera
    proj = project(cam, position, rotation, np.asarray(goal, np.float64).reshape(1, 3))
    d = np.asarray(depth, np.float64)
    d = d[..., 0] if d.ndim == 3 else d
    seen = bool(proj.in_view[0])
    if seen:
        r, c = proj.pixels()[0]
        goal_depth = min(float(proj.depth[0]), cam.max_depth)
        seen = d[r, c] >= goal_depth - (0.1 + 0.05 * goal_depth)
    radius = max(1, int(round(BOX_FRACTION * cam.width)))
    mask = point_mask(proj, np.array([seen]), cam.height, cam.width, radius)
    return mask, seen
