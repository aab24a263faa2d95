"""Resume: a checkpoint restores the exact state and the next batch; a SIGKILLed run resumes and ends as an
uninterrupted one."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from agents.base import Agent
from trainers.base import make_trainer
from trainers.checkpoint import list_checkpoints
from trainers.config import register_configs, to_config
from trainers.metrics import read_metrics
from trainers.schedule import TrainerState, reopen_finished

ROOT = Path(__file__).resolve().parents[2]
register_configs()
EPOCHS = 4


def overrides(data: Path, run_dir: Path) -> list[str]:
    """Teacher forcing on 3 expert episodes in batches of 1, a checkpoint after every update."""
    return [
        "experiment=smoke", "agent=cma", "trainer=bc", "trainer.n_episodes=3", f"trainer.epochs={EPOCHS}",
        "data.batch_size=1", "checkpoint.every_steps=1", "checkpoint.every_epochs=0", "eval.every_epochs=0",
        "eval.final=false", f"data.dir={data}", f"run_dir={run_dir}",
    ]  # fmt: skip


def config(data: Path, run_dir: Path, *extra: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return to_config(compose("train", overrides=[*overrides(data, run_dir), *extra]))


def losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["train/loss"] for r in read_metrics(run_dir) if "train/loss" in r}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return Agent.load(path / "agent").state_dict()


@pytest.fixture(scope="module")
def reference(tiny_dataset, tmp_path_factory):
    """An uninterrupted run: 3 updates per epoch."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    make_trainer(config(tiny_dataset, run_dir)).learn()
    return run_dir


def test_resume_restores_state_and_the_next_batch(reference, tiny_dataset, tmp_path):
    run_dir = tmp_path / "resumed"
    shutil.copytree(reference, run_dir, symlinks=True)
    for ckpt in list_checkpoints(run_dir):
        if int(ckpt.name) > 4:  # keep the checkpoint taken after update 4: mid-way through epoch 1
            shutil.rmtree(ckpt)
    trainer = make_trainer(config(tiny_dataset, run_dir, "resume=true"))
    trainer.setup()
    st = trainer.state
    assert (st.step, st.round, st.epoch, st.batch, st.epochs_total, st.collected) == (4, 0, 1, 1, 1, True)
    expected = weights(reference / "checkpoints" / "000004")
    assert all(torch.equal(v, trainer.agent.state_dict()[k]) for k, v in expected.items())
    loader, sampler = trainer.loader()
    sampler.set_epoch(st.epochs_total)
    sampler.set_start(st.batch)
    sampler_again = type(sampler)(sampler.lengths, 1, seed=0)
    sampler_again.set_epoch(1)
    assert next(iter(sampler)) == sampler_again.epoch_batches()[1]
    next_ids = next(iter(loader))["episode_id"]
    assert next_ids == [loader.dataset[i]["episode_id"] for i in sampler_again.epoch_batches()[1]]
    trainer.close()
    make_trainer(config(tiny_dataset, run_dir, "resume=true")).learn()
    assert losses(run_dir) == losses(reference) and len(losses(reference)) == 3 * EPOCHS
    final = f"{3 * EPOCHS:06d}"
    a, b = weights(reference / "checkpoints" / final), weights(run_dir / "checkpoints" / final)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _launch(data: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "trainers" / "run.py"), *overrides(data, run_dir), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_resume_loses_only_the_steps_after_the_last_checkpoint(
    reference, tiny_dataset, tmp_path
):
    run_dir = tmp_path / "killed"
    proc = _launch(tiny_dataset, run_dir)
    deadline = time.monotonic() + 240
    while not any(int(p.name) >= 5 for p in list_checkpoints(run_dir)):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    last = max(int(p.name) for p in list_checkpoints(run_dir))
    assert last < 3 * EPOCHS, "the run finished before it was killed"
    resumed = _launch(tiny_dataset, run_dir, "resume=true")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert losses(run_dir) == losses(reference)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    opened = [i for i, r in enumerate(rows) if r.get("event") == "open"]
    resumed_steps = [r["step"] for r in rows[opened[-1] :] if "train/loss" in r]
    assert resumed_steps[0] == last + 1  # the resumed run went on from the last checkpoint
    final = f"{3 * EPOCHS:06d}"
    a, b = weights(reference / "checkpoints" / final), weights(run_dir / "checkpoints" / final)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_resumed_with_more_epochs_ends_as_the_longer_run(
    reference, tiny_dataset, tmp_path, caplog
):
    run_dir = tmp_path / "extended"
    make_trainer(config(tiny_dataset, run_dir, f"trainer.epochs={EPOCHS // 2}")).learn()
    assert max(losses(run_dir)) == 3 * EPOCHS // 2
    with caplog.at_level(logging.INFO, logger="trainers.base"):
        make_trainer(config(tiny_dataset, run_dir, "resume=true")).learn()
    assert f"trainer.epochs: {EPOCHS // 2} -> {EPOCHS}" in caplog.text  # the changed key is said
    assert "training its last round on" in caplog.text
    assert losses(run_dir) == losses(reference)
    final = f"{3 * EPOCHS:06d}"
    a, b = weights(reference / "checkpoints" / final), weights(run_dir / "checkpoints" / final)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_reopen_finished_extends_only_a_single_round_run():
    finished = TrainerState(round=1, collected=False, epoch=0, step=6, epochs_total=2)
    assert reopen_finished(finished, [4])
    assert (finished.round, finished.collected, finished.epoch, finished.batch) == (0, True, 2, 0)
    assert not reopen_finished(TrainerState(round=1, epochs_total=2), [2])  # nothing to add
    assert not reopen_finished(TrainerState(round=0, epochs_total=1), [4])  # not finished: resumes as it is
    assert not reopen_finished(TrainerState(round=3, epochs_total=3), [1, 1, 1, 1])  # a round added
    with pytest.raises(ValueError, match="trained 3 epochs over 3 rounds .* gives those rounds 6"):
        reopen_finished(TrainerState(round=3, epochs_total=3), [2, 2, 2])


@pytest.mark.parametrize(
    "name", ["agent/model.safetensors", "training_state/optimizer.pt", "training_state/state.json"]
)
def test_resume_falls_back_past_a_damaged_latest_checkpoint(reference, tiny_dataset, tmp_path, caplog, name):
    run_dir = tmp_path / "damaged"
    shutil.copytree(reference, run_dir, symlinks=True)
    latest, previous = (run_dir / "checkpoints" / f"{step:06d}" for step in (3 * EPOCHS, 3 * EPOCHS - 1))
    (latest / name).write_bytes((latest / name).read_bytes()[:64])  # truncated
    trainer = make_trainer(config(tiny_dataset, run_dir, "resume=true"))
    with caplog.at_level(logging.WARNING, logger="trainers.checkpoint"):
        trainer.setup()
    trainer.close()
    assert trainer.state.step == 3 * EPOCHS - 1 and str(latest / name) in caplog.text
    assert os.readlink(run_dir / "checkpoints" / "last") == previous.name
    expected = weights(reference / "checkpoints" / previous.name)
    assert all(torch.equal(v, trainer.agent.state_dict()[k]) for k, v in expected.items())
    if name == "agent/model.safetensors":  # the run goes on and ends as the uninterrupted one
        make_trainer(config(tiny_dataset, run_dir, "resume=true")).learn()
        a, b = weights(reference / "checkpoints" / latest.name), weights(latest)
        assert all(torch.equal(a[k], b[k]) for k in a) and losses(run_dir) == losses(reference)


def test_a_diffusion_agent_resumed_mid_epoch_draws_the_uninterrupted_runs_noise(tiny_dataset, tmp_path):
    """NavDP's loss draws noise and timesteps from the global RNG: opening the data loader mid-epoch after a
    resume must not consume it (the loader seeds itself from its own generator)."""
    extra = [
        "experiment=smoke_navdp", "agent=navdp", "trainer=bc", "trainer.n_episodes=2", "trainer.epochs=2",
        "data.batch_size=16", "checkpoint.every_steps=1", "checkpoint.every_epochs=0", "eval.every_epochs=0",
        "eval.final=false", f"data.dir={tiny_dataset}",
    ]  # fmt: skip

    def navdp_config(run_dir: Path, *more: str):
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            return to_config(compose("train", overrides=[*extra, f"run_dir={run_dir}", *more]))

    reference = tmp_path / "reference"
    make_trainer(navdp_config(reference)).learn()
    steps = sorted(losses(reference))
    per_epoch = len(steps) // 2
    assert per_epoch >= 3, steps
    run_dir = tmp_path / "resumed"
    shutil.copytree(reference, run_dir, symlinks=True)
    for ckpt in list_checkpoints(run_dir):
        if int(ckpt.name) > per_epoch + 1:  # mid-way through the second epoch
            shutil.rmtree(ckpt)
    make_trainer(navdp_config(run_dir, "resume=true")).learn()
    assert losses(run_dir) == losses(reference)
