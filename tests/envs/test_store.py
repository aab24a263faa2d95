"""TrajectoryStore: round trips, validation, SIGKILL'd and concurrent writers, readers in other processes."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from trainers.data import Episode, TrajectoryStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def make_episode(i: int, frames: bool = False, round: int = 0, T: int | None = None) -> Episode:
    """Deterministic episode number ``i`` (random poses and actions seeded by ``i``)."""
    rng = np.random.default_rng(i)
    T = int(rng.integers(3, 12)) if T is None else T
    q = rng.normal(size=(T, 4))
    ep_frames = {}
    if frames:
        ep_frames = {
            "rgb": rng.integers(0, 256, size=(T, 32, 32, 3), dtype=np.uint8),
            "depth": rng.uniform(0, 10, size=(T, 32, 32, 1)).astype(np.float32),
        }
    return Episode(
        episode_id=f"ep{i}",
        scene_id=f"scene{i % 3}",
        instruction_text=f"walk past the sofa {i} times ünïcode",
        positions=rng.normal(size=(T, 3)),
        rotations=q / np.linalg.norm(q, axis=1, keepdims=True),
        actions=rng.integers(0, 4, size=T),
        executed=rng.integers(0, 4, size=T),
        round=round,
        frames=ep_frames,
        extras={"goal": [1.0, 0.5, -2.0], "geodesic": np.float32(3.5), "progress": np.linspace(0, 1, T)},
    )


def assert_same(a: Episode, b: Episode) -> None:
    for name in ("episode_id", "scene_id", "instruction_text", "round"):
        assert getattr(a, name) == getattr(b, name)
    for name in ("positions", "rotations", "actions", "executed"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.frames.keys() == b.frames.keys()
    for k in a.frames:
        assert a.frames[k].dtype == b.frames[k].dtype and np.array_equal(a.frames[k], b.frames[k])
    assert a.extras.keys() == b.extras.keys()
    for k, v in a.extras.items():
        assert np.array_equal(np.asarray(v), np.asarray(b.extras[k])), k


def test_round_trip_and_queries(tmp_path):
    store = TrajectoryStore(tmp_path / "store")
    eps = [make_episode(0, frames=True), make_episode(1), make_episode(2, round=1), make_episode(0, round=2)]
    assert [store.append(ep) for ep in eps] == [0, 1, 2, 3]
    assert len(store) == 4 and store.episode_ids() == ["ep0", "ep1", "ep2", "ep0"]
    for i, ep in enumerate(eps):
        assert_same(store[i], ep)
    assert store[0].frames["rgb"].shape == (eps[0].n_steps, 32, 32, 3)
    assert store.get(0, frames=False).frames == {}
    assert_same(store[-1], eps[3])
    assert store.contains("ep0") and store.contains("ep0", round=2) and not store.contains("ep0", round=1)
    assert not store.contains("ep9")
    assert store.rounds() == [0, 1, 2]
    assert store.filter(round=0) == [0, 1] and store.filter(round=[1, 2]) == [2, 3]
    assert store.filter(scene_id="scene0") == [0, 3]
    assert store.total_steps() == sum(ep.n_steps for ep in eps)
    assert list(store.lengths()) == [ep.n_steps for ep in eps]
    on_disk = sum(p.stat().st_size for p in (tmp_path / "store" / "episodes").rglob("*.safetensors"))
    assert store.size_bytes() == on_disk + (tmp_path / "store" / "index.jsonl").stat().st_size
    assert store.meta(2)["round"] == 1 and store.meta(2)["n_steps"] == eps[2].n_steps
    with pytest.raises(IndexError, match="out of range"):
        store[4]
    again = TrajectoryStore(tmp_path / "store", readonly=True)
    assert len(again) == 4
    assert_same(again[0], eps[0])
    with pytest.raises(PermissionError, match="readonly"):
        again.append(eps[1])


def test_bad_input_is_rejected_with_clear_errors(tmp_path):
    ep = make_episode(0)
    with pytest.raises(ValueError, match=r"positions: expected shape \(T, 3\)"):
        Episode("e", "s", "", np.zeros((3, 2)), ep.rotations[:3], ep.actions[:3], ep.executed[:3])
    with pytest.raises(ValueError, match="unit quaternions"):
        Episode("e", "s", "", ep.positions, ep.rotations * 2, ep.actions, ep.executed)
    with pytest.raises(TypeError, match="actions: expected integer"):
        Episode("e", "s", "", ep.positions, ep.rotations, ep.actions + 0.5, ep.executed)
    with pytest.raises(ValueError, match="executed: expected length"):
        Episode("e", "s", "", ep.positions, ep.rotations, ep.actions, ep.executed[:-1])
    with pytest.raises(ValueError, match=r"frames\['rgb'\]"):
        Episode(
            "e",
            "s",
            "",
            ep.positions,
            ep.rotations,
            ep.actions,
            ep.executed,
            frames={"rgb": np.zeros((1, 2))},
        )
    store = TrajectoryStore(tmp_path / "s")
    bad = make_episode(1)
    bad.extras["obj"] = object()
    with pytest.raises(ValueError, match="extras must be JSON-able"):
        store.append(bad)
    assert len(store) == 0
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        TrajectoryStore(tmp_path / "file")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a trajectory store"):
        TrajectoryStore(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="No trajectory store"):
        TrajectoryStore(tmp_path / "missing", readonly=True)


def test_a_store_half_created_by_another_process_is_completed_not_refused(tmp_path):
    # What a creating process has written before its store.json (or left when killed there).
    half = tmp_path / "half"
    half.mkdir()
    (half / ".lock").touch()
    (half / "index.jsonl").touch()
    (half / ".tmp-store.json-0123abcd").write_bytes(b'{"format"')
    store = TrajectoryStore(half)
    store.append(make_episode(0))
    assert len(TrajectoryStore(half, readonly=True)) == 1
    # An index with content but no store.json is not something a store leaves behind.
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "index.jsonl").write_text('{"index": 0}\n')
    with pytest.raises(ValueError, match="not a trajectory store"):
        TrajectoryStore(odd)


def test_torn_tail_and_orphans_are_invisible_then_repaired(tmp_path):
    root = tmp_path / "s"
    store = TrajectoryStore(root)
    for i in range(3):
        store.append(make_episode(i))
    # What a writer killed mid-commit leaves: a temp file, a renamed but uncommitted file, a torn index line.
    (root / "episodes" / "00000" / ".tmp-00000003.safetensors-dead").write_bytes(b"partial")
    (root / "episodes" / "00000" / "00000003.safetensors").write_bytes(b"uncommitted")
    with open(root / "index.jsonl", "ab") as f:
        f.write(b'{"index": 3, "episode_id": "ep3", "sce')
    reader = TrajectoryStore(root, readonly=True)
    assert len(reader) == 3 and reader.refresh() == 0
    writer = TrajectoryStore(root)
    assert writer.append(make_episode(7)) == 3
    assert not list(root.glob("episodes/*/.tmp-*"))
    lines = (root / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2, 3]
    assert reader.refresh() == 1
    assert_same(reader[3], make_episode(7))


WRITER = """
import sys
from test_store import make_episode
from trainers.data import TrajectoryStore
store = TrajectoryStore(sys.argv[1])
start, count, frames = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
for k in range(start, start + count):
    i = store.append(make_episode(k, frames=frames))
    print(i, k, flush=True)
"""


def _writer(root: Path, start: int, count: int, frames: bool) -> subprocess.Popen:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    args = [sys.executable, "-c", WRITER, str(root), str(start), str(count), "1" if frames else "0"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def test_sigkill_writer_loses_nothing_committed(tmp_path):
    root = tmp_path / "s"
    reader = TrajectoryStore(root)  # another process's view, opened before the writer starts
    proc = _writer(root, start=0, count=10_000, frames=True)
    committed = []
    try:
        while len(committed) < 8:
            i, k = map(int, proc.stdout.readline().split())
            committed.append((i, k))
            if len(committed) == 4:
                assert reader.refresh() >= 4  # readers see new episodes after refresh
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = TrajectoryStore(root)
    assert len(store) >= len(committed)
    for i in range(len(store)):  # every visible episode, including ones committed after the last print
        assert_same(store[i], make_episode(i, frames=True))
    reader.refresh()
    assert len(reader) == len(store)
    n = len(store)
    assert store.append(make_episode(500)) == n
    assert_same(TrajectoryStore(root)[n], make_episode(500))
    assert not list(root.glob("episodes/*/.tmp-*"))


def test_concurrent_writers_and_dataloader_readers(tmp_path):
    root = tmp_path / "s"
    procs = [_writer(root, start=s, count=6, frames=False) for s in (0, 100)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    written = {int(k): int(i) for out in outs for i, k in (line.split() for line in out.splitlines())}
    store = TrajectoryStore(root, readonly=True)
    assert len(store) == 12 and sorted(written.values()) == list(range(12))
    for k, i in written.items():
        assert_same(store[i], make_episode(k))

    class Actions(Dataset):
        def __len__(self):
            return len(store)

        def __getitem__(self, i):
            return torch.from_numpy(store[i].actions).sum()

    loader = DataLoader(Actions(), batch_size=4, num_workers=2)
    sums = torch.cat(list(loader))
    assert sums.tolist() == [int(store[i].actions.sum()) for i in range(12)]
