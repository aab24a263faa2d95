"""R2R-CE episode files: round trips, the real file format, and the error messages for bad files."""

import copy
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from envs.datasets.r2r import (
    EpisodeFormatError,
    Goal,
    GroundTruthPath,
    Instruction,
    R2RDataset,
    VLNEpisode,
    load_episodes,
    load_gt,
    save_episodes,
    split_path,
)
from envs.datasets.vocab import MAX_INSTRUCTION_LENGTH, Vocabulary

TEXTS = [
    "Walk past the sofa and stop at the kitchen's door.",
    "Turn left, go up the stairs and wait by the plant!",
]
VOCAB = Vocabulary.build(TEXTS)
# a rotation of -147.5 degrees about +y: [0, sin(a/2), 0, cos(a/2)]
ROTATION = [0.0, math.sin(math.radians(-147.5) / 2), 0.0, math.cos(math.radians(-147.5) / 2)]


def _episode(i: int) -> VLNEpisode:
    return VLNEpisode(
        episode_id=i,
        trajectory_id=100 + i // 2,
        scene_id="mp3d/17DRP5sb8fy/17DRP5sb8fy.glb",
        start_position=[1.5 * i, 0.17, -2.25],
        start_rotation=ROTATION,
        goals=[Goal([1.5 * i + 4.0, 0.17, -6.0])],
        reference_path=[[1.5 * i, 0.17, -2.25], [1.5 * i + 2.0, 0.17, -4.0], [1.5 * i + 4.0, 0.17, -6.0]],
        instruction=Instruction(TEXTS[i % 2], VOCAB.encode(TEXTS[i % 2])),
        info={"geodesic_distance": 5.3151},
    )


def _dataset() -> R2RDataset:
    episodes = [_episode(i) for i in range(3)]
    gt = {
        ep.episode_id: GroundTruthPath(
            locations=np.linspace(ep.start_position, ep.goal_position, 6),
            actions=[1, 1, 2, 1, 1, 0],
            forward_steps=4,
        )
        for ep in episodes
    }
    return R2RDataset(episodes, VOCAB, gt)


def _real_format_file() -> dict:
    """An episode file shaped like the published R2R_VLNCE_v1-3 ones: int ids, 200 tokens, unknown keys."""
    text = "Exit the bedroom, turn right and stop next to the couch."
    vocab = Vocabulary.build([text]).to_dict()
    vocab["glove_version"] = "6B.50d"  # a key our Vocabulary does not produce
    tokens = Vocabulary(vocab["word_list"]).encode(text)
    episode = {
        "episode_id": 17,
        "trajectory_id": 4332,
        "scene_id": "mp3d/zsNo4HB9uLZ/zsNo4HB9uLZ.glb",
        "start_position": [-4.862070083618164, 0.1528550386428833, 3.7612500190734863],
        "start_rotation": [0, 0.9612616959383189, 0, -0.27563735581699916],
        "info": {"geodesic_distance": 9.892457008361816, "annotator": "a7"},
        "goals": [{"position": [2.3178000450134277, 0.1528550386428833, -1.2048300504684448], "radius": 3.0}],
        "reference_path": [
            [-4.862070083618164, 0.1528550386428833, 3.7612500190734863],
            [-1.0319199562072754, 0.1528550386428833, 1.2000000476837158],
            [2.3178000450134277, 0.1528550386428833, -1.2048300504684448],
        ],
        "instruction": {"instruction_text": text, "instruction_tokens": tokens},
        "original_path_id": 7,
    }
    return {"episodes": [episode], "instruction_vocab": vocab, "dataset_version": "v1-3"}


def _write_raw(path: Path, data, compress: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def test_round_trip_is_identical(tmp_path):
    dataset = _dataset()
    path = save_episodes(dataset, tmp_path, "train")
    assert path == tmp_path / "train" / "train.json.gz"
    assert (tmp_path / "train" / "train_gt.json.gz").is_file()
    loaded = load_episodes(path)
    assert loaded.episodes == dataset.episodes
    assert loaded.gt == dataset.gt
    assert loaded.vocab.word_list == VOCAB.word_list
    first = loaded.episodes[0]
    assert first.episode_id == "0" and first.trajectory_id == "100"
    np.testing.assert_array_equal(first.start_rotation, ROTATION)  # floats survive bit for bit
    assert first.reference_path.shape == (3, 3) and first.reference_path.dtype == np.float64
    assert len(first.instruction.instruction_tokens) == MAX_INSTRUCTION_LENGTH
    assert first.instruction.instruction_tokens == VOCAB.encode(TEXTS[0])
    np.testing.assert_array_equal(loaded.reference_locations(first), dataset.gt["0"].locations)


def test_writes_are_deterministic_and_leave_no_temporary_files(tmp_path):
    save_episodes(_dataset(), tmp_path / "a", "val_seen")
    save_episodes(load_episodes(tmp_path / "a" / "val_seen"), tmp_path / "b", "val_seen")
    for name in ("val_seen.json.gz", "val_seen_gt.json.gz"):
        assert (tmp_path / "a" / "val_seen" / name).read_bytes() == (
            tmp_path / "b" / "val_seen" / name
        ).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a" / "val_seen").iterdir()) == [
        "val_seen.json.gz",
        "val_seen_gt.json.gz",
    ]


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = save_episodes(_dataset(), tmp_path, "train")
    before = path.read_bytes()
    broken = _dataset()
    broken.episodes[0].info["not_json"] = object()
    with pytest.raises(TypeError):
        save_episodes(broken, tmp_path, "train")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.json.gz", "train_gt.json.gz"]


def test_real_format_file_loads_and_keeps_unknown_keys(tmp_path):
    original = _real_format_file()
    path = _write_raw(tmp_path / "val_unseen" / "val_unseen.json.gz", original)
    dataset = load_episodes(path)
    assert dataset.gt is None and len(dataset) == 1
    ep = dataset.episodes[0]
    assert (ep.episode_id, ep.trajectory_id) == ("17", "4332")
    assert len(ep.instruction.instruction_tokens) == 200
    assert ep.goals[0].radius == 3.0 and ep.info["geodesic_distance"] == pytest.approx(9.892457)
    assert ep.extra == {"original_path_id": 7}
    np.testing.assert_array_equal(ep.goal_position, original["episodes"][0]["goals"][0]["position"])

    out = save_episodes(dataset, tmp_path / "copy", "val_unseen")
    written = json.loads(gzip.decompress(out.read_bytes()))
    expected = copy.deepcopy(original)
    expected["episodes"][0]["episode_id"] = "17"  # ids are written as strings, as VLN-CE reads them
    expected["episodes"][0]["trajectory_id"] = "4332"
    expected["episodes"][0]["start_rotation"] = [0.0, 0.9612616959383189, 0.0, -0.27563735581699916]
    assert written == expected
    assert not (out.parent / "val_unseen_gt.json.gz").exists()


def test_plain_json_split_folder_and_gt_beside_it(tmp_path):
    folder = tmp_path / "val_unseen"
    _write_raw(folder / "val_unseen.json", _real_format_file(), compress=False)
    gt = {"17": {"locations": [[0, 0, 0], [0, 0, -0.25]], "actions": [1, 0], "forward_steps": 1, "note": "x"}}
    _write_raw(folder / "val_unseen_gt.json.gz", gt)
    dataset = load_episodes(folder / "val_unseen.json")
    assert dataset.gt["17"].forward_steps == 1 and dataset.gt["17"].extra == {"note": "x"}
    np.testing.assert_array_equal(
        dataset.reference_locations(dataset.episodes[0]), [[0, 0, 0], [0, 0, -0.25]]
    )
    assert load_gt(folder / "val_unseen_gt.json.gz")["17"].to_dict() == {
        **gt["17"],
        "locations": [[0.0] * 3, [0.0, 0.0, -0.25]],
    }
    # a folder {root}/{split} resolves to {split}.json.gz inside it
    save_episodes(dataset, tmp_path / "gz", "val_unseen")
    assert load_episodes(tmp_path / "gz" / "val_unseen").gt == dataset.gt


def test_resolve_scene_against_scenes_dir(tmp_path, habitat_scenes):
    path = save_episodes(_dataset(), tmp_path, "train")
    dataset = load_episodes(path, scenes_dir=habitat_scenes)
    assert dataset.resolve_scene("simple_room.glb") == habitat_scenes / "simple_room.glb"
    assert (
        dataset.resolve_scene(str(habitat_scenes / "simple_room.glb")) == habitat_scenes / "simple_room.glb"
    )
    with pytest.raises(FileNotFoundError, match=r"mp3d/17DRP5sb8fy/17DRP5sb8fy\.glb"):
        dataset.resolve_scene(dataset.episodes[0].scene_id)


def test_missing_file_names_the_path_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_episodes(split_path(tmp_path, "val_unseen"))
    assert "val_unseen/val_unseen.json.gz" in str(err.value)
    assert "{root}/{split}/{split}.json.gz" in str(err.value)
    with pytest.raises(FileNotFoundError, match="ground-truth"):
        load_episodes(save_episodes(_dataset(), tmp_path, "t"), gt_path=tmp_path / "nope_gt.json.gz")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
        (gzip.compress(b'{"episodes": [')[:-6], "corrupt gzip"),  # truncated stream
        (gzip.compress(b'{"episodes": [}'), "not valid JSON"),
        (b'{"episodes": []}', "not a gzip file"),
        (gzip.compress(b'{"episode": []}'), "'episodes' list"),
    ],
)
def test_corrupt_files_raise_format_errors_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "val_unseen" / "val_unseen.json.gz"
    path.parent.mkdir()
    path.write_bytes(payload)
    with pytest.raises(EpisodeFormatError, match=message) as err:
        load_episodes(path)
    assert str(path) in str(err.value)


def _set(key, value):
    def mutate(ep):
        ep[key] = value

    return mutate


def _drop(key):
    return lambda ep: ep.pop(key)


BAD_EPISODES = [
    (
        _set("start_rotation", [0, 1, 0]),
        "episode 17: field 'start_rotation' must be 4 numbers [x, y, z, w], got [0, 1, 0]",
    ),
    (_set("start_rotation", [0, 2, 0, 0]), "episode 17: field 'start_rotation' must be a unit quaternion"),
    (_set("start_rotation", [0, math.nan, 0, 1]), "episode 17: field 'start_rotation' must be 4 numbers"),
    (_set("start_position", ["1", 0, 0]), "episode 17: field 'start_position' must be 3 numbers [x, y, z]"),
    (_set("start_position", [0, True, 0]), "episode 17: field 'start_position' must be 3 numbers [x, y, z]"),
    (_drop("scene_id"), "episode 17: field 'scene_id' must be a scene path"),
    (
        _drop("reference_path"),
        "episode 17: field 'reference_path' must be a list of [x, y, z] points, got no such field",
    ),
    (
        _set("reference_path", [[0, 0, 0], [1, 0]]),
        "episode 17: field 'reference_path' must be a list of [x, y, z]",
    ),
    (_set("goals", []), "episode 17: field 'goals' must be a non-empty list"),
    (
        _set("goals", [{"position": [0, 0, 0], "radius": -1}]),
        "episode 17: field 'goals[0].radius' must be a positive",
    ),
    (_set("goals", [{"position": [0, 0]}]), "episode 17: field 'goals[0].position' must be 3 numbers"),
    (_set("info", [1]), "episode 17: field 'info' must be an object"),
    (
        _set("trajectory_id", None),
        "episode 17: field 'trajectory_id' must be an int or a non-empty string, got null",
    ),
    (_set("instruction", {"instruction_tokens": [1]}), "episode 17: field 'instruction' must be"),
    (
        _drop("episode_id"),
        "episode #0: field 'episode_id' must be an int or a non-empty string, got no such field",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_EPISODES)
def test_bad_episode_fields_name_file_episode_and_field(tmp_path, mutate, message):
    data = _real_format_file()
    mutate(data["episodes"][0])
    path = _write_raw(tmp_path / "val_unseen" / "val_unseen.json.gz", data)
    with pytest.raises(EpisodeFormatError) as err:
        load_episodes(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_tokens_outside_the_vocabulary_and_duplicate_ids(tmp_path):
    data = _real_format_file()
    n_vocab = len(data["instruction_vocab"]["word_list"])
    data["episodes"][0]["instruction"]["instruction_tokens"][0] = n_vocab
    path = _write_raw(tmp_path / "s" / "s.json.gz", data)
    with pytest.raises(
        EpisodeFormatError,
        match=f"instruction_tokens' must be a list of token ids >= 0 below the vocabulary size {n_vocab}",
    ):
        load_episodes(path)
    data = _real_format_file()
    data["episodes"].append(copy.deepcopy(data["episodes"][0]))
    data["episodes"][1]["episode_id"] = "17"  # the same id once cast to str
    with pytest.raises(EpisodeFormatError, match="episode 17: field 'episode_id' must be unique"):
        load_episodes(_write_raw(tmp_path / "s" / "s.json.gz", data))


def test_bad_vocabulary_and_ground_truth_name_the_file(tmp_path):
    data = _real_format_file()
    data["instruction_vocab"]["word_list"] = ["a"]
    path = _write_raw(tmp_path / "s" / "s.json.gz", data)
    with pytest.raises(
        EpisodeFormatError, match=r"s\.json\.gz: instruction_vocab\.word_list needs at least PAD and UNK"
    ):
        load_episodes(path)
    path = _write_raw(tmp_path / "t" / "t.json.gz", _real_format_file())
    gt_path = _write_raw(tmp_path / "t" / "t_gt.json.gz", {"17": {"locations": [[0, 0]], "actions": [1]}})
    with pytest.raises(EpisodeFormatError) as err:
        load_episodes(path)
    assert str(err.value).startswith(
        f"{gt_path}: episode 17: field 'locations' must be a list of [x, y, z] points"
    )
    _write_raw(gt_path, {"17": {"locations": [[0, 0, 0]], "actions": [1, -1]}})
    with pytest.raises(
        EpisodeFormatError, match="episode 17: field 'actions' must be a list of action ids >= 0"
    ):
        load_episodes(path)
