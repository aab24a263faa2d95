"""System 2's answers: pixel goals in a look-down image, turn arrows and STOP; their targets and metrics.

InternVLA-N1's System 2 (a VLM) answers a navigation query with one of three texts:

- a **pixel goal** ``"{row} {col}"``: two integers, a pixel of the look-down image (the main camera pitched
  down) where a path point a few steps ahead lies on the floor; a follower walks towards its back-projection;
- **turn arrows**: up to 4 of ``←`` (TURN_LEFT) and ``→`` (TURN_RIGHT), concatenated (``"←←"``), when the
  path is not in sight and the expert turns first;
- ``"STOP"`` at the end of the episode.

This module is shared by the data (targets from expert paths), the agents (:func:`parse_answer`) and the
benchmarks (:func:`pixel_goal_metrics`); it depends on numpy and the projection helpers only.

Target rule (:func:`choose_pixel_goal`): among the expert's future floor positions at steps
``t + min_goal_frames .. t + max_goal_frames`` (clipped to the episode), in order, keep those that project
inside the look-down image and are not hidden in its rendered depth (:func:`envs.render.projection.visible`,
tolerance ``max(0.1 m, 5 % of the depth)`` so that the floor seen at a grazing angle is not taken for an
occluder); the goal is the **last point of the first visible run**: the farthest point the path reaches
without leaving the view, so a path that disappears behind a wall and comes back gives the point before it
disappears.

**Pixel-goal masks** (NavDP's pixel goal, :func:`pixel_goal_mask`): the goal point on the floor is projected
into the camera at the agent's pose; the mask is 1 on a box of ``2·r + 1`` pixels around that pixel (``r`` =
``BOX_FRACTION`` of the image width, at least 1) when the goal is in view and not occluded, all zeros
otherwise. Occlusion is read from the current depth image: the goal is hidden when the surface drawn at its
pixel is nearer than the goal by more than ``0.1 m + 5 %`` of its distance; a goal beyond the camera's
``max_depth`` counts as its ``max_depth``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.render.camera import CameraSpec
from envs.render.projection import point_mask, project, visible

STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
#: Answer text of each turn action, and back.
ARROWS: Mapping[int, str] = {TURN_LEFT: "←", TURN_RIGHT: "→"}
ARROW_ACTIONS: Mapping[str, int] = {v: k for k, v in ARROWS.items()}
STOP_TEXT = "STOP"
#: Sample kinds of a System-2 target.
TARGET_KINDS = ("pixel", "turn", "stop")
#: A predicted pixel within this share of the image diagonal of the target counts as reached.
PIXEL_TOLERANCE = 0.05
_INTEGER = re.compile(r"-?\d+")


def pixel_answer(row: int, col: int) -> str:
    """The answer text of a pixel goal: ``"{row} {col}"``."""
    return f"{int(row)} {int(col)}"


def turn_arrows(actions: Sequence[int], max_arrows: int = 4) -> list[int]:
    """The leading turns of ``actions`` (TURN_LEFT / TURN_RIGHT ids) until the first other action, at most
    ``max_arrows`` of them (empty when the first action is not a turn)."""
    out: list[int] = []
    for a in actions:
        if int(a) not in ARROWS or len(out) == max_arrows:
            break
        out.append(int(a))
    return out


def turn_answer(actions: Sequence[int]) -> str:
    """The answer text of turn actions: one arrow per turn (``[2, 2] -> "←←"``)."""
    return "".join(ARROWS[int(a)] for a in actions)


def parse_answer(text: str) -> tuple[str, Any]:
    """Read System 2's answer.

    Rules, in order: two or more integers -> ``("pixel", (row, col))`` from the first two (InternNav's
    evaluator reads any answer with digits as a pixel goal); the word STOP (any case) -> ``("stop", None)``;
    only arrows ``←``/``→`` (whitespace ignored) -> ``("turn", [action ids])``; anything else (one integer,
    negative coordinates, an empty answer, words) -> ``("invalid", text)``.
    """
    numbers = _INTEGER.findall(text)
    if len(numbers) >= 2:
        row, col = int(numbers[0]), int(numbers[1])
        return ("pixel", (row, col)) if row >= 0 and col >= 0 else ("invalid", text)
    if numbers:
        return "invalid", text
    if re.search(r"\bstop\b", text, flags=re.IGNORECASE):
        return "stop", None
    arrows = "".join(text.split())
    if arrows and all(ch in ARROW_ACTIONS for ch in arrows):
        return "turn", [ARROW_ACTIONS[ch] for ch in arrows]
    return "invalid", text


def check_pixel(pixel: Sequence[int], height: int, width: int, where: str) -> tuple[int, int]:
    """``(row, col)`` as ints when inside a ``height`` x ``width`` image; else ``ValueError`` naming ``where``
    (episode and step) and the pixel. Targets are never clipped into the image."""
    row, col = (int(v) for v in pixel)
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(
            f"{where}: pixel goal (row {row}, col {col}) falls outside the {height}x{width} look-down image"
        )
    return row, col


def choose_pixel_goal(
    camera: CameraSpec,
    position: Sequence[float],
    rotation: Sequence[float],
    points: np.ndarray,
    depth: np.ndarray,
) -> tuple[int, tuple[int, int]]:
    """The pixel goal among candidate path points, by the module's target rule.

    Args:
        camera: the look-down camera.
        position, rotation: (3,) agent position (floor level) and (4,) quaternion [x, y, z, w] of the query.
        points: (N, 3) candidate floor points in path order.
        depth: (H, W[, 1]) z-depth (m) the look-down camera renders at that pose.

    Returns:
        ``(k, (row, col))``: the index of the chosen point in ``points`` and its pixel, or ``(-1, (-1, -1))``
        when no candidate is visible.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if not len(points):
        return -1, (-1, -1)
    proj = project(camera, position, rotation, points)
    seen = visible(proj, depth)
    if not seen.any():
        return -1, (-1, -1)
    first = int(np.argmax(seen))
    gap = np.flatnonzero(~seen[first:])
    k = first + (int(gap[0]) - 1 if len(gap) else len(points) - 1 - first)
    row, col = proj.pixels()[k]
    return k, (int(row), int(col))


def pixel_goal_metrics(predictions: Sequence[str], samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Accuracy of System-2 answers against their targets.

    Args:
        predictions: answer texts, one per sample.
        samples: items with ``kind`` (``pixel`` | ``turn`` | ``stop``), ``answer`` (the target text),
            ``pixel`` (2,) (row, col) and the look-down image size as ``lookdown`` (h, w, 3) or
            ``image_size`` (h, w).

    Returns:
        ``pixel/median_error_px``: median Euclidean pixel error over pixel samples answered with a pixel
        (NaN without any); ``pixel/within_5pct``: share of pixel samples answered within
        :data:`PIXEL_TOLERANCE` (5 %) of the image diagonal (any other answer counts as a miss);
        ``pixel/answered``: share of pixel samples answered with a pixel; ``turn/accuracy``: share of turn
        samples answered with exactly the target arrows; ``stop/accuracy``: share of stop samples answered
        STOP; ``stop/false_rate``: share of pixel and turn samples answered STOP (each would end an episode
        early); ``kind/accuracy``: share of all samples answered with the right kind; ``invalid``: unparseable
        answers (a count); ``n_pixel``, ``n_turn``, ``n_stop``: samples of each kind. Shares are NaN for a
        kind without samples.
    """
    if len(predictions) != len(samples):
        raise ValueError(f"pixel_goal_metrics: {len(predictions)} predictions for {len(samples)} samples")
    errors, within, answered = [], [], []
    hits: dict[str, list[bool]] = {"turn": [], "stop": []}
    false_stops: list[bool] = []
    right_kind, invalid = [], 0
    for text, sample in zip(predictions, samples, strict=True):
        kind, value = parse_answer(text)
        invalid += kind == "invalid"
        target = str(sample["kind"])
        if target not in TARGET_KINDS:
            raise ValueError(f"pixel_goal_metrics: sample kind must be one of {TARGET_KINDS}, got {target!r}")
        right_kind.append(kind == target)
        if target != "stop":
            false_stops.append(kind == "stop")
        if target == "pixel":
            answered.append(kind == "pixel")
            if kind != "pixel":
                within.append(False)
                continue
            h, w = _image_size(sample)
            error = math.dist(value, [int(v) for v in np.asarray(sample["pixel"]).reshape(2)])
            errors.append(error)
            within.append(error <= PIXEL_TOLERANCE * math.hypot(h, w))
        elif target == "turn":
            hits["turn"].append(kind == "turn" and turn_answer(value) == sample["answer"])
        else:
            hits["stop"].append(kind == "stop")
    return {
        "pixel/median_error_px": float(np.median(errors)) if errors else math.nan,
        "pixel/within_5pct": _share(within),
        "pixel/answered": _share(answered),
        "turn/accuracy": _share(hits["turn"]),
        "stop/accuracy": _share(hits["stop"]),
        "stop/false_rate": _share(false_stops),
        "kind/accuracy": _share(right_kind),
        "invalid": int(invalid),
        "n_pixel": len(within),
        "n_turn": len(hits["turn"]),
        "n_stop": len(hits["stop"]),
    }


def _image_size(sample: Mapping[str, Any]) -> tuple[int, int]:
    if "image_size" in sample:
        h, w = (int(v) for v in sample["image_size"])
        return h, w
    shape = np.shape(sample["lookdown"])
    return int(shape[0]), int(shape[1])


def _share(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else math.nan


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
    seen = visible(proj, depth, max_depth=cam.max_depth)
    radius = max(1, int(round(BOX_FRACTION * cam.width)))
    mask = point_mask(proj, seen, cam.height, cam.width, radius)
    return mask, bool(seen[0])
