"""Frames for videos and the viewer: RGB | depth | top-down map, with an optional caption."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from envs.sim import Simulator
    from envs.tasks.base import NavTask

PATH_RGB = (30, 110, 230)
REFERENCE_RGB = (40, 170, 60)


def depth_to_rgb(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """(H, W, 1) metres -> (H, W, 3) uint8 grey image, near = bright."""
    d = np.clip(depth[..., 0] / max(max_depth, 1e-6), 0.0, 1.0)
    grey = (255.0 * (1.0 - d)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    """Resize ``image`` to ``height`` rows, keeping its aspect ratio."""
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.NEAREST))


def caption_strip(text: str, width: int, line_chars: int | None = None) -> np.ndarray:
    """A white strip of wrapped black text, ``width`` pixels wide."""
    line_chars = line_chars or max(20, width // 7)
    lines = textwrap.wrap(text, line_chars)[:4] or [""]
    strip = Image.new("RGB", (width, 14 * len(lines) + 6), (255, 255, 255))
    pen = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        pen.text((4, 3 + 14 * i), line, fill=(0, 0, 0))
    return np.asarray(strip)


def compose_frame(
    sim: Simulator, obs: dict, task: NavTask | None = None, height: int = 256, caption: str | None = None
) -> np.ndarray:
    """One video frame: the RGB view, the depth view and the top-down map (agent, path, reference, goal).

    Args:
        sim: the simulator (for the agent pose and the map).
        obs: an observation with ``rgb`` and/or ``depth``.
        task: the running task (its path, reference and goal are drawn), or None.
        height: pixel height of the frame (captions add rows).
        caption: text under the frame; default: the instruction when there is one.

    Returns:
        (H, W, 3) uint8.
    """
    panels = []
    if "rgb" in obs:
        panels.append(_fit(np.asarray(obs["rgb"]), height))
    if "depth" in obs:
        panels.append(_fit(depth_to_rgb(np.asarray(obs["depth"]), sim.config.cameras[0].max_depth), height))
    state = sim.get_agent_state()
    paths, goal, radius = [], None, None
    if task is not None and task.episode is not None:
        if len(task.reference):
            paths.append((np.asarray(task.reference), REFERENCE_RGB))
        paths.append((np.asarray(task.positions), PATH_RGB))
        goal = task.goal
        radius = task.config.success_distance if goal is not None else None
    topdown = sim.topdown_map(scale=2).draw(state.position, state.yaw, goal, paths, radius)
    panels.append(_fit(topdown, height))
    frame = np.concatenate(panels, axis=1)
    text = caption if caption is not None else str(obs.get("instruction_text", "") or "")
    if text:
        frame = np.concatenate([frame, caption_strip(text, frame.shape[1])], axis=0)
    return frame
