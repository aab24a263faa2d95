"""Geometry of a reference path through an annotated scene: the rooms it crosses, its turns, what it passes.

All positions are in Habitat's world frame (y up, metres); only the floor-plane coordinates ``(x, z)`` matter
here. Headings are yaws about +y: yaw 0 looks along −z and a positive change of yaw is a turn to the LEFT, so
the direction of travel ``(dx, dz)`` has yaw ``atan2(-dx, -dz)`` and its left-hand side is ``(dz, -dx)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from envs.scenes.scene import Instance, Room, Scene

#: Heading changes smaller than this (degrees) are not reported as turns.
MIN_TURN_DEG = 35.0
#: Tolerance (metres) of the polyline simplification that removes the staircase of grid paths.
SIMPLIFY_TOLERANCE = 0.3
#: An object whose footprint comes this close (metres) to the path is a landmark the path passes.
LANDMARK_DISTANCE = 1.0
#: A stretch in one room shorter than this (metres) is doorway jitter, not a visit.
MIN_ROOM_RUN = 0.4
#: Spacing (metres) of the dense resampling used for room and landmark queries.
SAMPLE_SPACING = 0.1


@dataclass(frozen=True)
class Turn:
    """A change of heading at arc length ``s`` (metres from the start); ``angle`` radians, positive = left."""

    s: float
    angle: float

    @property
    def side(self) -> str:
        """ "left" or "right"."""
        return "left" if self.angle > 0 else "right"


@dataclass(frozen=True)
class Landmark:
    """An object the path passes: closest approach at arc length ``s``, on the walker's ``side``."""

    s: float
    instance: Instance
    side: str
    distance: float


@dataclass
class Leg:
    """A stretch of the path inside one room (``room`` None outside all rooms), arc lengths [s0, s1] in m."""

    room: Room | None
    s0: float
    s1: float
    turns: list[Turn] = field(default_factory=list)
    landmarks: list[Landmark] = field(default_factory=list)


def heading_yaw(dx: float, dz: float) -> float:
    """Yaw (radians) of travel along ``(dx, dz)`` in the floor plane: 0 along −z, +π/2 along −x."""
    return math.atan2(-dx, -dz)


def wrap_angle(angle: float) -> float:
    """Wrap an angle in radians to [−π, π)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def floor_xz(path) -> np.ndarray:
    """(N, 2) float64 ``(x, z)`` of a (N, 3) path, with consecutive duplicates removed."""
    pts = np.asarray(path, dtype=np.float64).reshape(-1, 3)[:, [0, 2]]
    if len(pts) < 2:
        return pts
    keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6])
    return pts[keep]


def arc_lengths(pts: np.ndarray) -> np.ndarray:
    """(N,) cumulative length in metres along an (N, 2) polyline, starting at 0."""
    if len(pts) == 0:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])


def resample(pts: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing`` metres along an (N, 2) polyline (ends included) and their arc lengths."""
    s = arc_lengths(pts)
    if len(pts) < 2 or s[-1] == 0.0:
        return pts[:1].copy(), np.zeros(min(len(pts), 1))
    n = max(int(math.ceil(s[-1] / spacing)), 1)
    t = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1), t


def simplify(pts: np.ndarray, tolerance: float = SIMPLIFY_TOLERANCE) -> np.ndarray:
    """Indices of the vertices kept by Ramer–Douglas–Peucker simplification of an (N, 2) polyline."""
    keep = np.zeros(len(pts), bool)
    if len(pts) == 0:
        return np.zeros(0, int)
    keep[[0, -1]] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = pts[i], pts[j]
        ab = b - a
        rel = pts[i + 1 : j] - a
        norm = np.linalg.norm(ab)
        if norm < 1e-9:
            dist = np.linalg.norm(rel, axis=1)
        else:
            dist = np.abs(ab[0] * rel[:, 1] - ab[1] * rel[:, 0]) / norm
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return np.flatnonzero(keep)


def find_turns(path, min_turn_deg: float = MIN_TURN_DEG, tolerance: float = SIMPLIFY_TOLERANCE) -> list[Turn]:
    """Turns of a path: heading changes of at least ``min_turn_deg`` at the corners of its simplified line.

    Args:
        path: (N, 3) waypoints in metres (world frame).
        min_turn_deg: smallest reported heading change in degrees.
        tolerance: simplification tolerance in metres.

    Returns:
        Turns in path order; ``angle`` is the signed heading change (positive = left), ``s`` the corner's arc
        length.
    """
    pts = floor_xz(path)
    if len(pts) < 3:
        return []
    idx = simplify(pts, tolerance)
    corners, s = pts[idx], arc_lengths(pts)[idx]
    seg = np.diff(corners, axis=0)
    yaws = [heading_yaw(dx, dz) for dx, dz in seg]
    turns = []
    for k in range(1, len(yaws)):
        delta = wrap_angle(yaws[k] - yaws[k - 1])
        if abs(math.degrees(delta)) >= min_turn_deg:
            turns.append(Turn(float(s[k]), float(delta)))
    return turns


def room_legs(scene: Scene, path, min_run: float = MIN_ROOM_RUN) -> list[Leg]:
    """Split a path into the consecutive rooms it crosses (runs shorter than ``min_run`` m are merged away).

    Points outside every room (doorway gaps) count for the room before them. Without room annotations the
    whole path is one leg with ``room`` None.
    """
    dense, s = resample(floor_xz(path), SAMPLE_SPACING)
    if len(dense) == 0:
        return [Leg(None, 0.0, 0.0)]
    labels, last = [], None
    for x, z in dense:
        room = scene.room_at(float(x), float(z))
        last = room if room is not None else last
        labels.append(last)
    runs: list[Leg] = []
    for k, room in enumerate(labels):
        if runs and runs[-1].room is room:
            runs[-1].s1 = float(s[k])
        else:
            runs.append(Leg(room, float(s[k]), float(s[k])))
    return _merge_short_runs(runs, min_run)


def _merge_short_runs(runs: list[Leg], min_run: float) -> list[Leg]:
    """Fold runs shorter than ``min_run`` (but the last) and repeats of the same room into the run before."""
    kept: list[Leg] = []
    for run in runs:
        short = run.s1 - run.s0 < min_run and run is not runs[-1]
        if kept and (short or run.room is kept[-1].room):
            kept[-1].s1 = run.s1
        else:
            kept.append(Leg(run.room, run.s0, run.s1))
    return kept


def _footprint_distance(points: np.ndarray, inst: Instance) -> np.ndarray:
    """(N,) distance in metres from (N, 2) floor points to an object's bounding-box footprint."""
    centre = inst.position[[0, 2]].astype(np.float64)
    half = inst.size[[0, 2]].astype(np.float64) / 2.0
    outside = np.maximum(np.abs(points - centre) - half, 0.0)
    return np.linalg.norm(outside, axis=1)


def find_landmarks(
    scene: Scene,
    path,
    exclude: set[int] = frozenset(),
    max_distance: float = LANDMARK_DISTANCE,
    legs: list[Leg] | None = None,
) -> list[Landmark]:
    """Objects whose footprint the path passes within ``max_distance`` metres, ordered by closest approach.

    Args:
        scene: the annotated scene.
        path: (N, 3) waypoints in metres.
        exclude: semantic ids to leave out (the target).
        max_distance: metres.
        legs: the path's room legs; when given, an object of a room counts only where the path is in that room
            (an object behind a wall is not passed).

    Returns:
        list of :class:`Landmark`; ``side`` is where the object lies relative to the direction of travel.
    """
    dense, s = resample(floor_xz(path), SAMPLE_SPACING)
    if len(dense) < 2:
        return []
    tangent = np.gradient(dense, axis=0)
    out = []
    for inst in scene.objects():
        if inst.id in exclude:
            continue
        dist = _footprint_distance(dense, inst)
        dist[~_points_in_room(scene, inst, s, legs)] = np.inf
        k = int(np.argmin(dist))
        if dist[k] > max_distance:
            continue
        rel = inst.position[[0, 2]] - dense[k]
        left = tangent[k, 1] * rel[0] - tangent[k, 0] * rel[1]
        out.append(Landmark(float(s[k]), inst, "left" if left > 0 else "right", float(dist[k])))
    return sorted(out, key=lambda lm: (lm.s, lm.instance.id))


def _points_in_room(scene: Scene, inst: Instance, s: np.ndarray, legs: list[Leg] | None) -> np.ndarray:
    """Which arc lengths ``s`` lie on legs in the object's room (all of them without legs or a room)."""
    if legs is None or not 0 <= inst.room < len(scene.rooms):
        return np.ones(len(s), bool)
    room = scene.rooms[inst.room]
    mask = np.zeros(len(s), bool)
    for leg in legs:
        if leg.room is room:
            mask |= (s >= leg.s0 - 1e-9) & (s <= leg.s1 + 1e-9)
    return mask


def analyse_path(scene: Scene, path, exclude: set[int] = frozenset()) -> list[Leg]:
    """Room legs of a path with their turns and passed landmarks (objects of the leg's room) attached."""
    legs = room_legs(scene, path)
    for turn in find_turns(path):
        _leg_at(legs, turn.s).turns.append(turn)
    for lm in find_landmarks(scene, path, exclude, legs=legs):
        _leg_at(legs, lm.s).landmarks.append(lm)
    return legs


def _leg_at(legs: list[Leg], s: float) -> Leg:
    for leg in legs:
        if s <= leg.s1:
            return leg
    return legs[-1]
