"""A template grammar that turns a path through an annotated house into an R2R-style English instruction.

The instruction follows the path room by room (see :mod:`envs.datasets.path_analysis`): an opening that
orients the walker ("Turn around"), the turns of each leg with their side read from the path geometry
(positive yaw change = left, Habitat's convention), objects the path passes ("walk past the green plant on
your left"), each change of room named by type and wall colour ("walk out of the yellow bedroom", "go through
the doorway into the kitchen"), and a stop condition naming the target by colour, category and room ("stop
next to the blue sofa in the living room"). Every step has several phrasings chosen with the caller's
``numpy.random.Generator``, so the same path gives varied instructions across seeds and the same text for the
same generator state.
"""

from __future__ import annotations

import math

import numpy as np

from envs.datasets.path_analysis import (
    Landmark,
    Leg,
    Turn,
    analyse_path,
    arc_lengths,
    floor_xz,
    heading_yaw,
    wrap_angle,
)
from envs.scenes.scene import Instance, Room, Scene

#: The opening turn faces the path's point this far ahead (metres of arc length); earlier turns are absorbed.
OPENING_DISTANCE = 1.0
#: A landmark this close (metres of arc length) to a turn anchors it: "turn left at the red table".
TURN_ANCHOR_DISTANCE = 1.0

_OPENING = {
    "around": ("turn around", "turn around", "turn back around"),
    "left": ("turn left", "turn to your left", "face left"),
    "right": ("turn right", "turn to your right", "face right"),
    "ahead": ("walk forward", "go straight ahead", "head forward"),
}
_TURN = {
    "slight": ("bear {side}", "veer {side}", "go slightly {side}"),
    "normal": ("turn {side}", "take a {side}", "make a {side} turn", "go {side}"),
    "sharp": ("make a sharp {side}", "turn sharply {side}", "turn hard {side}"),
}
_ANCHOR = (" at {lm}", " at {lm}", " after {lm}", " when you reach {lm}")
_PASS = (
    "walk past {lm}",
    "pass {lm}",
    "go by {lm} on your {side}",
    "keep {lm} on your {side}",
    "walk past {lm} on your {side}",
)
_EXIT = ("walk out of {a}", "leave {a}", "exit {a}", "walk out of {a} into {b}", "leave {a} and enter {b}")
_ENTER = ("go through the doorway into {b}", "enter {b}", "walk into {b}", "continue into {b}", "go into {b}")
_CROSS = ("walk through {b}", "cross {b}", "go through {b}", "continue through {b}")
_STOP = (
    "stop next to {t}",
    "wait by {t}",
    "stop in front of {t}",
    "stop when you reach {t}",
    "stop beside {t}",
    "stop near {t}",
)
_STOP_NO_TARGET = ("stop there", "wait there", "stop")
_CONNECT = (" and ", ", then ", " and then ")


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _words(text: str) -> str:
    return text.replace("_", " ").strip()


def describe_room(scene: Scene, room: Room, rng: np.random.Generator) -> str:
    """A definite description of a room: "the kitchen", "the yellow bedroom" or its unique name.

    The wall colour is added when it tells same-type rooms apart, and at random otherwise.
    """
    rtype = _words(room.type)
    same_type = [r for r in scene.rooms if r.type == room.type]
    if len(same_type) <= 1:
        return f"the {room.color} {rtype}" if room.color and rng.random() < 0.5 else f"the {rtype}"
    if room.color and sum(r.color == room.color for r in same_type) == 1:
        return f"the {room.color} {rtype}"
    return f"the {_words(room.name)}"


def object_name(inst: Instance) -> str:
    """Colour and category of an object: "blue sofa" (just the category when it has no colour)."""
    return " ".join(p for p in (inst.color, _words(inst.category)) if p)


def _room_of(scene: Scene, inst: Instance) -> Room | None:
    return scene.rooms[inst.room] if 0 <= inst.room < len(scene.rooms) else None


def describe_target(scene: Scene, target: Instance, rng: np.random.Generator, with_room: bool = True) -> str:
    """A description of the goal object that singles it out when the annotations allow.

    Colour + category ("the blue sofa"), then the room when the scene holds another object of that colour
    and category (always when ``with_room``), then the nearest other object of its room when the room itself
    holds a twin ("the blue sofa next to the red table in the living room").
    """
    twins = [o for o in scene.objects() if object_name(o) == object_name(target) and o.id != target.id]
    text = f"the {object_name(target)}"
    if any(o.room == target.room for o in twins):
        name = object_name(target)
        others = [o for o in scene.objects() if o.room == target.room and object_name(o) != name]
        if others:
            gap = [float(np.linalg.norm((o.position - target.position)[[0, 2]])) for o in others]
            text += f" next to the {object_name(others[int(np.argmin(gap))])}"
    room = _room_of(scene, target)
    if room is not None and (with_room or twins):
        text += f" in {describe_room(scene, room, rng)}"
    return text


def _opening(path, start_yaw: float | None, rng: np.random.Generator) -> str | None:
    """How to face the path's point ``OPENING_DISTANCE`` ahead from the start heading; None when facing it."""
    pts = floor_xz(path)
    if start_yaw is None or len(pts) < 2:
        return None
    s = arc_lengths(pts)
    reach = min(OPENING_DISTANCE, float(s[-1]))
    ahead = np.array([np.interp(reach, s, pts[:, 0]), np.interp(reach, s, pts[:, 1])])
    delta = math.degrees(wrap_angle(heading_yaw(*(ahead - pts[0])) - start_yaw))
    if abs(delta) > 135.0:
        return _pick(rng, _OPENING["around"])
    if abs(delta) > 45.0:
        return _pick(rng, _OPENING["left" if delta > 0 else "right"])
    return None


def _turn_clause(turn: Turn, anchor: Landmark | None, rng: np.random.Generator) -> str:
    deg = abs(math.degrees(turn.angle))
    kind = "slight" if deg < 60.0 else "sharp" if deg > 135.0 else "normal"
    text = _pick(rng, _TURN[kind]).format(side=turn.side)
    if anchor is not None:
        text += _pick(rng, _ANCHOR).format(lm=f"the {object_name(anchor.instance)}")
    return text


def _leg_clauses(leg: Leg, rng: np.random.Generator) -> list[str]:
    """Clauses for the turns of a leg (anchored to nearby landmarks) and at most one other passed landmark."""
    free = list(leg.landmarks)
    events: list[tuple[float, str]] = []
    for turn in leg.turns:
        near = [lm for lm in free if abs(lm.s - turn.s) <= TURN_ANCHOR_DISTANCE]
        anchor = min(near, key=lambda lm: abs(lm.s - turn.s)) if near else None
        if anchor is not None:
            free.remove(anchor)
        events.append((turn.s, _turn_clause(turn, anchor, rng)))
    if free:
        lm = free[int(rng.integers(len(free)))]
        text = _pick(rng, _PASS).format(lm=f"the {object_name(lm.instance)}", side=lm.side)
        events.append((lm.s, text))
    return [text for _, text in sorted(events, key=lambda e: e[0])]


def _transition(scene: Scene, prev: Leg, leg: Leg, first: bool, rng: np.random.Generator) -> str:
    """The clause that takes the walker from ``prev``'s room into ``leg``'s."""
    b = describe_room(scene, leg.room, rng) if leg.room is not None else None
    if b is None:
        return "go through the doorway"
    if first and prev.room is not None:
        return _pick(rng, _EXIT).format(a=describe_room(scene, prev.room, rng), b=b)
    return _pick(rng, _ENTER).format(b=b)


def _sentences(clauses: list[tuple[str, bool]], rng: np.random.Generator) -> str:
    """Group clauses into sentences of at most three, a new one starting before a change of room."""
    groups: list[list[str]] = []
    for text, is_transition in clauses:
        if not groups or len(groups[-1]) >= 3 or (is_transition and len(groups[-1]) >= 2):
            groups.append([])
        groups[-1].append(text)
    out = []
    for group in groups:
        connect = _pick(rng, _CONNECT)
        if " and " in group[-1] or (len(group) > 1 and " and " in group[-2]):
            connect = ", then "
        body = group[0] if len(group) == 1 else ", ".join(group[:-1]) + connect + group[-1]
        out.append(body[0].upper() + body[1:] + ".")
    return " ".join(out)


def generate_instruction(
    scene: Scene,
    path,
    target: Instance | None,
    rng: np.random.Generator,
    start_yaw: float | None = None,
) -> str:
    """Describe a path as an English instruction.

    Args:
        scene: the scene with room and object annotations (a scene without them gives turn-only instructions).
        path: (N, 3) waypoints in metres, world frame, from the start to the goal.
        target: the object to stop by (None: the instruction ends with a bare "stop").
        rng: the source of every template choice; the text is a deterministic function of its state.
        start_yaw: the walker's initial heading in radians (0 along −z, positive left), for the opening turn.

    Returns:
        One or more sentences, e.g. "Turn around and walk out of the yellow bedroom. Go through the doorway
        into the kitchen and stop next to the blue fridge in the kitchen."
    """
    exclude = {target.id} if target is not None else set()
    legs = analyse_path(scene, path, exclude)
    if start_yaw is not None:
        for leg in legs:
            leg.turns = [turn for turn in leg.turns if turn.s >= OPENING_DISTANCE]
    clauses: list[tuple[str, bool]] = []
    opening = _opening(path, start_yaw, rng)
    if opening:
        clauses.append((opening, False))
    for i, leg in enumerate(legs):
        events = _leg_clauses(leg, rng)
        if i > 0:
            middle = 1 < i < len(legs) - 1 and not events and leg.room is not None
            text = _pick(rng, _CROSS).format(b=describe_room(scene, leg.room, rng)) if middle else None
            clauses.append((text or _transition(scene, legs[i - 1], leg, i == 1, rng), True))
        clauses.extend((e, False) for e in events)
    if not clauses:
        clauses.append((_pick(rng, _OPENING["ahead"]), False))
    if target is None:
        stop = _pick(rng, _STOP_NO_TARGET)
    else:
        stop = _pick(rng, _STOP).format(t=describe_target(scene, target, rng))
    clauses.append((stop, False))
    return _sentences(clauses, rng)
