"""RDP's training targets and inputs derived from stored trajectories, and the decoding of predicted steps.

Steps are ``(dx m, dy m, dyaw rad)``; the model sees them divided by the bounds ``(max_dxy, max_dxy,
max_dyaw)`` and clipped to [-1, 1] (InternNav's ``action_stats``: ±0.25 m, ±0.27 rad).

- **Labels** (InternNav ``RDP_LerobotDataset``): at step ``t`` the next ``horizon`` steps of the stored
  trajectory, each the motion from pose ``t+k-1`` to pose ``t+k`` expressed in the frame of pose ``t`` (the
  difference of consecutive future poses in that frame, as InternNav's ``get_delta`` of its local
  waypoints). With ``snap`` (``use_discrete_dataset``) each step takes the semantics of the discrete
  action that produced it: MOVE_FORWARD = ``forward_step`` metres along the heading reached so far in that
  frame, TURN_LEFT/RIGHT = ``±max_dyaw``, STOP = 0. Poses past the end are clamped to the last one: zero
  motion, trained when the episode ended with STOP (``supervise_after_end``) and masked otherwise.
  DAgger data: the stored trajectory is the expert's only up to the first step whose executed action
  differs from the expert's label; that step's label is the expert action's nominal step and the later
  ones are masked, so every label is what the expert would do. On expert data this is exactly the
  trajectory's future.
- **Previous actions**: the nominal own-frame step of each executed action (MOVE_FORWARD
  ``(forward_step, 0, 0)``, turns ``(0, 0, ±max_dyaw)``, STOP and "none yet" zero), most recent first; acting
  keeps the same history of the actions it executed, so training and acting see the same inputs.
- **Odometry**: :func:`envs.nav.geometry.start_frame_odometry` of the stored poses, the environment's
  ``odometry`` observation bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agents.base import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT
from envs.nav.geometry import start_frame_odometry


@dataclass(frozen=True)
class StepSemantics:
    """Units of the predicted steps (see the module docstring).

    Attributes:
        horizon: steps per plan.
        forward_step: metres of MOVE_FORWARD.
        turn_angle: radians of a TURN (the heading change the simulator applies).
        max_dxy, max_dyaw: normalisation bounds; a snapped turn is ``± max_dyaw``.
        snap: snap label steps to the discrete actions' semantics.
        supervise_after_end: train clamped steps past the end of an episode that ended with STOP.
    """

    horizon: int = 8
    forward_step: float = 0.25
    turn_angle: float = math.radians(15.0)
    max_dxy: float = 0.25
    max_dyaw: float = 0.27
    snap: bool = True
    supervise_after_end: bool = True

    @property
    def bounds(self) -> np.ndarray:
        """(3,) float32 ``(max_dxy, max_dxy, max_dyaw)``."""
        return np.array([self.max_dxy, self.max_dxy, self.max_dyaw], np.float32)

    def normalise(self, steps: np.ndarray) -> np.ndarray:
        """(..., 3) metres/radians → [-1, 1]."""
        return np.clip(np.asarray(steps, np.float32) / self.bounds, -1.0, 1.0)

    def denormalise(self, steps: np.ndarray) -> np.ndarray:
        """(..., 3) in [-1, 1] → metres/radians."""
        return np.asarray(steps, np.float32) * self.bounds


def action_steps(actions: np.ndarray, sem: StepSemantics) -> np.ndarray:
    """(..., 3) float32 nominal own-frame step of discrete action ids (−1 = none: zero)."""
    actions = np.asarray(actions)
    out = np.zeros((*actions.shape, 3), np.float32)
    out[..., 0] = np.where(actions == MOVE_FORWARD, sem.forward_step, 0.0)
    out[..., 2] = np.where(
        actions == TURN_LEFT, sem.max_dyaw, np.where(actions == TURN_RIGHT, -sem.max_dyaw, 0.0)
    )
    return out


def action_history(prev_actions: np.ndarray, n: int) -> np.ndarray:
    """(B, T, n) int64 executed actions at ``t-1 .. t-n`` (−1 before the start) from the batch's
    ``prev_actions`` (B, T) (the action executed at ``t-1``, −1 at ``t = 0``)."""
    prev = np.asarray(prev_actions, np.int64)
    out = np.full((*prev.shape, n), -1, np.int64)
    for k in range(n):
        out[:, k:, k] = prev[:, : prev.shape[1] - k]
    return out


def trajectory_odometry(positions: np.ndarray, yaws: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(B, T, 3) float32 odometry ``(x, y, dyaw)`` of every valid step in its episode's start frame (zeros
    on padded steps); positions (B, T, 3) metres and yaws (B, T) radians as the batch holds them."""
    positions, yaws = np.asarray(positions), np.asarray(yaws)
    out = np.zeros((*yaws.shape, 3), np.float32)
    for b, n in enumerate(np.asarray(lengths).tolist()):
        if n:
            out[b, :n] = start_frame_odometry(positions[b, :n], yaws[b, :n], positions[b, 0], yaws[b, 0])
    return out


def step_labels(
    actions: np.ndarray,
    prev_actions: np.ndarray,
    positions: np.ndarray,
    yaws: np.ndarray,
    sem: StepSemantics,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of one episode of ``n`` steps (see the module docstring).

    Args:
        actions: (n,) expert labels.
        prev_actions: (n,) the action executed at ``t-1`` (−1 at ``t = 0``), so the action executed at ``j``
            is ``prev_actions[j + 1]``; the last step's executed action is not stored.
        positions: (n, 3) world positions, metres; yaws: (n,) radians.
        sem: units and options.

    Returns:
        (labels (n, horizon, 3) float32 in metres/radians, mask (n, horizon) bool of trained steps).
    """
    actions = np.asarray(actions, np.int64)
    n, h = len(actions), sem.horizon
    j = np.arange(n)[:, None] + np.arange(h)[None, :]  # index of the action producing each step
    inside = j < n
    jc = np.minimum(j, n - 1)
    expert = np.where(inside, actions[jc], STOP)
    deviates = np.zeros(n, bool)
    deviates[:-1] = np.asarray(prev_actions, np.int64)[1:n] != actions[:-1]
    dev = inside & deviates[jc]
    blocked = (np.cumsum(dev, axis=1) - dev) > 0  # an earlier step of the row left the expert's path

    turn = np.where(expert == TURN_LEFT, 1.0, np.where(expert == TURN_RIGHT, -1.0, 0.0))
    heading = (np.cumsum(turn, axis=1) - turn) * sem.turn_angle  # heading before each step, frame of t
    forward = (expert == MOVE_FORWARD) * sem.forward_step
    labels = np.stack([forward * np.cos(heading), forward * np.sin(heading), turn * sem.max_dyaw], axis=-1)
    if not sem.snap:
        moved = inside & (j < n - 1) & ~dev
        labels = np.where(moved[..., None], _pose_steps(positions, yaws, jc), labels)
    valid = inside & ~blocked
    if sem.supervise_after_end and actions[-1] == STOP:
        valid |= ~inside & ~blocked
    return labels.astype(np.float32), valid


def _pose_steps(positions: np.ndarray, yaws: np.ndarray, jc: np.ndarray) -> np.ndarray:
    """(n, H, 3) motion from pose ``jc`` to pose ``jc + 1`` (clamped) in the frame of each row's pose ``t``,
    with the conventions of :func:`envs.nav.geometry.agent_frame_deltas` (x forward, y left, yaw left)."""
    positions = np.asarray(positions, np.float64)
    yaws = np.asarray(yaws, np.float64)
    jn = np.minimum(jc + 1, len(yaws) - 1)
    offset = positions[jn] - positions[jc]  # (n, H, 3) world
    yaw_t = yaws[:, None]
    c, s = np.cos(yaw_t), np.sin(yaw_t)
    dx = -s * offset[..., 0] - c * offset[..., 2]
    dy = -c * offset[..., 0] + s * offset[..., 2]
    dyaw = (yaws[jn] - yaws[jc] + np.pi) % (2 * np.pi) - np.pi
    return np.stack([dx, dy, dyaw], axis=-1)


def batch_labels(
    actions: np.ndarray,
    prev_actions: np.ndarray,
    positions: np.ndarray,
    yaws: np.ndarray,
    lengths: np.ndarray,
    sem: StepSemantics,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`step_labels` of every episode of a padded batch: normalised labels (B, T, H, 3) float32 and
    their mask (B, T, H) bool (False on padded steps)."""
    b, t = np.asarray(actions).shape
    labels = np.zeros((b, t, sem.horizon, 3), np.float32)
    mask = np.zeros((b, t, sem.horizon), bool)
    for i, n in enumerate(np.asarray(lengths).tolist()):
        if n:
            steps, valid = step_labels(
                actions[i, :n], prev_actions[i, :n], positions[i, :n], yaws[i, :n], sem
            )
            labels[i, :n], mask[i, :n] = sem.normalise(steps), valid
    return labels, mask


@dataclass(frozen=True)
class DecodeRules:
    """InternNav's ``parse_action`` for discrete benchmarks (anchors Part A §2.3).

    Attributes:
        n_actions: actions taken from a plan (``len_traj_act``).
        move_threshold: metres; |dx| and |dy| below it make a turn (by the sign of dyaw), else a forward.
        stop_threshold: STOP when the stop-progress prediction exceeds it.
        stop_window: STOP at the first of this many consecutive near-zero steps (|dx|, |dy|, |dyaw| below
            ``move_threshold``) that lie inside the plan.
    """

    n_actions: int = 4
    move_threshold: float = 0.1
    stop_threshold: float = 0.85
    stop_window: int = 3


def decode_plan(steps: np.ndarray, stop_progress: float, rules: DecodeRules) -> list[int]:
    """Discrete actions from one predicted plan.

    Args:
        steps: (H, 3) predicted steps in metres/radians (denormalised).
        stop_progress: the stop-progress prediction at the planning step.
        rules: the decoding rules.

    Returns:
        1 to ``rules.n_actions`` action ids; a STOP is always last.
    """
    steps = np.asarray(steps, np.float64)
    if stop_progress > rules.stop_threshold:
        return [STOP]
    small = np.abs(steps) < rules.move_threshold
    turning = small[:, 0] & small[:, 1]
    near_zero = turning & small[:, 2]
    out: list[int] = []
    for k in range(min(rules.n_actions, len(steps))):
        window = near_zero[k : k + rules.stop_window]
        if len(window) == rules.stop_window and window.all():
            out.append(STOP)
            break
        if turning[k]:
            out.append(TURN_LEFT if steps[k, 2] >= 0 else TURN_RIGHT)
        else:
            out.append(MOVE_FORWARD)
    return out
