"""System 2's answers: parsing, turn arrows, out-of-image pixel goals and the accuracy metrics, by hand."""

import math
from dataclasses import dataclass

import numpy as np
import pytest

from agents.base import Agent
from agents.contract import CameraRequest, SampleSpec
from envs.tasks.pixel_goal import (
    check_pixel,
    parse_answer,
    pixel_answer,
    pixel_goal_metrics,
    turn_answer,
    turn_arrows,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 34", ("pixel", (12, 34))),
        (" 7, 250\n", ("pixel", (7, 250))),
        ("(3, 4) then 5", ("pixel", (3, 4))),
        ("STOP", ("stop", None)),
        ("stop.", ("stop", None)),
        ("←←", ("turn", [2, 2])),
        ("→ → →", ("turn", [3, 3, 3])),
        ("←→", ("turn", [2, 3])),
        ("12", ("invalid", "12")),
        ("-3 4", ("invalid", "-3 4")),
        ("", ("invalid", "")),
        ("↓", ("invalid", "↓")),
        ("go left ←", ("invalid", "go left ←")),
        ("stopped", ("invalid", "stopped")),
    ],
)
def test_parse_answer(text, expected):
    assert parse_answer(text) == expected


def test_answers_and_arrows():
    assert pixel_answer(np.int64(5), 17) == "5 17" and parse_answer(pixel_answer(5, 17)) == ("pixel", (5, 17))
    assert turn_arrows([2, 2, 2, 2, 2, 1]) == [2, 2, 2, 2]  # at most 4
    assert turn_arrows([3, 3, 1, 3]) == [3, 3]  # until the first forward
    assert turn_arrows([1, 2]) == [] and turn_arrows([0]) == [] and turn_arrows([2, 2], max_arrows=1) == [2]
    assert turn_answer([2, 3, 3]) == "←→→"


def test_a_pixel_outside_the_image_is_an_error_naming_episode_step_and_pixel():
    assert check_pixel((0, 63), 48, 64, "x") == (0, 63)
    with pytest.raises(ValueError, match=r"episode 'ep7' step 12: pixel goal \(row 48, col 3\).*48x64"):
        check_pixel((48, 3), 48, 64, "episode 'ep7' step 12")
    with pytest.raises(ValueError, match="row -1"):
        check_pixel((-1, 3), 48, 64, "x")


def test_metrics_on_fixed_strings():
    size = {"image_size": (60, 80)}  # diagonal 100 px: within 5 px counts
    samples = [
        {"kind": "pixel", "answer": "10 10", "pixel": np.array([10, 10]), **size},
        {"kind": "pixel", "answer": "20 20", "pixel": np.array([20, 20]), **size},
        {"kind": "pixel", "answer": "30 30", "pixel": np.array([30, 30]), **size},
        {"kind": "pixel", "answer": "40 40", "pixel": np.array([40, 40]), "lookdown": np.zeros((60, 80, 3))},
        {"kind": "turn", "answer": "←←", "pixel": np.array([-1, -1]), **size},
        {"kind": "turn", "answer": "→", "pixel": np.array([-1, -1]), **size},
        {"kind": "stop", "answer": "STOP", "pixel": np.array([-1, -1]), **size},
        {"kind": "stop", "answer": "STOP", "pixel": np.array([-1, -1]), **size},
    ]
    predictions = ["13 14", "20 26", "STOP", "40 40", "←←", "←", "STOP", "garbage"]
    m = pixel_goal_metrics(predictions, samples)
    assert m["pixel/median_error_px"] == pytest.approx(5.0)  # errors 5, 6, 0 -> median 5
    assert m["pixel/within_5pct"] == pytest.approx(2 / 4)  # 5 and 0 px; 6 px and STOP miss
    assert m["pixel/answered"] == pytest.approx(3 / 4)
    assert m["turn/accuracy"] == pytest.approx(1 / 2) and m["stop/accuracy"] == pytest.approx(1 / 2)
    assert m["kind/accuracy"] == pytest.approx(6 / 8) and m["invalid"] == 1
    assert m["stop/false_rate"] == pytest.approx(1 / 6)  # the third pixel query answered STOP
    assert (m["n_pixel"], m["n_turn"], m["n_stop"]) == (4, 2, 2)
    empty = pixel_goal_metrics(["STOP"], [samples[-1]])
    assert math.isnan(empty["pixel/median_error_px"]) and math.isnan(empty["turn/accuracy"])
    with pytest.raises(ValueError, match="2 predictions for 1 samples"):
        pixel_goal_metrics(["a", "b"], [samples[0]])


@dataclass
class _NoLookdownConfig:
    name: str = "no_lookdown"


@dataclass
class _WithLookdownConfig:
    name: str = "with_lookdown"


def test_a_pixel_goal_agent_must_declare_its_lookdown_camera():
    with pytest.raises(TypeError, match="look-down camera of sample kind 'pixel_goal'.*'lookdown'"):

        class NoLookdown(Agent):
            name = "no_lookdown"
            config_class = _NoLookdownConfig
            sample = SampleSpec(kind="pixel_goal")

    class WithLookdown(Agent):
        name = "with_lookdown"
        config_class = _WithLookdownConfig
        cameras = (CameraRequest(), CameraRequest("down", pitch=-30.0))
        sample = SampleSpec(kind="pixel_goal", lookdown="down")

    assert WithLookdown.sample.history == 8 and WithLookdown.sample.sample_every == 4
