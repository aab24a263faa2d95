"""Distributed helpers: two gloo CPU processes shard, gather and train DDP and FSDP modules in lock-step."""

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
    full_optimizer_state_dict,
    full_state_dict,
    init_distributed,
    load_full_optimizer_state_dict,
    load_full_state_dict,
    seed_everything,
    shard,
    unwrap,
    wrap_ddp,
    wrap_model,
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


class _Net(nn.Module):
    """Two children with parameters (the head's 3 rows do not split evenly over 2 ranks) and one without."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 8), nn.Tanh())
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.encoder(x)))


class _Wrapper(nn.Module):
    """One child holding everything, like the trainer's loss module around the agent."""

    def __init__(self, agent: nn.Module) -> None:
        super().__init__()
        self.agent = agent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.agent(x)


class _Branchy(_Net):
    """A branch that only some ranks take, so its parameters get no gradient on the others."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, use_branch: bool = False) -> torch.Tensor:
        h = self.act(self.encoder(x))
        return self.head(self.branch(h) if use_branch else h)


def _loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (model(x).float() - x.sum(1, keepdim=True)).pow(2).mean()


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    opt.zero_grad()
    _loss(model, x).backward()
    opt.step()


def _lists(state: dict) -> dict:
    return {k: v.tolist() for k, v in state.items()}


def _sharded_names(model: nn.Module) -> list[str]:
    from torch.distributed.fsdp import FSDPModule

    return [name for name, module in model.named_modules() if isinstance(module, FSDPModule)]


def _fsdp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    from safetensors.torch import load_file, save_file

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    threads_before = _n_threads()
    info = init_distributed(device="cpu")
    seed_everything(0, info.rank)  # different initial weights on each rank until wrap_model takes rank 0's
    ddp = wrap_model(_Net(), info, "ddp")
    fsdp = wrap_model(_Net(), info, "fsdp")
    initial = full_state_dict(fsdp, all_ranks=True)
    load_full_state_dict(ddp, initial)  # both strategies start from the same weights
    opts = {name: torch.optim.Adam(m.parameters(), lr=0.1) for name, m in (("ddp", ddp), ("fsdp", fsdp))}
    batches = [torch.randn(4, 3) for _ in range(3)]  # different data on each rank
    for x in batches[:2]:
        _step(ddp, opts["ddp"], x)
        _step(fsdp, opts["fsdp"], x)
    result = {
        "initial": all_gather_objects(_lists(initial)),
        "batches": all_gather_objects([x.tolist() for x in batches]),
        "ddp": _lists(full_state_dict(ddp)),
        "fsdp": _lists(full_state_dict(fsdp)),
        "fsdp_all_ranks": _lists(full_state_dict(fsdp, all_ranks=True)),
        "units": _sharded_names(fsdp),
        "units_by_class": _sharded_names(wrap_model(_Net(), info, "fsdp", shard_modules=["Linear"])),
        "units_wrapped": _sharded_names(wrap_model(_Wrapper(_Net()), info, "fsdp")),
    }

    # Parameters unused on rank 1: FSDP reduce-scatters zeros for them, as DDP's find_unused_parameters does.
    # The branch stays in the root unit, which runs on every rank (a unit of its own would not run on rank 1).
    units = {"ddp": {}, "fsdp": {"shard_modules": ["Sequential"]}}
    branchy = {s: wrap_model(_Branchy(), info, s, find_unused_parameters=True, **units[s]) for s in units}
    load_full_state_dict(branchy["ddp"], full_state_dict(branchy["fsdp"], all_ranks=True))
    for model in branchy.values():
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        (model(batches[0], use_branch=info.rank == 0) - 1).pow(2).mean().backward()
        opt.step()
    by_ddp, by_fsdp = (full_state_dict(m, all_ranks=True) for m in branchy.values())
    result["unused_params_agree"] = all(torch.allclose(v, by_fsdp[k], atol=1e-6) for k, v in by_ddp.items())
    del branchy, model, opt

    # Save -> load into a freshly initialised FSDP model: rank 0 reads the files and broadcasts them.
    model_state, optim_state = full_state_dict(fsdp), full_optimizer_state_dict(fsdp, opts["fsdp"])
    if info.is_main:
        save_file(model_state, f"{out_dir}/model.safetensors")
        torch.save(optim_state, f"{out_dir}/optimizer.pt")
    barrier()
    torch.manual_seed(100 + info.rank)
    restored = wrap_model(_Net(), info, "fsdp")
    restored_opt = torch.optim.Adam(restored.parameters(), lr=0.1)
    main = info.is_main
    saved = load_file(f"{out_dir}/model.safetensors") if main else {}
    saved_optim = torch.load(f"{out_dir}/optimizer.pt", weights_only=True) if main else {}
    load_full_state_dict(restored, saved, from_rank0=True)
    load_full_optimizer_state_dict(restored, restored_opt, saved_optim, from_rank0=True)
    reloaded, reloaded_optim = full_state_dict(restored), full_optimizer_state_dict(restored, restored_opt)
    result["round_trip"] = main and all(torch.equal(v, reloaded[k]) for k, v in model_state.items())
    result["round_trip_optim"] = main and all(
        torch.equal(v, reloaded_optim["state"][name][key])
        for name, state in optim_state["state"].items()
        for key, v in state.items()
    )
    _step(fsdp, opts["fsdp"], batches[2])
    _step(restored, restored_opt, batches[2])
    after, after_restored = full_state_dict(fsdp), full_state_dict(restored)
    result["resumed_step_equal"] = main and all(torch.equal(v, after_restored[k]) for k, v in after.items())

    bf16 = wrap_model(_Net(), info, "fsdp", param_dtype="bfloat16")
    dtypes = sorted({str(v.dtype) for v in full_state_dict(bf16, all_ranks=True).values()})
    result["bf16"] = [str(bf16(batches[0]).dtype), dtypes]

    del ddp, fsdp, restored, bf16, opts, restored_opt  # drop the wrappers so that cleanup() frees the group
    barrier()
    cleanup()
    result["threads_left"] = _n_threads() - threads_before
    with open(f"{out_dir}/{rank}.json", "w") as f:
        json.dump(result, f)


def test_two_gloo_ranks_fsdp_matches_ddp_and_a_single_process_reference(tmp_path):
    mp.spawn(_fsdp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2))
    assert r0["initial"][0] == r0["initial"][1]  # FSDP started every rank from rank 0's weights
    assert r0["units"] == ["", "encoder", "head"]  # the children with parameters, then the root
    assert r0["units_by_class"] == ["", "encoder.0", "head"]
    assert r0["units_wrapped"] == ["", "agent", "agent.encoder", "agent.head"]  # looked through the wrapper
    assert r0["unused_params_agree"] and r1["unused_params_agree"]
    assert r1["ddp"] == r1["fsdp"] == {} and r0["fsdp_all_ranks"] == r1["fsdp_all_ranks"]

    # Single-process reference: the same two Adam steps on both ranks' batches concatenated (equal sizes).
    model = _Net()
    model.load_state_dict({k: torch.tensor(v) for k, v in r0["initial"][0].items()})
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for i in range(2):
        _step(model, opt, torch.tensor(r0["batches"][0][i] + r0["batches"][1][i]))
    for name, ref in model.state_dict().items():
        ddp, fsdp = torch.tensor(r0["ddp"][name]), torch.tensor(r0["fsdp"][name])
        assert torch.allclose(fsdp, ref, atol=1e-5), name
        assert torch.allclose(fsdp, ddp, atol=1e-5), name
        assert torch.equal(fsdp, torch.tensor(r0["fsdp_all_ranks"][name]))

    assert r0["round_trip"] and r0["round_trip_optim"]  # save -> load gives back exactly what was saved
    assert r0["resumed_step_equal"]  # and the restored model takes the very same next step
    assert r0["bf16"] == ["torch.bfloat16", ["torch.float32"]]  # computes in bf16, keeps float32 shards
    assert r0["threads_left"] <= 0 and r1["threads_left"] <= 0


def test_wrap_model_degrades_to_a_plain_module_and_checks_its_options(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed(device="cpu")
    module = _Net()
    assert wrap_model(module, info, "fsdp", shard_modules=["Linear"], param_dtype="bfloat16") is module
    opt = torch.optim.Adam(module.parameters(), lr=0.1)
    _step(module, opt, torch.randn(4, 3))
    state, optim = full_state_dict(module), full_optimizer_state_dict(module, opt)
    kept = {k: v.clone() for k, v in state.items()}
    _step(module, opt, torch.randn(4, 3))
    assert all(torch.equal(v, kept[k]) for k, v in state.items())  # a snapshot, not a view of the parameters
    assert sorted(optim["state"]) == sorted(state) and optim["param_groups"][0]["params"] == list(state)

    fresh = _Net()
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.1)
    load_full_state_dict(fresh, state)
    load_full_optimizer_state_dict(fresh, fresh_opt, optim)
    assert all(torch.equal(v, state[k]) for k, v in full_state_dict(fresh).items())
    reloaded = full_optimizer_state_dict(fresh, fresh_opt)["state"]
    assert all(torch.equal(v, reloaded[n][k]) for n, s in optim["state"].items() for k, v in s.items())

    with pytest.raises(ValueError, match=r"unknown strategy 'zero'; choose one of \['ddp', 'fsdp'\]"):
        wrap_model(module, info, "zero")
    with pytest.raises(ValueError, match=r"\['param_dtype'\] are FSDP options"):
        wrap_model(module, info, "ddp", param_dtype="bfloat16")
    with pytest.raises(ValueError, match=r"\['broadcast_buffers'\] are not FSDP options"):
        wrap_model(module, info, "fsdp", broadcast_buffers=False)
    with pytest.raises(ValueError, match="unknown dtype 'bf17'"):
        wrap_model(module, info, "fsdp", param_dtype="bf17")
    with pytest.raises(ValueError, match=r"\['Conv2d'\] match no submodule; classes here: .*'Linear'"):
        wrap_model(module, info, "fsdp", shard_modules=["Conv2d"])
