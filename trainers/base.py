"""The trainer template: ``learn() = rounds of { collect ; train epochs ; evaluate ; checkpoint }``.

A trainer owns where batches come from (the data regime); the agent owns the model and its loss
(``Agent.loss(batch) -> (loss, info)``). Subclasses declare ``name`` (the registry key, equal to their
config's ``name`` and to ``configs/trainer/<name>.yaml``) and ``config_class``, and say which rounds to run
(:meth:`Trainer.rounds`); :meth:`Trainer.collect` brings a round's episodes in.

What the trainer reads from the agent's declarations (:mod:`agents.contract`):

- ``sample``: whole padded trajectories (:class:`trainers.data.dataset.TrajectoryDataset`, length-bucketed
  batches), windows with history and future poses (:class:`trainers.data.windows.WindowDataset`) or
  System 2's pixel-goal queries (:class:`trainers.data.pixel_goals.PixelGoalDataset`, the look-down view
  from the agent's camera named by ``sample.lookdown``); ``item_transform()`` runs in the loader's workers;
- ``cameras``: extra agent-mounted cameras rendered for collection and training, a goal camera's
  ``imagegoal``; ``tasks``, ``action_mode``, ``n_waypoints``: the task collected (``data.task``) and evaluated
  (``eval.benchmark``, by default ``vln_<split>`` or ``system1_<task>``) and the form of the expert's labels;
- ``param_groups()`` (frozen encoders, per-group learning rates) and ``after_step(step)`` (an EMA of weights).

Run folder (``TrainConfig.run_dir``)::

    config.yaml  metrics.jsonl  train.log  store/  checkpoints/<step:06d>/{agent/,training_state/}  eval/

Under ``torchrun`` every rank trains on its share of each epoch's batches with the loss module wrapped in DDP,
collects and evaluates its share of the episodes (appending to the shared store, whose writer lock makes
that safe; evaluation records are gathered), and rank 0 alone logs and writes checkpoints.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader

from agents.base import AGENTS, Agent, make_agent
from agents.contract import agent_cameras, goal_camera, interface_of
from agents.registry import Registry
from envs.datasets.digest import write_dataset_record
from envs.datasets.r2r import load_episodes
from envs.datasets.store import TrajectoryStore
from trainers import distributed
from trainers.ablation import BlankedInputs, blank_inputs
from trainers.checkpoint import capture_rng_state, latest_checkpoint, load_checkpoint, save_checkpoint
from trainers.config import TrainConfig, to_dict
from trainers.data.dataset import (
    LengthBucketBatchSampler,
    TrajectoryDataset,
    collate_trajectories,
    make_loader,
)
from trainers.data.pixel_goals import PixelGoalBatchSampler, PixelGoalDataset, collate_pixel_goals
from trainers.data.windows import WindowBatchSampler, WindowDataset, collate_windows, sample_count
from trainers.metrics import MetricsLogger
from trainers.run_folder import changed_keys
from trainers.schedule import Round, TrainerState, reopen_finished
from trainers.sharded import AgentSnapshot, OptimizerSnapshot, ShardedOptimizer, gather_full_states, gathered

logger = logging.getLogger(__name__)

TRAINERS: Registry[type[Trainer]] = Registry("trainer")


class LossModule(nn.Module):
    """``forward(batch) = agent.loss(batch)``: the module DDP wraps, so gradients are averaged over ranks."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self.agent = agent

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """The agent's imitation loss on a padded batch of whole trajectories."""
        return self.agent.loss(batch)


class Trainer(abc.ABC):
    """Base trainer; see the module docstring. Build with a validated :class:`TrainConfig`."""

    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        default = getattr(getattr(cls, "config_class", None), "name", None)
        if not isinstance(getattr(cls, "name", None), str) or default != cls.name:
            raise TypeError(
                f"{cls.__name__} must declare `name` and a `config_class` whose name defaults to it"
            )

    def __init__(self, config: TrainConfig, info: distributed.DistInfo | None = None) -> None:
        if not isinstance(config.trainer, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__} as config.trainer")
        self.cfg, self.tcfg = config, config.trainer
        self.info = info or distributed.init_distributed(device=_device(config.device))
        self.data_dir = Path(config.data.dir)
        self.run_dir = Path(config.run_dir)
        self.store_dir = Path(config.data.store or self.run_dir / "store")
        agent_class = AGENTS.get(config.agent.name)
        self.interface = interface_of(agent_class)
        self.interface.check_task(config.data.task, f"agent {agent_class.name!r} (data.task)")
        d = config.data
        self.cameras = agent_cameras(self.interface, d.width, d.height, d.hfov)
        self.camera = self.cameras[0]
        self.goal_camera = goal_camera(self.interface, d.width, d.height, d.hfov)
        self.state = TrainerState()
        self.model: nn.Module | None = None  # the loss module, wrapped for DDP/FSDP by setup()
        self.sharded = False
        self.blank = tuple(config.ablation.blank)
        self._train_env = None
        self._saved: dict[str, Any] | None = None
        self._benchmarks: dict[int | None, Any] = {}

    # ------------------------------------------------------------------------------ the schedule (subclasses)
    @abc.abstractmethod
    def rounds(self) -> list[Round]:
        """The rounds to run, in order."""

    def collect(self, round: Round) -> dict[str, float]:
        """Bring ``round``'s episodes into the store, skipping slots already there; returns ``collect/*``.

        The environment's expert acts with probability ``round.beta``, else the agent (sampled actions);
        every step is labelled with the expert's action (:mod:`trainers.data.collect`). Ranks collect
        disjoint slots. A round of ``n_episodes=0`` collects nothing and trains on the store as it is.
        """
        from trainers.data.collect import collect, episode_plan, make_env, round_totals

        if round.n_episodes == 0:
            n_stored = len(TrajectoryStore(self.store_dir, readonly=True))
            if not n_stored:
                raise ValueError(
                    f"round {round.index} has n_episodes=0 (train on the store as it is), but the store "
                    f"{self.store_dir} is empty: give data.init_store or data.store"
                )
            return {"collect/round": round.index, "collect/episodes": 0, "collect/store_episodes": n_stored}

        d, interface = self.cfg.data, self.interface
        mode = d.action_mode or interface.action_mode
        if round.beta < 1.0 and mode != interface.action_mode:
            raise ValueError(
                f"data.action_mode={mode!r}: round {round.index} lets the agent act (beta={round.beta:.3f}), "
                f"which needs the agent's own action mode {interface.action_mode!r}"
            )
        if self._train_env is None:
            self._train_env = make_env(
                self.data_dir, d.train_split, d.width, d.height, d.hfov, task=d.task, camera=self.camera,
                cameras=self.cameras[1:], action_mode=mode, n_waypoints=max(interface.n_waypoints, 1),
                max_episode_steps=d.max_episode_steps,
            )  # fmt: skip
        env, info = self._train_env, self.info
        ids = [ep.episode_id for ep in env.dataset.episodes]
        plan = episode_plan(ids, round.n_episodes, self.cfg.seed, round.index)
        start = time.perf_counter()
        with gathered(self.model, self.sharded and round.beta < 1.0):  # the agent acts with whole weights
            results = collect(
                env, TrajectoryStore(self.store_dir), plan, round.index, round.beta,
                agent=self.policy() if round.beta < 1.0 else None, seed=self.cfg.seed,
                store_frames=self.cfg.data.store_frames, rank=info.rank, world_size=info.world_size,
                progress=info.is_main,
            )  # fmt: skip
        # Steps collected now give the rate; the round's episodes in the store (a resumed collection's too)
        # give the totals. The gather also waits for every rank's appends.
        steps = sum(distributed.all_gather_objects(sum(len(r.actions) for r in results)))
        n, _, success = round_totals(TrajectoryStore(self.store_dir, readonly=True), round.index)
        # Training after a collection does not depend on how much of it an interrupted run had done.
        distributed.seed_everything(self.cfg.seed + 7919 * (round.index + 1), info.rank)
        metrics = {"collect/round": round.index, "collect/beta": round.beta, "collect/episodes": n}
        metrics["collect/store_episodes"] = len(TrajectoryStore(self.store_dir, readonly=True))
        if n:
            metrics["collect/success"] = success / n
            metrics["collect/steps_per_s"] = steps / max(time.perf_counter() - start, 1e-9)
        return metrics

    # ------------------------------------------------------------------------------ the main loop
    def learn(self) -> dict[str, float]:
        """Run (or resume) every round; returns the final evaluation metrics (``{}`` without one)."""
        self.setup()
        st = self.state
        if reopen_finished(st, [r.epochs for r in self.rounds()]):
            logger.info("resume: the run had finished; training its last round on to %s", st)
        for round in self.rounds()[st.round :]:
            # 1. Collect this round's episodes into the aggregated store.
            if not st.collected:
                metrics = self.collect(round)
                distributed.barrier()
                st.collected = True
                self.log(metrics)
                self.save(tag="collected")
            # 2. Train epochs on everything collected so far (resuming mid-epoch where a checkpoint left off).
            loader, sampler = self.loader()
            while st.epoch < round.epochs:
                sampler.set_epoch(st.epochs_total)
                sampler.set_start(st.batch)
                self.train_epoch(loader, sampler)
                st.epoch, st.batch, st.epochs_total = st.epoch + 1, 0, st.epochs_total + 1
                # 3. Evaluate on the held-out split every few epochs.
                every = self.cfg.eval.every_epochs
                if every and st.epochs_total % every == 0:
                    self.evaluate(self.cfg.eval.n_episodes, tag="eval")
                # 4. Checkpoint every few epochs.
                every = self.cfg.checkpoint.every_epochs
                if every and st.epochs_total % every == 0:
                    self.save()
            st.round, st.collected, st.epoch = st.round + 1, False, 0
        # 5. The end: a final checkpoint (unless the last epoch's is it), then the final evaluation.
        if self._saved != asdict(self.state):
            self.save()
        final = self.evaluate(self.cfg.eval.final_n_episodes, tag="final") if self.cfg.eval.final else {}
        self.close()
        return final

    # ------------------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Seeds, run folder, store, agent, optimiser, scheduler and logger; restores the latest checkpoint
        when ``resume``."""
        cfg, info = self.cfg, self.info
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        distributed.seed_everything(cfg.seed, info.rank)
        if info.is_main:
            self._prepare_run_dir()
        distributed.barrier()
        ckpt = latest_checkpoint(self.run_dir) if cfg.resume else None
        self.agent = Agent.load(ckpt / "agent") if ckpt else self.build_agent()
        self.agent.to(info.device)
        strategy = cfg.distributed
        # FSDP shards the agent's declared units on their own and the rest as one unit around the loss.
        units = {"shard_modules": list(self.agent.fsdp_units)} if strategy == "fsdp" else {}
        self.model = distributed.wrap_model(
            LossModule(self.agent), info, strategy, find_unused_parameters=True, **units
        )
        self.sharded = strategy == "fsdp" and info.distributed  # parameters are shards: gather to save
        # Built partially so that the parameter groups (dicts of tensors) stay out of OmegaConf's hands.
        self.optimizer = instantiate(asdict(cfg.optim), _partial_=True)(self.agent.param_groups())
        self.scheduler = instantiate(cfg.scheduler, optimizer=self.optimizer) if cfg.scheduler else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self._amp_dtype() == torch.float16)
        if ckpt is not None:
            optimizer = ShardedOptimizer(self.model, self.optimizer) if self.sharded else self.optimizer
            state = load_checkpoint(ckpt, optimizer, self.scheduler, rank=info.rank)
            self.state = TrainerState(**state.extra_state["trainer"])
            logger.info("resumed %s at step %d (%s)", ckpt, state.step, self.state)
        config = to_dict(cfg)
        self.metrics = MetricsLogger(
            self.run_dir, cfg.logger.sinks, cfg.logger.project, config=config, enabled=info.is_main
        )

    def _prepare_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        from omegaconf import OmegaConf

        text = OmegaConf.to_yaml(to_dict(self.cfg))
        saved = self.run_dir / "config.yaml"
        if self.cfg.resume and saved.is_file() and (changes := changed_keys(saved.read_text(), text)):
            logger.warning("resume: %s now runs with another config: %s", self.run_dir, "; ".join(changes))
        saved.write_text(text)
        write_dataset_record(self.run_dir, self.data_dir)
        handler = logging.FileHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        init = self.cfg.data.init_store
        if init and not (self.store_dir / "store.json").exists():
            logger.info("copying the initial store %s into %s", init, self.store_dir)
            shutil.copytree(init, self.store_dir, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
        TrajectoryStore(self.store_dir)

    def build_agent(self) -> Agent:
        """A fresh agent from ``config.agent`` with the training split's vocabulary."""
        split = load_episodes(self.data_dir / self.cfg.data.train_split, self.data_dir / "scenes")
        if split.vocab is not None:
            return make_agent(self.cfg.agent.name, self.cfg.agent, vocab=split.vocab)
        texts = [ep.instruction.instruction_text for ep in split.episodes]
        return make_agent(self.cfg.agent.name, self.cfg.agent, instructions=texts)

    def loader(self) -> tuple[DataLoader, LengthBucketBatchSampler | WindowBatchSampler]:
        """The aggregated training data (every round so far) in batches of this rank, shaped by the agent's
        ``sample``: length-bucketed padded trajectories, shuffled windows or shuffled pixel-goal queries."""
        d, spec = self.cfg.data, self.agent.sample
        if d.augment and spec.kind != "trajectory":
            raise ValueError(
                f"data.augment colours whole trajectories; agent {self.cfg.agent.name!r} trains on "
                f"{spec.kind!r} samples (a pixel-goal agent augments through its own SampleSpec.augment)"
            )
        where = (self.store_dir, self.data_dir / "scenes", self.camera)
        common = {"extra_cameras": self.cameras[1:], "goal_camera": self.goal_camera, "frames": d.frames}
        common["transform"] = self.agent.item_transform()
        shard = {"seed": self.cfg.seed, "rank": self.info.rank, "world_size": self.info.world_size}
        if spec.kind == "pixel_goal":  # the look-down camera is one the agent declares (SampleSpec.lookdown)
            lookdown = next(c for c in self.cameras if c.uuid == spec.lookdown)
            dataset = PixelGoalDataset(
                *where, spec, lookdown, d.frames, transform=common["transform"], seed=self.cfg.seed
            )
            sampler = PixelGoalBatchSampler(len(dataset), d.batch_size, **shard)
            return make_loader(dataset, sampler, d.num_workers, collate_pixel_goals), sampler
        if spec.kind == "window":
            dataset = WindowDataset(*where, spec, **common)
            sampler = WindowBatchSampler(len(dataset), d.batch_size, **shard)
            return make_loader(dataset, sampler, d.num_workers, collate_windows), sampler
        dataset = TrajectoryDataset(*where, **common, augment=d.augment, seed=self.cfg.seed)
        sampler = LengthBucketBatchSampler(
            dataset.lengths, d.batch_size, d.block_batches, **shard, with_epoch=d.augment
        )
        return make_loader(dataset, sampler, d.num_workers, collate_trajectories), sampler

    # ------------------------------------------------------------------------------ training
    def train_epoch(self, loader, sampler: LengthBucketBatchSampler | WindowBatchSampler) -> None:
        """Train on this rank's remaining batches of the epoch; logs and checkpoints on the way."""
        self.agent.train()
        window: list[dict[str, float]] = []
        start, samples = time.perf_counter(), 0
        for batch in loader:
            info = self.train_step(batch)
            self.state.batch += 1
            self.state.step += 1
            n = sample_count(batch) * self.info.world_size
            samples += n
            self.state.samples += n
            window.append(info)
            if self.state.step % self.cfg.logger.every_steps == 0:
                rate = samples / max(time.perf_counter() - start, 1e-9)
                self.log({**_mean(window), "time/samples_per_s": rate})
                window, start, samples = [], time.perf_counter(), 0
            every = self.cfg.checkpoint.every_steps
            if every and self.state.step % every == 0:
                self.save()

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One optimiser update on a padded batch; returns ``train/*`` metrics."""
        if self.blank:
            batch = blank_inputs(batch, self.blank)
        dtype = self._amp_dtype()
        autocast = torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss, info = self.model(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        clip = self.tcfg.grad_clip
        norm = nn.utils.clip_grad_norm_(self.agent.parameters(), clip if clip > 0 else float("inf"))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        self.agent.after_step(self.state.step + 1)
        out = {"train/loss": float(loss.detach()), "train/grad_norm": float(norm)}
        out["train/lr"] = self.optimizer.param_groups[0]["lr"]
        out.update({f"train/{k.replace('/', '_')}": float(v) for k, v in info.items()})
        return out

    def _amp_dtype(self) -> torch.dtype | None:
        if self.cfg.amp == "none" or self.info.device.type != "cuda":
            return None
        return torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16

    # ------------------------------------------------------------------------------ evaluation
    def policy(self) -> Any:
        """The acting policy for rollouts: the agent, behind the ablation's input blanking when set."""
        return BlankedInputs(self.agent, self.blank) if self.blank else self.agent

    def benchmark_name(self) -> str:
        """``eval.benchmark``, else the benchmark of ``data.task``: ``vln_<split>`` or ``system1_<task>`` (run
        on ``eval.split`` either way)."""
        from benchmarks.base import BENCHMARKS

        e, task = self.cfg.eval, self.cfg.data.task
        if e.benchmark:
            return e.benchmark
        if task != "vln":
            return f"system1_{task}"
        return f"vln_{e.split}" if f"vln_{e.split}" in BENCHMARKS else "vln_val_unseen"

    def evaluate(self, n_episodes: int | None, tag: str = "eval") -> dict[str, float]:
        """Evaluate on ``eval.split`` with the benchmark :meth:`benchmark_name` from ``benchmarks``' registry
        (the rollout loop; episodes sharded across ranks); logs ``<tag>/<metric>`` and returns them. The
        agent's train/eval mode is restored."""
        from benchmarks.base import BENCHMARKS

        e = self.cfg.eval
        if n_episodes not in self._benchmarks:
            spec = BENCHMARKS.get(self.benchmark_name())
            self.interface.check_task(spec.task, f"agent {self.agent.name!r} (eval.benchmark={spec.name})")
            self._benchmarks[n_episodes] = spec.build(
                self.data_dir, split=e.split, scenes_dir=self.data_dir / "scenes", n_episodes=n_episodes,
                seed=e.seed, width=self.camera.width, height=self.camera.height, hfov=self.camera.hfov,
                max_episode_steps=e.max_episode_steps,
            )  # fmt: skip
        out_dir = self.run_dir / "eval" / tag if tag == "final" else None
        with gathered(self.model, self.sharded):  # the agent acts with whole weights
            summary, _ = self._benchmarks[n_episodes].run(
                self.policy(),
                out_dir,
                label=f"{self.agent.name}@{self.state.step}",
                deterministic=e.deterministic,
            )
        metrics = {f"{tag}/{k}": v for k, v in summary["metrics"].items()}
        metrics[f"{tag}/episodes"] = summary["count"]
        self.log(metrics)
        return metrics

    # ------------------------------------------------------------------------------ logging and checkpoints
    def log(self, metrics: dict[str, float]) -> None:
        """Log on rank 0 at the current step."""
        if metrics:
            self.metrics.log(metrics, self.state.step)
            logger.info("step %d: %s", self.state.step, {k: round(v, 4) for k, v in metrics.items()})

    def save(self, tag: str = "") -> None:
        """Checkpoint the agent, optimiser, scheduler, every rank's RNG and the trainer state (rank 0
        writes)."""
        rng = distributed.all_gather_objects(capture_rng_state())
        agent, optimizer = self.agent, self.optimizer
        if self.sharded:  # gathering the shards is a collective: every rank joins, rank 0 writes
            weights, optimizer_state = gather_full_states(self.model, self.optimizer)
            agent, optimizer = AgentSnapshot(self.agent, weights), OptimizerSnapshot(optimizer_state)
        if self.info.is_main:
            extra = {"trainer": asdict(self.state), "tag": tag}
            save_checkpoint(
                self.run_dir, self.state.step, agent, optimizer, self.scheduler,
                extra_state=extra, config=to_dict(self.cfg), keep_last=self.cfg.checkpoint.keep_last,
                rng_states=rng,
            )  # fmt: skip
        self._saved = asdict(self.state)
        distributed.barrier()

    def close(self) -> None:
        """Close the logger and the environments."""
        self.metrics.close()
        for bench in self._benchmarks.values():
            bench.close()
        if self._train_env is not None:
            self._train_env.close()
            self._train_env = None


def _device(device: str) -> str | None:
    return None if device == "auto" else device


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} if rows else {}


def make_trainer(config: TrainConfig, info: distributed.DistInfo | None = None) -> Trainer:
    """The registered trainer named by ``config.trainer.name`` (``import trainers`` registers them), for a
    trainable agent."""
    agent_class = AGENTS.get(config.agent.name)
    if not agent_class.is_trainable:
        raise ValueError(
            f"agent {config.agent.name!r} is not trainable; trainable agents: {trainable_agents()}"
        )
    return TRAINERS.get(config.trainer.name)(config, info)


def trainable_agents() -> list[str]:
    """Registry names of the agents a trainer can train."""
    return [n for n in AGENTS.names() if AGENTS.get(n).is_trainable]
