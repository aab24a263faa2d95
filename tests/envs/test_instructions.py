"""The instruction grammar on hand-made scene annotations and hand-made paths."""

import math

import numpy as np
import pytest

from envs.datasets.instructions import describe_target, generate_instruction
from envs.datasets.path_analysis import analyse_path, find_landmarks, find_turns, heading_yaw, room_legs
from envs.datasets.vocab import tokenize
from envs.scenes.scene import Instance, Room, Scene


def _box(x0, z0, x1, z1):
    return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]


@pytest.fixture()
def house() -> Scene:
    """A yellow bedroom and a white hallway side by side, a green living room toward −z of the hallway."""
    rooms = [
        Room(0, "bedroom", "bedroom", "yellow", _box(0, 0, 4, 4)),
        Room(1, "hallway", "hallway", "white", _box(4, 0, 8, 4)),
        Room(2, "living_room", "living room", "green", _box(4, -5, 8, 0)),
        Room(3, "bedroom", "second bedroom", "blue", _box(8, 0, 12, 4)),
    ]
    objects = [
        Instance(1, "sofa", 2, "blue", [6.0, 0.4, -4.0], [2.0, 0.8, 0.9], True),
        Instance(2, "plant", 1, "green", [5.0, 0.5, 3.5], [0.4, 1.0, 0.4], True),
        Instance(3, "bed", 0, "red", [1.0, 0.3, 1.0], [2.0, 0.6, 1.5], True),
        Instance(4, "sofa", 3, "blue", [10.0, 0.4, 2.0], [2.0, 0.8, 0.9], True),
        Instance(5, "wall", 1, "white", [6.0, 1.0, 0.0], [4.0, 2.0, 0.1], False),
    ]
    return Scene([], {o.id: o for o in objects}, rooms, name="hand_made")


#: Bedroom → hallway (along +x) → left turn toward −z → living room, ending by the blue sofa.
PATH = np.array([[1, 0, 3], [3.5, 0, 3], [4.5, 0, 3], [6, 0, 3], [6, 0, -0.5], [6, 0, -3]], float)


def test_heading_convention():
    # Habitat frame: yaw 0 looks along −z, +90° along −x (a left turn).
    assert heading_yaw(0.0, -1.0) == pytest.approx(0.0)
    assert heading_yaw(-1.0, 0.0) == pytest.approx(math.pi / 2)
    assert heading_yaw(1.0, 0.0) == pytest.approx(-math.pi / 2)


def test_turn_sign_follows_geometry():
    ahead_then_left = np.array([[0, 0, 0], [0, 0, -3], [-3, 0, -3]], float)
    ahead_then_right = np.array([[0, 0, 0], [0, 0, -3], [3, 0, -3]], float)
    (left,) = find_turns(ahead_then_left)
    (right,) = find_turns(ahead_then_right)
    assert left.side == "left" and math.degrees(left.angle) == pytest.approx(90.0)
    assert right.side == "right" and math.degrees(right.angle) == pytest.approx(-90.0)
    assert left.s == pytest.approx(3.0)


def test_grid_staircase_is_not_a_turn():
    # A diagonal walked on a 5 cm grid zig-zags; simplification must see one straight line.
    steps = [[0.05 * (k // 2 + k % 2), 0.0, -0.05 * (k // 2)] for k in range(80)]
    assert find_turns(np.array(steps)) == []


def test_left_turn_path_says_left_only():
    empty = Scene([], {}, [], name="empty")
    path = np.array([[0, 0, 0], [0, 0, -3], [-3, 0, -3]], float)
    for seed in range(10):
        words = tokenize(generate_instruction(empty, path, None, np.random.default_rng(seed), start_yaw=0.0))
        assert "left" in words and "right" not in words
    mirrored = path * np.array([-1.0, 1.0, 1.0])
    words = tokenize(generate_instruction(empty, mirrored, None, np.random.default_rng(0), start_yaw=0.0))
    assert "right" in words and "left" not in words


def test_opening_turn_from_start_heading():
    empty = Scene([], {}, [], name="empty")
    path = np.array([[0, 0, 0], [0, 0, -4]], float)
    behind = generate_instruction(empty, path, None, np.random.default_rng(0), start_yaw=math.pi)
    assert "around" in tokenize(behind)
    facing = generate_instruction(empty, path, None, np.random.default_rng(0), start_yaw=0.0)
    assert "around" not in tokenize(facing) and "turn" not in tokenize(facing)


def test_room_legs_and_landmarks(house):
    legs = room_legs(house, PATH)
    assert [leg.room.name for leg in legs] == ["bedroom", "hallway", "living room"]
    assert legs[0].s0 == 0.0 and legs[-1].s1 == pytest.approx(11.0)
    (plant,) = [lm for lm in find_landmarks(house, PATH, exclude={1}) if lm.instance.category == "plant"]
    # Walking along +x, +z is on the right-hand side.
    assert plant.side == "right" and plant.distance == pytest.approx(0.3, abs=1e-4)
    legs = analyse_path(house, PATH, exclude={1})
    assert [t.side for t in legs[1].turns] == ["left"]
    assert all(lm.instance.id != 1 for leg in legs for lm in leg.landmarks)


def test_instruction_names_rooms_turns_and_target(house):
    sofa = house.instances[1]
    texts = {generate_instruction(house, PATH, sofa, np.random.default_rng(s), 0.0) for s in range(12)}
    assert len(texts) >= 6, "templates should vary with the generator"
    for text in texts:
        words = tokenize(text)
        assert text[0].isupper() and text.endswith(".")
        assert "bedroom" in words and "living" in words and "left" in words
        # The target: colour + category + room (a second blue sofa stands in the other bedroom).
        assert "blue sofa in the" in text and "living room." in text
        last = text.rsplit(".", 2)[-2]
        assert "stop" in last or "wait" in last


def test_instruction_is_deterministic(house):
    a = generate_instruction(house, PATH, house.instances[1], np.random.default_rng(7), 0.0)
    b = generate_instruction(house, PATH, house.instances[1], np.random.default_rng(7), 0.0)
    assert a == b


def test_target_description_disambiguates(house):
    rng = np.random.default_rng(0)
    assert describe_target(house, house.instances[3], rng, with_room=False) == "the red bed"
    twin = Instance(6, "sofa", 2, "blue", [4.5, 0.4, -1.0], [2.0, 0.8, 0.9], True)
    chair = Instance(7, "chair", 2, "orange", [6.0, 0.4, -2.5], [0.5, 0.9, 0.5], True)
    house.instances.update({6: twin, 7: chair})
    text = describe_target(house, house.instances[1], rng)
    assert text.startswith("the blue sofa next to the orange chair in the ")
    assert text.endswith("living room")


def test_same_type_rooms_named_apart(house):
    path = np.array([[2, 0, 2], [6, 0, 2], [10, 0, 3]], float)
    text = generate_instruction(house, path, house.instances[4], np.random.default_rng(3), 0.0)
    assert "yellow bedroom" in text and "blue bedroom" in text
