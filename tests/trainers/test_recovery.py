"""On-policy recovery data (``trainers.data.recovery``): which states are picked, and the aggregated store a
NavDP checkpoint's rollouts on a generated System-1 dataset give (resumed after a kill, refused over an
existing store)."""

import json
import math

import numpy as np
import pytest
import torch

from agents import make_agent
from envs.datasets.store import TrajectoryStore
from envs.datasets.system1 import generate_system1
from envs.datasets.system1_work import System1Spec
from envs.datasets.trajectories import GOAL_TOLERANCE
from envs.nav.geometry import yaw_from_quaternion
from envs.sim import Simulator
from trainers.data.recovery import _parser, arguments_record, make_recovery_store, recovery_starts


def test_each_run_of_collisions_gives_the_pose_after_its_first_step():
    collided = [0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    assert recovery_starts(collided, stuck=False, max_starts=5, min_gap=5) == [2, 15]
    # lead: the poses before them, where the policy drove in (never before the reset).
    assert recovery_starts(collided, stuck=False, max_starts=5, min_gap=5, lead=3) == [0, 12]


def test_candidates_closer_than_the_gap_are_skipped_and_a_stuck_end_is_added():
    collided = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert recovery_starts(collided, stuck=False, max_starts=5, min_gap=2) == [1, 3]
    assert recovery_starts(collided, stuck=False, max_starts=5, min_gap=3) == [1]
    assert recovery_starts(collided, stuck=True, max_starts=5, min_gap=3) == [1, 12]
    assert recovery_starts([0, 0, 0], stuck=True, max_starts=5, min_gap=4) == [3]
    assert recovery_starts([0, 0, 0], stuck=False, max_starts=5, min_gap=1) == []


def test_too_many_candidates_are_thinned_evenly_keeping_the_first_and_last():
    collided = [1, 0] * 11  # candidates 1, 3, ..., 21
    assert recovery_starts(collided, stuck=False, max_starts=3, min_gap=1) == [1, 11, 21]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("s1")
    spec = System1Spec(1, 1, 0, 3, n_eval_scenes=1, eval_episodes_per_scene=1, near_obstacle_starts=0.5)
    generate_system1(out, spec, progress=False)
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained small NavDP (it drives into things, which is what the module looks for)."""
    torch.manual_seed(0)
    agent = make_agent(
        "navdp", {"image_size": 32, "patch_size": 8, "vit_dim": 32, "vit_layers": 1, "vit_heads": 2,
                  "compress_layers": 1, "compress_heads": 2, "queries_per_frame": 2, "token_dim": 32,
                  "decoder_layers": 1, "decoder_heads": 2, "decoder_ffn": 64, "num_samples": 4},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("navdp") / "agent"
    agent.save(out)
    return out


def _args(data, checkpoint, out, *extra):
    return _parser().parse_args(
        ["--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out), "--max-starts", "2",
         "--min-gap", "3", "--no-progress", *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def made(data, checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("recovery") / "store"
    return out, make_recovery_store(_args(data, checkpoint, out))


def test_the_store_holds_the_base_episodes_and_expert_drives_from_the_policys_collisions(data, made):
    out, summary = made
    store = TrajectoryStore(out, readonly=True)
    base = TrajectoryStore(data / "trajectories", readonly=True)
    rounds = [store.meta(i)["round"] for i in range(len(store))]
    assert rounds.count(0) == len(base) == summary["base_episodes"] == 6
    assert rounds.count(1) == summary["recovery_episodes"] >= 1
    assert not (out.parent / "store.work").exists()
    rollouts = {
        r["episode_id"]: r for r in map(json.loads, (out / "rollouts.jsonl").read_text().splitlines())
    }
    assert sorted(rollouts, key=int) == [str(i) for i in range(6)] and summary["rollouts"] == 6
    recovered = [store.get(i, frames=False) for i in range(len(store)) if rounds[i] == 1]
    sims = {}
    for ep in recovered:
        record, t = rollouts[ep.extras["recovery_of"]], ep.extras["recovery_step"]
        assert ep.episode_id == f"{ep.extras['recovery_of']}-{t}" and ep.scene_id == record["scene_id"]
        # It starts where the policy was, facing where it faced ...
        assert np.allclose(ep.positions[0], record["positions"][t], atol=1e-3)
        assert math.isclose(yaw_from_quaternion(ep.rotations[0]), record["yaws"][t], abs_tol=1e-3)
        # ... at a pose after a colliding step (or the stuck end), and drives to the goal on navigable ground.
        assert record["collided"][t - 1] or (
            t == len(record["collided"]) and record["termination"] == "stuck"
        )
        goal = np.asarray(ep.extras["goal_position"])
        assert math.hypot(*(ep.positions[-1] - goal)[[0, 2]]) <= GOAL_TOLERANCE
        sim = sims.setdefault(ep.scene_id, Simulator(data / "scenes" / ep.scene_id))
        assert sim.grid.navigable_xz(ep.positions[:, 0].astype(float), ep.positions[:, 2].astype(float)).all()
        assert ep.labels.shape == (len(ep.positions), 74) and np.isfinite(ep.labels).all()
    for sim in sims.values():
        sim.close()


def _rollouts(store) -> list[dict]:
    """The rollout records without the measured plan latency (a timing)."""
    records = [json.loads(line) for line in (store / "rollouts.jsonl").read_text().splitlines()]
    for r in records:
        del r["metrics"]["plan_latency"]
    return records


def test_a_killed_run_resumes_to_the_same_store_and_an_existing_store_is_refused(
    data, checkpoint, made, tmp_path
):
    out, summary = made
    with pytest.raises(FileExistsError, match="exists"):
        make_recovery_store(_args(data, checkpoint, out))
    # A kill after two episodes, in the middle of writing the third line.
    again = tmp_path / "store"
    work = tmp_path / "store.work"
    work.mkdir()
    lines = (out / "rollouts.jsonl").read_text().splitlines(keepends=True)
    (work / "rollouts.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    (work / "args.json").write_text(json.dumps(arguments_record(_args(data, checkpoint, again))))
    resumed = make_recovery_store(_args(data, checkpoint, again))
    assert _rollouts(again) == _rollouts(out)
    assert {k: v for k, v in resumed.items() if k != "out"} == {
        k: v for k, v in summary.items() if k != "out"
    }
    with pytest.raises(ValueError, match="other arguments"):
        (tmp_path / "third.work").mkdir()
        (tmp_path / "third.work" / "args.json").write_text(json.dumps({"seed": 5}))
        make_recovery_store(_args(data, checkpoint, tmp_path / "third"))


def test_a_round_on_a_recovery_store_is_the_next_round(data, checkpoint, made, tmp_path):
    out, summary = made
    second = make_recovery_store(
        _args(data, checkpoint, tmp_path / "second", "--store", str(out), "--episodes", "2")
    )
    store = TrajectoryStore(tmp_path / "second", readonly=True)
    assert summary["round"] == 1 and second["round"] == 2
    assert second["base_episodes"] == 6 + summary["recovery_episodes"] and store.rounds()[0] == 0
    assert [store.meta(i)["round"] for i in range(len(store))].count(2) == second["recovery_episodes"]


def test_bad_inputs_fail_before_anything_is_written(data, checkpoint, tiny_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="info.json not found"):
        make_recovery_store(_args(tmp_path / "none", checkpoint, tmp_path / "a"))
    with pytest.raises(ValueError, match="is not a System-1 dataset's"):
        make_recovery_store(_args(tiny_dataset, checkpoint, tmp_path / "b"))  # a VLN dataset
    with pytest.raises(FileNotFoundError):
        make_recovery_store(_args(data, tmp_path / "no-checkpoint", tmp_path / "c"))
    assert not list(tmp_path.iterdir())
