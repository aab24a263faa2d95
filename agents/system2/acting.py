"""System 2 + shortest-path follower: from a parsed answer to discrete actions, per environment.

A pixel goal (row, col) in the look-down image is back-projected with the look-down depth and the look-down
camera at the agent's pose (:func:`envs.render.projection.back_project`), snapped to the navigable area, and
the follower (:meth:`envs.navigator.Navigator.follower_action`, goal radius 0.25 m) walks toward it for at
most ``follow_steps`` steps before System 2 is asked again (InternVLA-N1's System-2 evaluation, anchors Part A
§2.5). Arrows become 15° turns, ``STOP`` stops, and anything else turns left once and asks again (logged).
A pixel goal at the agent's feet (the follower has nothing to walk) becomes a step forward, to change the
view; when that step was blocked (the agent answered it from the same spot), a turn instead (logged).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.base import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT
from agents.system2.conversation import TURN_LEFT_ARROW, Answer
from envs.render.projection import back_project

log = logging.getLogger(__name__)
#: The look-down camera's uuid (observations ``lookdown_rgb``, ``lookdown_depth``).
LOOKDOWN = "lookdown"
#: The action taken when an answer cannot be used: turn, then ask again.
FALLBACK_ACTION = TURN_LEFT
#: Positions closer than this (m) are the same spot (a blocked step moves the agent by less).
_SAME_SPOT = 0.01


@dataclass
class EnvMemory:
    """What the agent keeps per environment.

    Attributes:
        frames: the episode's RGB frames so far (H, W, 3) uint8, one per step.
        pending: actions decided but not yet taken (the turns of an arrow answer).
        goal: the snapped (3,) pixel goal the follower walks toward, or None.
        steps_left: follower steps left before System 2 is asked again.
        last_answer: the last generated text (for logs and tests).
        n_fallbacks: answers that could not be used.
        forward_from: where the agent stood when a pixel goal at its feet last made it step forward (None
            after any other answer): a second such answer from the same spot means that step was blocked.
    """

    frames: list[np.ndarray] = field(default_factory=list)
    pending: collections.deque[int] = field(default_factory=collections.deque)
    goal: np.ndarray | None = None
    steps_left: int = 0
    last_answer: str = ""
    n_fallbacks: int = 0
    forward_from: np.ndarray | None = None


def history_frames(frames: list[np.ndarray], n_history: int) -> list[np.ndarray]:
    """Up to ``n_history`` earlier frames spread evenly over the episode so far (the frames before the last
    one), as InternVLA-N1 samples them (``linspace(0, t - 1, n)``, unique)."""
    earlier = len(frames) - 1
    if earlier <= 0 or n_history == 0:
        return []
    idx = np.unique(np.linspace(0, earlier - 1, min(n_history, earlier)).round().astype(int))
    return [frames[i] for i in idx]


def follow(memory: EnvMemory, navigator: Any, goal_radius: float) -> int | None:
    """The follower's next action toward ``memory.goal`` while steps are left, else None (ask System 2).

    A goal reached (the follower says STOP) ends the walk; System 2 is then asked again.
    """
    if memory.goal is None or memory.steps_left <= 0:
        memory.goal = None
        return None
    action = int(navigator.follower_action(memory.goal, goal_radius))
    if action == STOP:
        memory.goal, memory.steps_left = None, 0
        return None
    memory.steps_left -= 1
    return action


def pixel_goal(pixel: tuple[int, int], depth: np.ndarray, navigator: Any) -> np.ndarray:
    """The navigable (3,) point seen at ``pixel`` (row, col) of the look-down image, clipped into the image.

    Args:
        pixel: (row, col) as the model answered.
        depth: (h, w, 1) or (h, w) z-depth of the look-down camera, metres.
        navigator: the environment's :class:`envs.navigator.Navigator`.
    """
    d = np.asarray(depth, np.float32)
    d = d[..., 0] if d.ndim == 3 else d
    row = int(np.clip(pixel[0], 0, d.shape[0] - 1))
    col = int(np.clip(pixel[1], 0, d.shape[1] - 1))
    camera = navigator.camera(LOOKDOWN)
    position, rotation = navigator.agent_pose()
    point = back_project(camera, position, rotation, np.array([row]), np.array([col]), d)[0]
    return navigator.snap(point)


def decide(
    answer: Answer,
    memory: EnvMemory,
    navigator: Any,
    depth: np.ndarray | None,
    follow_steps: int,
    radius: float,
) -> int:
    """The action for a fresh answer; sets the follower's goal or the pending turns in ``memory``."""
    forward_from, memory.forward_from = memory.forward_from, None
    if answer.kind == "stop":
        return STOP
    if answer.kind == "turn":
        actions = [TURN_LEFT if a == TURN_LEFT_ARROW else TURN_RIGHT for a in answer.turns[:4]]
        memory.pending.extend(actions[1:])
        return actions[0]
    if answer.kind == "pixel" and depth is not None:
        memory.goal, memory.steps_left = pixel_goal(answer.pixel, depth, navigator), follow_steps
        action = follow(memory, navigator, radius)
        if action is not None:
            return action
        # The goal is where the agent stands: a step forward keeps it from asking about the same view, unless
        # the last such step left it where it was (a wall ahead), where only a turn changes the view.
        position = np.asarray(navigator.agent_pose()[0], np.float64)
        if forward_from is not None and np.linalg.norm(position - forward_from) < _SAME_SPOT:
            memory.n_fallbacks += 1
            log.info("system2: pixel goal %r at the agent's feet, forward blocked: turning", answer.pixel)
            return FALLBACK_ACTION
        memory.forward_from = position
        return MOVE_FORWARD
    memory.n_fallbacks += 1
    log.info("system2: unusable answer %r (%s): turning and asking again", memory.last_answer, answer.kind)
    return FALLBACK_ACTION
