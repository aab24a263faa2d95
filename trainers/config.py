"""Structured configs of ``trainers/run.py``: dataclasses stored in Hydra's ConfigStore.

The primary config ``configs/train.yaml`` extends ``train_schema`` (:class:`TrainConfig`) and picks an
agent (group ``agent``, schemas from :mod:`agents.hydra_configs`), a trainer (group ``trainer``: ``bc`` or
``dagger``) and a logger preset (group ``logger``). Every node is typed and closed, so a misspelt key fails
when the config is composed, naming the key; :func:`to_config` builds the dataclasses, whose
``__post_init__`` checks the values and names the bad one, and refuses a key added with ``+key=value`` that
the schema does not know (rather than dropping it). Optimisers and schedulers are third-party leaves selected
with ``_target_``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

AMP_MODES = ("none", "bf16", "fp16")
#: Tasks with an expert to imitate.
TRAIN_TASKS = ("vln", "pointnav", "imagenav")
BLANKABLE = ("instruction", "vision")


def _check(ok: bool, where: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"{where} must be {expected}, got {value!r}")


@dataclass
class TrainDataConfig:
    """Where training and evaluation episodes come from, and how batches are made.

    Attributes:
        dir: dataset root in the R2R-CE layout (``DIR/{split}/{split}.json.gz``, scenes in ``DIR/scenes``).
        task: the task whose episodes are collected (``vln``, ``pointnav``, ``imagenav``); one of the agent's
            declared ``tasks``.
        action_mode: the action mode of collection (None: the agent's). ``discrete`` records the expert's
            dense 0.25 m / 15° steps, whose future poses are the targets of a waypoint agent's windows;
            rounds in which the agent acts (β < 1) need the agent's own mode.
        train_split: split that episodes are collected from.
        store: trajectory store folder (None: ``<run_dir>/store``).
        init_store: a store copied into ``store`` before training when ``store`` is empty (e.g. expert data
            collected once with ``python -m trainers.data.collect`` and shared by several runs).
        width, height, hfov: the camera of collection, training frames and evaluation (pixels, degrees).
        store_frames: store observed frames with each episode (else frames are rendered on read).
        frames: ``auto``, ``render`` or ``stored`` (see ``TrajectoryDataset``).
        batch_size: samples per batch per rank: whole trajectories (VLN-CE: 5) or windows, as the agent's
            ``sample`` says.
        block_batches: batches per length-sorted block (VLN-CE: 100).
        num_workers: DataLoader worker processes (0: load in the training process).
        max_episode_steps: step limit of collection episodes (None: the task's 500).
        augment: colour-augment the RGB of whole-trajectory samples (brightness/saturation jitter,
            posterise, sharpness, autocontrast; one draw per episode and epoch, seeded by the run's seed).
    """

    dir: str = MISSING
    task: str = "vln"
    action_mode: str | None = None
    train_split: str = "train"
    store: str | None = None
    init_store: str | None = None
    width: int = 64
    height: int = 64
    hfov: float = 90.0
    store_frames: bool = False
    frames: str = "auto"
    batch_size: int = 5
    block_batches: int = 100
    num_workers: int = 0
    max_episode_steps: int | None = None
    augment: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "height", "batch_size", "block_batches"):
            _check(getattr(self, name) >= 1, f"data.{name}", getattr(self, name), "a positive integer")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, ">= 0")
        _check(self.frames in ("auto", "render", "stored"), "data.frames", self.frames, "auto|render|stored")
        _check(self.task in TRAIN_TASKS, "data.task", self.task, f"one of {list(TRAIN_TASKS)}")
        modes = (None, "discrete", "waypoint")
        _check(self.action_mode in modes, "data.action_mode", self.action_mode, "null, discrete or waypoint")


@dataclass
class OptimizerConfig:
    """The optimiser, built with ``hydra.utils.instantiate(cfg, params=...)`` (VLN-CE: Adam, lr 2.5e-4)."""

    _target_: str = "torch.optim.Adam"
    lr: float = 2.5e-4
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", self.lr, "> 0")


@dataclass
class TrainEvalConfig:
    """Periodic and final evaluation during training, through a registered benchmark (the rollout loop).

    Attributes:
        benchmark: a ``benchmarks.base.BENCHMARKS`` name (None: ``vln_<split>`` for VLN, ``system1_<task>``
            for the System-1 tasks); it must run a task the agent accepts.
        split: the split evaluated.
        n_episodes: episodes of periodic evaluations (the split's first ones; None: all).
        every_epochs: evaluate after every this many epochs (0: never during training).
        final: evaluate at the end of training.
        final_n_episodes: episodes of the final evaluation (None: the whole split).
        deterministic: argmax actions (VLN-CE: yes).
        seed: seed of the environment's first reset.
        max_episode_steps: step limit (None: the task's 500, the protocol's).
    """

    benchmark: str | None = None
    split: str = "val_unseen"
    n_episodes: int | None = 20
    every_epochs: int = 1
    final: bool = True
    final_n_episodes: int | None = None
    deterministic: bool = True
    seed: int = 0
    max_episode_steps: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("n_episodes", self.n_episodes), ("final_n_episodes", self.final_n_episodes)):
            ok = value is None or (isinstance(value, int) and value >= 1)
            hint = " (eval.every_epochs=0 / eval.final=false turn evaluations off)"
            _check(ok, f"eval.{name}", value, "null or an int >= 1" + hint)
        _check(self.every_epochs >= 0, "eval.every_epochs", self.every_epochs, "an int >= 0")
        steps = self.max_episode_steps
        _check(steps is None or steps >= 1, "eval.max_episode_steps", steps, "null or an int >= 1")


@dataclass
class CheckpointConfig:
    """When checkpoints are written (besides the end of training).

    Attributes:
        every_steps: after every this many optimiser steps (0: off).
        every_epochs: after every this many epochs (0: off).
        keep_last: keep only this many most recent checkpoints (None: all).
    """

    every_steps: int = 0
    every_epochs: int = 1
    keep_last: int | None = None


@dataclass
class LoggerConfig:
    """Metric sinks (``jsonl`` is always on) and how often training metrics are logged."""

    sinks: list[str] = field(default_factory=lambda: ["jsonl"])
    project: str = "navgym"
    every_steps: int = 10

    def __post_init__(self) -> None:
        bad = [s for s in self.sinks if s not in ("jsonl", "tensorboard", "wandb")]
        _check(not bad, "logger.sinks", list(self.sinks), "a list of jsonl, tensorboard, wandb")


@dataclass
class AblationConfig:
    """Inputs blanked for training and evaluation: instructions become empty (all PAD tokens), RGB and depth
    frames become zeros."""

    blank: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        bad = [b for b in self.blank if b not in BLANKABLE]
        _check(not bad, "ablation.blank", list(self.blank), f"a list of {list(BLANKABLE)}")


@dataclass
class TrainerConfig:
    """Settings every trainer shares.

    Attributes:
        name: registry key of the trainer (``bc``, ``dagger``).
        epochs: training epochs over the data (per round for DAgger).
        grad_clip: maximum gradient norm (0: no clipping).
    """

    name: str = MISSING
    epochs: int = 1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"trainer.epochs ({self.name})", self.epochs, ">= 1")
        _check(self.grad_clip >= 0, "trainer.grad_clip", self.grad_clip, ">= 0")


@dataclass
class BCConfig(TrainerConfig):
    """Teacher forcing on expert episodes (VLN-CE: one pass over the split, 15 / 45 epochs).

    Attributes:
        n_episodes: expert episodes collected (None: the whole split once; 0: none, train on the episodes
            already in the store, e.g. a ``data.init_store`` of generated System-1 trajectories).
    """

    name: str = "bc"
    epochs: int = 4
    n_episodes: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = self.n_episodes is None or self.n_episodes >= 0
        _check(ok, "trainer.n_episodes", self.n_episodes, "null or an int >= 0")


@dataclass
class DAggerConfig(TrainerConfig):
    """DAgger (Ross et al. 2011) as in VLN-CE: round i collects ``episodes_per_round`` episodes executing the
    expert with probability β = p^(i + beta_offset) (round 0: pure expert), aggregates them with every
    earlier round, and trains ``epochs`` epochs on the aggregate. VLN-CE: 10 rounds × 5,000, p 0.75, 4 epochs.

    Attributes:
        rounds: number of rounds R.
        episodes_per_round: episodes collected per round.
        first_round_episodes: episodes of round 0 when it is pure expert data (β = 1), e.g. the whole split
            (None: ``episodes_per_round``, as VLN-CE).
        p: base of the β schedule, in [0, 1].
        beta_offset: added to the exponent (VLN-CE adds 1 when starting from a checkpoint).
    """

    name: str = "dagger"
    epochs: int = 2
    rounds: int = 3
    episodes_per_round: int = 100
    first_round_episodes: int | None = None
    p: float = 0.75
    beta_offset: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.rounds >= 1, "trainer.rounds", self.rounds, ">= 1")
        _check(self.episodes_per_round >= 1, "trainer.episodes_per_round", self.episodes_per_round, ">= 1")
        first = self.first_round_episodes
        _check(first is None or first >= 1, "trainer.first_round_episodes", first, ">= 1 or null")
        _check(0.0 <= self.p <= 1.0, "trainer.p", self.p, "in [0, 1]")
        _check(self.beta_offset >= 0, "trainer.beta_offset", self.beta_offset, ">= 0")


@dataclass
class PPOConfig(TrainerConfig):
    """PPO with GAE, decentralised over ``torchrun`` ranks as DD-PPO (defaults: habitat's
    ``ddppo_pointnav.yaml`` where a CPU allows; see :mod:`trainers.ppo`).

    Attributes:
        epochs: PPO epochs over each rollout (habitat: 2). grad_clip: max gradient norm (habitat: 0.2).
        total_steps: environment steps to train for, over every rank.
        num_envs: environments per rank (habitat: 4 per GPU).
        rollout_steps: steps T per environment and rollout (habitat: 128).
        num_mini_batch: minibatches of whole environment sequences per epoch (habitat: 2).
        clip, value_coef, entropy_coef: the PPO objective (0.2, 0.5, 0.01).
        gamma, gae_lambda: GAE(γ, λ) (0.99, 0.95).
        normalize_advantage: standardise the advantages of each rollout (habitat's DD-PPO: off).
        success_reward, slack_reward: habitat's PointNav reward terms added to the geodesic progress.
        vector: ``async`` (a process per environment) or ``sync``.
        sync_frac: DD-PPO's preemption threshold (fraction of ranks done collecting; habitat 0.6).
        short_rollout_fraction: a rank collects at least this fraction of its rollout (habitat 0.25).
        checkpoint_every: updates between checkpoints (0: only at the end).
        eval_every: updates between evaluations (0: only the final one).
    """

    name: str = "ppo"
    epochs: int = 2
    grad_clip: float = 0.2
    total_steps: int = 20000
    num_envs: int = 4
    rollout_steps: int = 64
    num_mini_batch: int = 2
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    gamma: float = 0.99
    gae_lambda: float = 0.95
    normalize_advantage: bool = False
    success_reward: float = 2.5
    slack_reward: float = -0.01
    vector: str = "async"
    sync_frac: float = 0.6
    short_rollout_fraction: float = 0.25
    checkpoint_every: int = 10
    eval_every: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("total_steps", "num_envs", "rollout_steps", "num_mini_batch"):
            _check(getattr(self, name) >= 1, f"trainer.{name}", getattr(self, name), ">= 1")
        _check(self.num_mini_batch <= self.num_envs, "trainer.num_mini_batch", self.num_mini_batch,
               f"<= trainer.num_envs={self.num_envs}")  # fmt: skip
        _check(0 < self.clip, "trainer.clip", self.clip, "> 0")
        _check(0 <= self.gamma <= 1, "trainer.gamma", self.gamma, "in [0, 1]")
        _check(0 <= self.gae_lambda <= 1, "trainer.gae_lambda", self.gae_lambda, "in [0, 1]")
        _check(self.vector in ("async", "sync"), "trainer.vector", self.vector, "async or sync")
        _check(self.sync_frac > 0, "trainer.sync_frac", self.sync_frac, "> 0")
        frac = self.short_rollout_fraction
        _check(0 <= frac <= 1, "trainer.short_rollout_fraction", frac, "in [0, 1]")
        _check(self.checkpoint_every >= 0, "trainer.checkpoint_every", self.checkpoint_every, ">= 0")
        _check(self.eval_every >= 0, "trainer.eval_every", self.eval_every, ">= 0")


@dataclass
class TrainConfig:
    """The whole training run (the primary config's schema).

    Attributes:
        agent: the agent's config (group ``agent``; its ``name`` is the registry key).
        trainer: the trainer's config (group ``trainer``).
        run_dir: the run folder (None: ``runs/<agent>-<trainer>-<timestamp>``; with ``resume`` the newest such
            folder).
        resume: continue from the run folder's latest checkpoint.
        overwrite: empty an existing run folder first (without ``resume`` or ``overwrite``, a run folder that
            already holds anything is refused).
        seed: seeds everything (rank r uses seed + r).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: autocast dtype on GPU (``none``, ``bf16``, ``fp16``); ignored on CPU.
        threads: torch intra-op threads per process (0: torch's default).
        distributed: how ranks under ``torchrun`` share the model: ``ddp`` (a full replica per rank) or
            ``fsdp`` (FSDP2: parameters, gradients and optimiser state sharded over the ranks, for models that
            do not fit one device; checkpoints hold the gathered whole weights either way).
        scheduler: an optional ``torch.optim.lr_scheduler`` node with ``_target_`` (stepped per update).
    """

    agent: Any = MISSING
    trainer: Any = MISSING
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    optim: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: Any = None
    eval: TrainEvalConfig = field(default_factory=TrainEvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    run_dir: str | None = None
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    threads: int = 0
    distributed: str = "ddp"

    def __post_init__(self) -> None:
        _check(self.amp in AMP_MODES, "amp", self.amp, f"one of {list(AMP_MODES)}")
        _check(self.device in ("auto", "cpu", "cuda"), "device", self.device, "auto, cpu or cuda")
        _check(self.threads >= 0, "threads", self.threads, ">= 0")
        _check(self.distributed in ("ddp", "fsdp"), "distributed", self.distributed, "ddp or fsdp")
        _check(not (self.resume and self.overwrite), "overwrite", self.overwrite, "false with resume=true")


def register_configs(cs: ConfigStore | None = None) -> ConfigStore:
    """Store the schemas: ``train_schema``, ``trainer/{bc,dagger,ppo}_schema``, ``logger/logger_schema`` and
    every agent's ``agent/<name>_schema`` (through :func:`agents.hydra_configs.register_agent_configs`)."""
    from agents.hydra_configs import register_agent_configs

    cs = cs or ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="trainer", name="bc_schema", node=BCConfig)
    cs.store(group="trainer", name="dagger_schema", node=DAggerConfig)
    cs.store(group="trainer", name="ppo_schema", node=PPOConfig)
    cs.store(group="logger", name="logger_schema", node=LoggerConfig)
    register_agent_configs(cs)
    return cs


def to_config(cfg: DictConfig | TrainConfig) -> TrainConfig:
    """The validated dataclasses of a composed config (``__post_init__`` of every node runs).

    Raises:
        ValueError: a key the schema does not know (added with ``+key=value``), named with the valid fields.
    """
    from agents.hydra_configs import check_known_keys

    if dataclasses.is_dataclass(cfg):
        return cfg
    check_known_keys(cfg)
    return OmegaConf.to_object(cfg)


def to_dict(config: TrainConfig | DictConfig) -> dict[str, Any]:
    """A resolved plain dict of the config (what is saved in the run folder and in checkpoints)."""
    node = config if isinstance(config, DictConfig) else OmegaConf.structured(config)
    return OmegaConf.to_container(node, resolve=True)
