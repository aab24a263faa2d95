"""PPO with GAE for the DD-PPO agent (``trainer=ppo``), decentralised over ``torchrun`` ranks as DD-PPO.

Each update: every rank collects a rollout of ``rollout_steps`` steps from its own ``num_envs`` environments
(:mod:`trainers.rl.envs`: the task's geodesic progress plus habitat's success bonus and slack penalty),
stopping early under DD-PPO's preemption threshold (:mod:`trainers.rl.preemption`); computes GAE(γ, λ) from
the value of the state after its last step; then runs ``epochs`` epochs of ``num_mini_batch`` minibatches of
whole environment sequences, each re-run from its initial LSTM state (:mod:`trainers.rl.rollout`), with the
clipped surrogate, the clipped value loss and the entropy bonus
(:func:`agents.baselines.ddppo.ppo.ppo_loss`). The loss module is wrapped in DDP, so gradients are averaged
over ranks; every rank runs the same number of minibatches whatever its rollout's length.

Run folder and checkpoints as every trainer (``metrics.jsonl`` logged at the environment-step count, so
curves are against environment steps; ``checkpoints/<update:06d>/``). A checkpoint also holds each rank's
environments (episodes started and actions since their reset, replayed on resume) and the agent's memory, so
a resumed run makes the same next update as the uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from agents.base import Agent
from agents.baselines.ddppo.ppo import PPOCoefficients, ppo_loss
from trainers import distributed
from trainers.base import TRAINERS, Trainer
from trainers.checkpoint import capture_rng_state, latest_checkpoint, load_checkpoint, save_checkpoint
from trainers.config import PPOConfig, to_dict
from trainers.metrics import MetricsLogger
from trainers.rl.envs import episode_stats, make_vector_env
from trainers.rl.preemption import PreemptionCounter
from trainers.rl.rollout import RolloutBuffer, recurrent_minibatches
from trainers.schedule import Round

logger = logging.getLogger(__name__)


@dataclass
class PPOState:
    """The resumable position: updates done and environment steps collected over every rank."""

    update: int = 0
    env_steps: int = 0


class PPOLoss(nn.Module):
    """``forward(batch) = ppo_loss(agent, batch, coef)``: the module DDP wraps."""

    def __init__(self, agent: Agent, coef: PPOCoefficients) -> None:
        super().__init__()
        self.agent, self.coef = agent, coef

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The PPO loss of a minibatch of sequences."""
        return ppo_loss(self.agent, batch, self.coef)


def _stack(obs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


@TRAINERS.register("ppo")
class PPOTrainer(Trainer):
    """PPO / DD-PPO; see the module docstring."""

    name = "ppo"
    config_class = PPOConfig

    def __init__(self, config, info: distributed.DistInfo | None = None) -> None:
        super().__init__(config, info)
        d = config.data
        if d.width != d.height:
            raise ValueError(
                f"trainer=ppo renders square depth: data.width={d.width}, data.height={d.height}"
            )

    def rounds(self) -> list[Round]:
        """Unused: PPO runs updates, not collect-and-train rounds."""
        return []

    # ------------------------------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Seeds, run folder, agent, optimiser, environments; restores the latest checkpoint when
        ``resume`` (weights, optimiser, RNG, environments and the agent's memory)."""
        cfg, info, c = self.cfg, self.info, self.tcfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        distributed.seed_everything(cfg.seed, info.rank)
        if info.is_main:
            self._prepare_run_dir()
        distributed.barrier()
        ckpt = latest_checkpoint(self.run_dir) if cfg.resume else None
        self.agent = Agent.load(ckpt / "agent") if ckpt else self.build_agent()
        self.agent.to(info.device)
        coef = PPOCoefficients(c.clip, c.value_coef, c.entropy_coef)
        self.model = distributed.wrap_model(
            PPOLoss(self.agent, coef), info, "ddp", find_unused_parameters=True
        )
        from hydra.utils import instantiate

        self.optimizer = instantiate(asdict(cfg.optim), _partial_=True)(self.agent.param_groups())
        self.scheduler = instantiate(cfg.scheduler, optimizer=self.optimizer) if cfg.scheduler else None
        self.ppo = PPOState()
        d = cfg.data
        self.envs = make_vector_env(
            self.data_dir, d.train_split, c.num_envs, d.width, d.hfov, d.max_episode_steps, info.rank,
            cfg.seed, c.vector, c.success_reward, c.slack_reward, camera_height=self.camera.position[1],
        )  # fmt: skip
        self.counter = PreemptionCounter(info.world_size, c.sync_frac, c.short_rollout_fraction)
        if ckpt is not None:
            state = load_checkpoint(ckpt, self.optimizer, self.scheduler, rank=info.rank)
            self.ppo = PPOState(**state.extra_state["ppo"])
            saved = state.extra_state["rollout"]
            if len(saved) != info.world_size:
                raise ValueError(
                    f"{ckpt}: saved by {len(saved)} rank(s); resume with as many (running {info.world_size})"
                )
            mine = saved[info.rank]
            if len(mine["envs"]) != c.num_envs:
                raise ValueError(
                    f"{ckpt}: saved with trainer.num_envs={len(mine['envs'])}, resumed with {c.num_envs}"
                )
            self.obs = _stack(list(self.envs.call("restore", mine["envs"])))
            self.agent.set_memory({k: torch.tensor(v) for k, v in mine["memory"].items()})
            logger.info("resumed %s at update %d (%d env steps)", ckpt, self.ppo.update, self.ppo.env_steps)
        else:
            self.obs, _ = self.envs.reset(seed=cfg.seed)
            self.agent.reset(c.num_envs)
        self.metrics = MetricsLogger(
            self.run_dir, cfg.logger.sinks, cfg.logger.project, config=to_dict(cfg), enabled=info.is_main
        )

    # ------------------------------------------------------------------------------------------ the loop
    def learn(self) -> dict[str, float]:
        """Run (or resume) updates until ``total_steps`` environment steps; returns the final evaluation."""
        self.setup()
        c = self.tcfg
        while self.ppo.env_steps < c.total_steps:
            self.update()
            if c.checkpoint_every and self.ppo.update % c.checkpoint_every == 0:
                self.save()
            if c.eval_every and self.ppo.update % c.eval_every == 0:
                self.evaluate(self.cfg.eval.n_episodes, tag="eval")
        if self._saved != asdict(self.ppo):
            self.save()
        final = self.evaluate(self.cfg.eval.final_n_episodes, tag="final") if self.cfg.eval.final else {}
        self.close()
        return final

    def collect(self) -> tuple[dict[str, torch.Tensor], list[dict[str, float]], int]:
        """One rollout of this rank (preemptible); returns the data with advantages, the ended episodes'
        measures and the steps collected per environment."""
        c, agent, update = self.tcfg, self.agent, self.ppo.update
        agent.eval()
        buffer = RolloutBuffer(agent.memory()["state"])
        episodes: list[dict[str, float]] = []
        for step in range(c.rollout_steps):
            inputs = agent.inputs(self.obs)
            memory = agent.memory()
            out = agent.step(inputs, deterministic=False)
            actions = out["actions"].cpu().numpy()
            obs, rewards, terminated, truncated, info = self.envs.step(actions)
            dones = np.logical_or(terminated, truncated)
            buffer.add(
                **inputs, prev_actions=memory["prev_actions"], not_done=memory["not_done"],
                actions=out["actions"], old_log_probs=out["log_probs"], old_values=out["values"],
                rewards=torch.as_tensor(rewards, dtype=torch.float32), dones=torch.as_tensor(dones),
            )  # fmt: skip
            episodes += episode_stats(info)
            if dones.any():
                fresh, _ = self.envs.reset(options={"reset_mask": dones})
                obs = {
                    k: np.where(dones.reshape(-1, *[1] * (v.ndim - 1)), fresh[k], v) for k, v in obs.items()
                }
                agent.reset(c.num_envs, np.flatnonzero(dones))
            self.obs = obs
            if self.counter.should_stop(update, step + 1, c.rollout_steps):
                break
        self.counter.finish(update)
        with torch.no_grad():  # V of the state after the last step, without advancing the memory
            memory = agent.memory()
            inputs = agent.inputs(self.obs)
            _, last_values, _ = agent.policy(
                inputs["depth"],
                inputs["pointgoal"],
                memory["prev_actions"],
                memory["not_done"],
                memory["state"],
            )
        data = buffer.finish(last_values, c.gamma, c.gae_lambda)
        if c.normalize_advantage:
            adv = data["advantages"]
            data["advantages"] = (adv - adv.mean()) / (adv.std() + 1e-5)
        return data, episodes, len(buffer)

    def update(self) -> dict[str, float]:
        """Collect a rollout and run the PPO epochs on it; logs ``train/*``, ``rollout/*``, ``time/*``."""
        c = self.tcfg
        start = time.perf_counter()
        data, episodes, steps = self.collect()
        collect_s = time.perf_counter() - start
        self.agent.train()
        window: list[dict[str, float]] = []
        for _ in range(c.epochs):
            for batch in recurrent_minibatches(data, c.num_mini_batch):
                loss, loss_info = self.model(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip = c.grad_clip if c.grad_clip > 0 else float("inf")
                norm = nn.utils.clip_grad_norm_(self.agent.parameters(), clip)
                self.optimizer.step()
                window.append({"train/loss": float(loss.detach()), "train/grad_norm": float(norm), **{
                    f"train/{k.replace('/', '_')}": v for k, v in loss_info.items()
                }})  # fmt: skip
        if self.scheduler is not None:
            self.scheduler.step()
        gathered = distributed.all_gather_objects((steps * c.num_envs, episodes))
        new_steps = sum(g[0] for g in gathered)
        ended = [e for g in gathered for e in g[1]]
        self.ppo.update += 1
        self.ppo.env_steps += new_steps
        metrics = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        metrics["train/lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["rollout/steps"] = steps
        metrics["rollout/episodes"] = len(ended)
        if ended:
            for key, name in (("ep_success", "success"), ("ep_spl", "spl"), ("ep_return", "reward")):
                metrics[f"rollout/{name}"] = float(np.mean([e[key] for e in ended]))
            metrics["rollout/episode_length"] = float(np.mean([e["ep_length"] for e in ended]))
        metrics["time/env_steps_per_s"] = new_steps / max(collect_s, 1e-9)
        metrics["time/update_s"] = time.perf_counter() - start
        metrics["train/update"] = self.ppo.update
        self.log(metrics)
        return metrics

    # ------------------------------------------------------------------------------ logging and checkpoints
    def log(self, metrics: dict[str, float]) -> None:
        """Log on rank 0 at the environment-step count."""
        if metrics:
            self.metrics.log(metrics, self.ppo.env_steps)
        if metrics and self.info.is_main:
            logger.info("env step %d: %s", self.ppo.env_steps, {k: round(v, 4) for k, v in metrics.items()})

    def save(self, tag: str = "") -> None:
        """Checkpoint the agent, optimiser, every rank's RNG, environments and agent memory (rank 0
        writes)."""
        rng = distributed.all_gather_objects(capture_rng_state())
        memory = {k: v.cpu().tolist() for k, v in self.agent.memory().items()}
        rollout = distributed.all_gather_objects({"envs": list(self.envs.call("snapshot")), "memory": memory})
        if self.info.is_main:
            extra = {"ppo": asdict(self.ppo), "rollout": rollout, "tag": tag}
            save_checkpoint(
                self.run_dir, self.ppo.update, self.agent, self.optimizer, self.scheduler, extra_state=extra,
                config=to_dict(self.cfg), keep_last=self.cfg.checkpoint.keep_last, rng_states=rng,
            )  # fmt: skip
        self._saved = asdict(self.ppo)
        distributed.barrier()

    def close(self) -> None:
        """Close the logger, the benchmarks and the environments."""
        super().close()
        self.envs.close()
