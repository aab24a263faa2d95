"""Distributed helpers: two gloo CPU processes shard, gather and train a DDP module in lock-step."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from trainers.distributed import (
    all_gather_objects,
    barrier,
    cleanup,
    init_distributed,
    seed_everything,
    shard,
    unwrap,
    wrap_ddp,
)

ITEMS = [f"episode_{i}" for i in range(11)]


def _n_threads() -> int:
    """OS threads of this process (a gloo group runs two work threads and an I/O thread); 0 without /proc."""
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    threads_before = _n_threads()
    info = init_distributed(device="cpu")
    gathered = all_gather_objects(shard(ITEMS, info.rank, info.world_size))
    seed_everything(0, info.rank)  # different data on each rank
    model = nn.Linear(3, 1)  # different initial weights on each rank until DDP broadcasts rank 0's
    ddp = wrap_ddp(model, info)
    initial = [p.detach().tolist() for p in unwrap(ddp).parameters()]
    x = torch.randn(4, 3)
    y = x.sum(1, keepdim=True)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    ((ddp(x) - y) ** 2).mean().backward()
    opt.step()
    result = {
        "info": [info.rank, info.world_size, info.local_rank, str(info.device), info.is_main],
        "gathered": gathered,
        "initial": all_gather_objects(initial),
        "data": all_gather_objects({"x": x.tolist(), "y": y.tolist()}),
        "params": [p.detach().tolist() for p in model.parameters()],
    }
    del ddp, model, opt  # the wrapper holds the group: drop it so that cleanup() really tears the group down
    barrier()
    cleanup()
    result["threads_left"] = _n_threads() - threads_before
    with open(f"{out_dir}/{rank}.json", "w") as f:
        json.dump(result, f)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_shard_gather_and_average_gradients(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2))
    assert r0["info"] == [0, 2, 0, "cpu", True] and r1["info"] == [1, 2, 1, "cpu", False]
    assert r0["gathered"] == r1["gathered"]
    shards = r0["gathered"]
    assert sorted(shards[0] + shards[1]) == sorted(ITEMS) and not set(shards[0]) & set(shards[1])
    assert r0["initial"][0] == r0["initial"][1]  # DDP broadcast rank 0's weights
    assert r0["data"][0] != r0["data"][1]
    assert r0["params"] == r1["params"]  # identical after a step on different data
    # cleanup() stopped the group's threads, so none are left to be torn down during interpreter shutdown.
    assert r0["threads_left"] <= 0 and r1["threads_left"] <= 0

    # The averaged gradient equals the gradient of the loss over both ranks' batches (equal sizes).
    model = nn.Linear(3, 1)
    with torch.no_grad():
        for p, v in zip(model.parameters(), r0["initial"][0], strict=True):
            p.copy_(torch.tensor(v))
    x = torch.tensor(r0["data"][0]["x"] + r0["data"][1]["x"])
    y = torch.tensor(r0["data"][0]["y"] + r0["data"][1]["y"])
    ((model(x) - y) ** 2).mean().backward()
    for p, v in zip(model.parameters(), r0["params"], strict=True):
        assert torch.allclose(p.detach() - 0.1 * p.grad, torch.tensor(v), atol=1e-6)


def test_single_process_degrades_to_no_ops(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed(device="cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    module = nn.Linear(2, 2)
    assert wrap_ddp(module, info) is module and unwrap(module) is module
    assert all_gather_objects({"a": (1, 2)}) == [{"a": [1, 2]}]
    barrier()
    cleanup()
    assert shard(list(range(7)), 2, 3) == [2, 5]
    with pytest.raises(ValueError, match="rank=3 world_size=3"):
        shard([1], 3, 3)
    with pytest.raises(TypeError, match="JSON-able"):
        all_gather_objects(object())
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        init_distributed()
    assert seed_everything(5, rank=2) == 7 and torch.initial_seed() == 7
