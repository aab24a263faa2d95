"""Render-on-read trajectories, padding into the loss batch, VLN-CE's length-bucketed batches."""

import numpy as np
import pytest
import torch

from envs.render import CameraSpec
from envs.sim import SimConfig, Simulator
from trainers.ablation import blank_inputs
from trainers.data.augment import apply_params, draw_params, sample_rng
from trainers.data.collect import collect_expert
from trainers.data.dataset import (
    LengthBucketBatchSampler,
    TrajectoryDataset,
    collate_trajectories,
    make_loader,
    progress_target,
)

CAMERA = CameraSpec(width=32, height=24)


@pytest.fixture(scope="module")
def stores(tiny_dataset, tmp_path_factory):
    """The same 3 expert slots stored without frames and with frames (the environment's observations)."""
    root = tmp_path_factory.mktemp("stores")
    kwargs = {"n_episodes": 3, "width": 32, "height": 24, "progress": False}
    collect_expert(tiny_dataset, "train", root / "poses", **kwargs)
    collect_expert(tiny_dataset, "train", root / "frames", store_frames=True, **kwargs)
    return root


def test_render_on_read_equals_the_simulator_and_the_observations(tiny_dataset, stores):
    rendered = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA, frames="render")
    stored = TrajectoryDataset(stores / "frames", tiny_dataset / "scenes", CAMERA, frames="stored")
    assert len(rendered) == len(stored) == 3
    for i in range(3):
        a, b = rendered[i], stored[i]
        assert a["episode_id"] == b["episode_id"]
        np.testing.assert_array_equal(a["actions"], b["actions"])
        np.testing.assert_array_equal(a["rgb"], b["rgb"])  # env observations at collection time
        np.testing.assert_array_equal(a["depth"], b["depth"])
    ep = rendered.episode(1)
    sim = Simulator(tiny_dataset / "scenes" / ep.scene_id, SimConfig(cameras=(CAMERA,)))
    for t in (0, ep.n_steps // 2, ep.n_steps - 1):
        sim.set_agent_state(ep.positions[t], ep.rotations[t])
        direct = sim.render_at(ep.positions[t], ep.rotations[t])
        np.testing.assert_array_equal(rendered[1]["rgb"][t], direct["rgb"])
        np.testing.assert_array_equal(rendered[1]["depth"][t], sim.observe()["depth"])
    sim.close()


def test_frames_stored_at_another_size_are_rendered_or_refused(tiny_dataset, stores):
    larger = CameraSpec(width=48, height=40)
    auto = TrajectoryDataset(stores / "frames", tiny_dataset / "scenes", larger)
    rendered = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", larger, frames="render")
    assert auto[0]["rgb"].shape[1:] == (40, 48, 3)
    np.testing.assert_array_equal(auto[0]["rgb"], rendered[0]["rgb"])
    assert TrajectoryDataset(stores / "frames", tiny_dataset / "scenes", CAMERA).source.uses_stored(0)
    strict = TrajectoryDataset(stores / "frames", tiny_dataset / "scenes", larger, frames="stored")
    with pytest.raises(ValueError, match=r"stores 24x32 frames .* camera renders 40x48"):
        strict[0]


def test_items_carry_labels_executed_actions_and_progress(tiny_dataset, stores):
    data = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA)
    item = data[0]
    n = len(item["actions"])
    assert item["rgb"].shape == (n, 24, 32, 3) and item["depth"].shape == (n, 24, 32, 1)
    assert abs(item["progress"][0]) < 1e-6 and item["progress"][-1] > 0.8
    assert np.all(item["progress"] <= 1.0)
    assert [data._keys[i] for i in data.indices] == [(0, 0), (0, 1), (0, 2)]  # ordered by (round, slot)


def test_augmentation_is_one_draw_per_trajectory_seeded_by_epoch_and_item(tiny_dataset, stores):
    plain = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA)
    data = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA, augment=True, seed=3)
    base, a = plain[1], data[(2, 1)]
    np.testing.assert_array_equal(a["rgb"], data[(2, 1)]["rgb"])  # the same wherever it is read
    assert not np.array_equal(a["rgb"], data[(3, 1)]["rgb"])  # another epoch, another draw
    assert not np.array_equal(a["rgb"], base["rgb"])
    np.testing.assert_array_equal(a["depth"], base["depth"])  # depth is never touched
    np.testing.assert_array_equal(a["actions"], base["actions"])
    # One lighting for the whole episode: every frame is the plain one under the same draw.
    rng = sample_rng(3, 2, 1)
    params = draw_params(rng)
    for t in (0, len(base["rgb"]) - 1):
        np.testing.assert_array_equal(a["rgb"][t], apply_params(base["rgb"][t], params))
    sampler = LengthBucketBatchSampler(plain.lengths, 1, seed=0, with_epoch=True)
    sampler.set_epoch(4)
    assert all(len(b) == 1 and b[0][0] == 4 for b in sampler)


def test_progress_without_stored_distances_uses_the_path(tiny_dataset, stores):
    ep = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA).episode(0)
    ep.extras.pop("geodesic")
    ep.extras.pop("start_geodesic")
    p = progress_target(ep)
    assert p[0] == 0.0 and p[-1] == 1.0


def test_collate_pads_to_the_loss_batch():
    items = []
    for n in (3, 5):
        items.append(
            {
                "episode_id": str(n), "instruction_text": f"walk {n}", "round": 0,
                "rgb": np.full((n, 4, 4, 3), n, np.uint8), "depth": np.full((n, 4, 4, 1), n, np.float32),
                "actions": np.arange(n) % 4, "executed": (np.arange(n) + 1) % 4,
                "progress": np.linspace(0, 1, n, dtype=np.float32),
            }
        )  # fmt: skip
    batch = collate_trajectories(items)
    assert batch["rgb"].shape == (2, 5, 4, 4, 3) and batch["depth"].shape == (2, 5, 4, 4, 1)
    assert batch["mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert batch["prev_actions"][1].tolist() == [-1, 1, 2, 3, 0]  # executed action of the step before
    assert batch["prev_actions"][0].tolist() == [-1, 1, 2, -1, -1]
    assert batch["actions"][0].tolist() == [0, 1, 2, 0, 0]
    assert int(batch["rgb"][0, 3].sum()) == 0 and batch["lengths"].tolist() == [3, 5]
    assert batch["instruction_text"] == ["walk 3", "walk 5"]


def test_blank_inputs_copies_and_blanks():
    batch = {
        "instruction_text": ["go left"],
        "rgb": torch.ones(1, 2, 2, 2, 3),
        "depth": np.ones((1, 2, 2, 2, 1)),
    }
    blanked = blank_inputs(batch, ("instruction", "vision"))
    assert (
        blanked["instruction_text"] == [""]
        and float(blanked["rgb"].sum()) == 0
        and blanked["depth"].sum() == 0
    )
    assert batch["instruction_text"] == ["go left"] and float(batch["rgb"].sum()) == 24


def test_sampler_sorts_blocks_shuffles_batches_and_is_seeded():
    lengths = np.random.default_rng(0).integers(5, 100, size=103)
    s = LengthBucketBatchSampler(lengths, batch_size=4, block_batches=5, seed=1)
    batches = list(s)
    assert len(batches) == len(s) == 25 and all(len(b) == 4 for b in batches)  # 103 items, drop_last
    assert len({i for b in batches for i in b}) == 100
    within = [np.ptp(lengths[b]) for b in batches]
    assert np.mean(within) < np.ptp(lengths) / 4  # sorted within blocks: little padding
    assert batches == list(LengthBucketBatchSampler(lengths, 4, 5, seed=1))
    s.set_epoch(1)
    assert list(s) != batches


def test_sampler_shards_and_restarts_mid_epoch():
    lengths = np.arange(50) % 17 + 1
    shards = [list(LengthBucketBatchSampler(lengths, 3, 2, seed=4, rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    flat = [i for s in shards for b in s for i in b]
    assert len(flat) == len(set(flat))
    s = LengthBucketBatchSampler(lengths, 3, 2, seed=4, rank=1, world_size=3)
    s.set_start(2)
    assert list(s) == shards[1][2:] and len(s) == len(shards[1]) - 2


def test_loader_with_a_spawned_worker_renders_the_same_batches(tiny_dataset, stores):
    data = TrajectoryDataset(stores / "poses", tiny_dataset / "scenes", CAMERA)
    main = list(make_loader(data, LengthBucketBatchSampler(data.lengths, 2, seed=0), 0))
    worker = list(make_loader(data, LengthBucketBatchSampler(data.lengths, 2, seed=0), 1))
    assert len(main) == len(worker) == 1
    assert torch.equal(main[0]["rgb"], worker[0]["rgb"]) and torch.equal(main[0]["mask"], worker[0]["mask"])
