"""Dataset identity: the digest is stable across generations, changes with one episode, and is cached."""

import json
import shutil

from envs.datasets.digest import (
    compute_digest,
    dataset_digest,
    dataset_identity,
    dataset_root,
    read_dataset_identity,
    read_dataset_record,
    write_dataset_record,
)
from envs.datasets.generate import generate_dataset
from envs.datasets.r2r import load_episodes, save_episodes
from envs.datasets.scene_work import FORMAT_VERSION

#: The arguments of conftest's ``tiny_dataset``.
TINY = dict(n_scenes=4, episodes_per_scene=2, seed=0, n_unseen_scenes=2, val_seen_per_scene=1, progress=False)


def _change_one_episode(root):
    split = load_episodes(root / "val_unseen")
    split.episodes[0].instruction.instruction_text += " then wait"
    save_episodes(split, root, "val_unseen")


def test_digest_is_stable_across_two_generations_and_recorded(tiny_dataset, tmp_path):
    again = tmp_path / "again"
    generate_dataset(again, **TINY)
    info = json.loads((tiny_dataset / "info.json").read_text())
    assert info["digest"].startswith("sha256:") and len(info["digest"]) == len("sha256:") + 64
    assert info["format_version"] == FORMAT_VERSION
    assert (again / "info.json").read_bytes() == (tiny_dataset / "info.json").read_bytes()
    assert dataset_digest(again) == dataset_digest(tiny_dataset) == info["digest"]
    assert compute_digest(again) == info["digest"]
    assert read_dataset_identity(again) == {"digest": info["digest"], "format_version": FORMAT_VERSION}


def test_digest_changes_when_one_episode_changes(tiny_dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)  # copy2 keeps the times: the record still holds
    original = dataset_digest(tiny_dataset)
    assert dataset_identity(copy)["source"] == "info.json" and dataset_digest(copy) == original
    (copy / ".work" / "notes.txt").write_text("scratch files are not data")
    assert read_dataset_identity(copy) is not None and compute_digest(copy) == original
    _change_one_episode(copy)
    assert read_dataset_identity(copy) is None  # the episode file is newer than info.json
    identity = dataset_identity(copy)
    assert identity["source"] == "computed" and identity["format_version"] == FORMAT_VERSION
    assert identity["digest"] == compute_digest(copy) != original


def test_any_folder_has_a_digest_and_a_root(tiny_dataset, tmp_path):
    split = tmp_path / "episodes_only"
    shutil.copytree(tiny_dataset / "val_unseen", split)
    identity = dataset_identity(split)
    assert identity["source"] == "computed" and identity["format_version"] is None
    assert identity["digest"] == dataset_digest(split) == compute_digest(split)
    source = load_episodes(tiny_dataset / "val_unseen").source
    assert dataset_root(source) == dataset_root(tiny_dataset / "val_unseen") == tiny_dataset
    assert dataset_root(tmp_path / "loose.json.gz") == tmp_path


def test_run_record_keeps_the_digests_of_earlier_data(tiny_dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    _change_one_episode(other)
    run = tmp_path / "run"
    run.mkdir()
    first = write_dataset_record(run, tiny_dataset)
    assert read_dataset_record(run) == first and first["digest"] == dataset_digest(tiny_dataset)
    second = write_dataset_record(run, other)
    assert second["digest"] == dataset_digest(other) and second["previous"] == [first["digest"]]
