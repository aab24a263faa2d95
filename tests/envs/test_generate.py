"""Episode sampling and dataset generation over real procedural houses and the real simulator."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from envs.datasets.episodes import EpisodeConfig, EpisodeSampler, footprint_distance, sample_vln_episode
from envs.datasets.generate import SPLITS, generate_dataset, main
from envs.datasets.path_analysis import room_legs
from envs.datasets.r2r import load_episodes
from envs.datasets.vocab import MAX_INSTRUCTION_LENGTH, tokenize
from envs.scenes import generate_house, load_scene
from envs.sim import MOVE_FORWARD, STOP, Simulator

ROOT = Path(__file__).resolve().parents[2]
#: Three houses: a training scene (2 train + 1 val_seen episodes), a val_unseen and a test scene (2 each).
ARGS = dict(n_scenes=3, episodes_per_scene=2, seed=5, n_unseen_scenes=2, val_seen_per_scene=1, progress=False)
CLI = ["--n-scenes", "3", "--episodes-per-scene", "2", "--seed", "5", "--unseen-fraction", "0.67"]
CLI += ["--val-seen-per-scene", "1", "--workers", "1", "--no-progress"]


def _same_files(a: Path, b: Path) -> list[str]:
    """Paths whose bytes differ between two trees (or exist in one only)."""
    ta, tb = _tree(a), _tree(b)
    return sorted(k for k in ta.keys() | tb.keys() if ta.get(k) != tb.get(k))


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (work files included, temporary files left out) by relative path."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".tmp")
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "data"
    generate_dataset(out, **ARGS)
    return out


@pytest.fixture(scope="module")
def splits(dataset):
    return {s: load_episodes(dataset / s, scenes_dir=dataset / "scenes") for s in SPLITS}


@pytest.fixture(scope="module")
def sims(dataset):
    return {p.name: Simulator(load_scene(p)) for p in sorted((dataset / "scenes").glob("*.glb"))}


def test_layout_vocabulary_and_scene_ids(dataset, splits):
    assert not list(dataset.rglob("*.tmp"))
    info = json.loads((dataset / "info.json").read_text())
    vocab = splits["train"].vocab
    for split, ds in splits.items():
        assert (dataset / split / f"{split}_gt.json.gz").is_file()
        assert info["splits"][split]["episodes"] == len(ds) > 0
        assert ds.vocab.word_list == vocab.word_list, "one vocabulary shared by every split"
        assert set(ds.gt) == {ep.episode_id for ep in ds}
        for ep in ds:
            assert ep.scene_id.startswith("house_") and ep.scene_id.endswith(".glb")
            assert ds.resolve_scene(ep.scene_id) == dataset / "scenes" / ep.scene_id
            tokens = ep.instruction.instruction_tokens
            assert len(tokens) == MAX_INSTRUCTION_LENGTH
            assert vocab.decode(tokens).split() == [
                w if w in vocab.word_list else "<unk>" for w in tokenize(ep.instruction.instruction_text)
            ]
    assert [len(splits[s]) for s in SPLITS] == [2, 1, 2, 2]


def test_unseen_scenes_stay_out_of_training(splits):
    scenes = {s: {ep.scene_id for ep in ds} for s, ds in splits.items()}
    assert scenes["train"] == scenes["val_seen"]
    assert scenes["val_unseen"] and scenes["test"]
    assert not scenes["val_unseen"] & scenes["test"]
    assert not (scenes["val_unseen"] | scenes["test"]) & scenes["train"]
    pairs = {
        s: {(tuple(ep.start_position), tuple(ep.goal_position)) for ep in ds} for s, ds in splits.items()
    }
    assert not pairs["val_seen"] & pairs["train"], "val_seen holds new episodes of the training scenes"


def test_episodes_are_valid(splits, sims):
    for ds in splits.values():
        for ep in ds:
            sim, start, goal = sims[ep.scene_id], ep.start_position, ep.goal_position
            assert sim.is_navigable(start) and sim.is_navigable(goal)
            d = sim.geodesic_distance(start, goal)
            assert 3.0 <= d <= 15.0 and d == pytest.approx(ep.info["geodesic_distance"], abs=1e-3)
            ref = ep.reference_path
            np.testing.assert_allclose(ref[0], start, atol=1e-6)
            np.testing.assert_allclose(ref[-1], goal, atol=1e-6)
            assert np.linalg.norm(np.diff(ref, axis=0), axis=1).max() <= 2.0 + 1e-6
            assert np.linalg.norm(ep.start_rotation) == pytest.approx(1.0, abs=1e-5)
            assert ep.goals[0].radius == 3.0
            room = sim.scene.room_at(goal[0], goal[2])
            near = [o for o in sim.scene.objects() if footprint_distance(goal[0], goal[2], o) <= 1.0 + 1e-6]
            assert any(o.room == room.id for o in near), "the goal stands by an object of its room"


def test_ground_truth_replays_in_the_simulator(splits, sims):
    for ds in splits.values():
        for ep in ds:
            sim, gt = sims[ep.scene_id], ds.gt[ep.episode_id]
            assert gt.actions[-1] == STOP and STOP not in gt.actions[:-1]
            assert gt.forward_steps == gt.actions.count(MOVE_FORWARD)
            sim.set_agent_state(ep.start_position, ep.start_rotation)
            visited = [sim.get_agent_state().position]
            for action in gt.actions[:-1]:
                sim.step(action)
                if not np.array_equal(sim.get_agent_state().position, visited[-1]):
                    visited.append(sim.get_agent_state().position)
            assert len(visited) == len(gt.locations)
            np.testing.assert_allclose(visited, gt.locations, atol=1e-3)
            assert sim.geodesic_distance(visited[-1], ep.goal_position) < 0.5


def test_sampled_episode_names_its_target():
    scene = generate_house(11)
    sim = Simulator(scene)
    rng = np.random.default_rng(0)
    for k in range(3):
        sampled = sample_vln_episode(sim, scene, rng, episode_id=k, min_geodesic=3.0, max_geodesic=12.0)
        assert sampled is not None
        target, ep = sampled.target, sampled.episode
        text = ep.instruction.instruction_text
        assert f"{target.color} {target.category.replace('_', ' ')}" in text
        assert scene.rooms[target.room].type.replace("_", " ") in text
        assert 3.0 <= ep.info["geodesic_distance"] <= 12.0
        assert len(room_legs(scene, sampled.path)) <= 4
        goal = ep.goal_position
        assert scene.room_at(goal[0], goal[2]) is scene.rooms[target.room]
        assert footprint_distance(goal[0], goal[2], target) <= 1.0 + 1e-6
    again = EpisodeSampler(sim).sample(np.random.default_rng(0), 0)
    first = sample_vln_episode(sim, None, np.random.default_rng(0), episode_id=0)
    assert again.episode == first.episode and again.gt == first.gt


def test_resume_after_losing_a_scene_and_the_splits(dataset, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(dataset, out)
    (out / ".work" / "scene_00001.json.gz").unlink()
    (out / "scenes" / "house_00001.glb").unlink()
    for split in SPLITS:
        shutil.rmtree(out / split)
    generate_dataset(out, **ARGS)
    assert _same_files(out, dataset) == []


def test_interrupted_split_write_leaves_no_partial_file(dataset, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    shutil.copytree(dataset, out)
    for split in SPLITS:
        shutil.rmtree(out / split)
    real_replace = os.replace

    def interrupt_on_val_unseen(src, dst):
        if Path(dst).name.startswith("val_unseen"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupt_on_val_unseen)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(out, **ARGS)
    monkeypatch.undo()
    assert not list(out.rglob("*.tmp"))
    assert not (out / "val_unseen" / "val_unseen.json.gz").exists()
    assert len(load_episodes(out / "train")) == 2
    generate_dataset(out, **ARGS)
    assert _same_files(out, dataset) == []


def test_cli_run_killed_then_rerun_gives_the_same_files(dataset, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "envs.datasets.generate", "--out", str(out), *CLI]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".work" / "scene_00000.json.gz").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the generator wrote no scene in 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "train").exists(), "killed before the split files"
    assert main(["--out", str(out), *CLI]) == 0
    # A house file being written at the kill may leave its temporary file; nothing else may.
    assert not [p for p in out.rglob("*.tmp") if p.parent.name != "scenes"]
    assert _same_files(out, dataset) == []


def test_mismatching_rerun_and_foreign_folder_fail(dataset, tmp_path):
    with pytest.raises(ValueError, match="seed: 5 there, 6 now"):
        generate_dataset(dataset, **{**ARGS, "seed": 6})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no .work/manifest.json"):
        generate_dataset(foreign, **ARGS)
    with pytest.raises(SystemExit, match="error: .*other arguments"):
        main(["--out", str(dataset), *CLI, "--episodes-per-scene", "3"])


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_unseen_scenes"):
        generate_dataset(tmp_path / "x", n_scenes=2, episodes_per_scene=1, n_unseen_scenes=2)
    with pytest.raises(ValueError, match="min_geodesic"):
        EpisodeConfig(min_geodesic=math.inf)
    with pytest.raises(ValueError, match="below max_geodesic"):
        EpisodeConfig(min_geodesic=5.0, max_geodesic=4.0)
