"""The NoMaD agent (Sridhar et al. 2023): goal-masked diffusion over waypoints, to an image goal or
exploring without one.

Inputs, frame spacing and the stop rule are :mod:`agents.baselines.visualnav`'s. **Acting**: the context
vector of the frames and the goal (masked without ``imagegoal`` or with ``goal=none``), then diffusers'
``DDPMScheduler(10, squaredcos_cap_v2, clip_sample, epsilon)`` denoises (B, 8, 2) Gaussian noise (when
deterministic, from each env's generator, seeded with ``sample_seed`` at its episode's start) into
normalised deltas, which are un-normalised (min (-2.5, -4), max (5, 4)), cumulated and scaled by
``waypoint_scale``; each waypoint's ``dyaw`` is the heading of its segment. The stop rule reads the
distance head only when a goal is given.

**Loss** (vint_train's ``train_nomad``, published): each sample's goal is masked with probability
``goal_mask_prob`` (0.5); ``alpha · MSE(distance) + (1 - alpha) · MSE(ε)`` with ``alpha = 1e-4``, the
distance MSE over the samples whose goal is not masked, ε-MSE on the normalised deltas of the window's
future positions noised at a uniform timestep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.base import AGENTS, as_tensor
from agents.baselines.nomad.config import NoMaDConfig
from agents.baselines.nomad.network import NoMaDNet
from agents.baselines.visualnav import (
    VisualNavAgent,
    masked_mean,
    normalize_deltas,
    positions_to_waypoints,
    unnormalize_deltas,
)
from agents.diffusion import EpisodeNoise, cosine_ddpm_scheduler, draw


def make_scheduler(config: NoMaDConfig) -> Any:
    """NoMaD's ``DDPMScheduler``: cosine betas, ε-prediction, samples clipped to [-1, 1]."""
    return cosine_ddpm_scheduler(config.num_diffusion_iters)


@AGENTS.register("nomad")
class NoMaDAgent(VisualNavAgent):
    """NoMaD; see the module docstring and :class:`agents.baselines.visualnav.VisualNavAgent`."""

    name = "nomad"
    config_class = NoMaDConfig

    def build_net(self, config: NoMaDConfig) -> nn.Module:
        """:class:`NoMaDNet` at the config's sizes (and the DDPM scheduler)."""
        c = config
        self.scheduler = make_scheduler(c)
        w = c.unet_width
        return NoMaDNet(
            c.context_size, c.encoding_size, (w, 2 * w, 4 * w), c.width, c.feature_dim, c.n_heads, c.n_layers,
            c.classifier, c.step_embed_dim,
        )  # fmt: skip

    def _init_state(self, n_envs: int) -> None:
        super()._init_state(n_envs)
        self._noise = EpisodeNoise(self.config.sample_seed, n_envs)

    def _clear_state(self, env_ids: np.ndarray) -> None:
        super()._clear_state(env_ids)
        self._noise.clear(env_ids)

    def encode(self, context: Tensor, goal: Tensor | None, goal_mask: Tensor) -> Tensor:
        """(B, d) context vector; a None goal is all masked (zeros in its place)."""
        if goal is None:
            goal = context.new_zeros(context.shape[0], 3, *context.shape[-2:])
        return self.net.vision_encoder(context, goal, goal_mask)

    def predict(self, obs: Mapping[str, Any], deterministic: bool) -> tuple[Tensor, Tensor]:
        """See :meth:`VisualNavAgent.predict`; the distance is +inf where the goal is masked."""
        c = self.config
        rgb = np.asarray(as_tensor(obs["rgb"]).cpu())
        context = self.context(rgb)
        b = context.shape[0]
        has_goal = c.goal == "auto" and obs.get("imagegoal") is not None
        goal = self.goal_input(obs["imagegoal"]) if has_goal else None
        mask = torch.full((b,), 0 if has_goal else 1, dtype=torch.long, device=self.device)
        cond = self.encode(context, goal, mask)
        distance = self.net.dist_pred_net(cond)[:, 0]
        if not has_goal:
            distance = torch.full_like(distance, float("inf"))
        deltas = self.sample_deltas(cond, deterministic)
        positions = unnormalize_deltas(deltas, c.waypoint_scale)
        return positions_to_waypoints(positions), distance

    def sample_deltas(self, cond: Tensor, deterministic: bool) -> Tensor:
        """DDPM ancestral sampling of (B, len_traj_pred, 2) normalised deltas given (B, d) conditions."""
        c, b = self.config, cond.shape[0]
        generators = self._noise.generators(range(b)) if deterministic else None
        x = draw((c.len_traj_pred, 2), generators, b).to(cond.device)
        self.scheduler.set_timesteps(c.num_diffusion_iters, device=cond.device)
        for t in self.scheduler.timesteps:
            timestep = torch.full((b,), int(t), dtype=torch.long, device=x.device)
            noise = self.net.noise_pred_net(x, timestep, cond)
            x = self.scheduler.step(noise, t, x, generator=generators).prev_sample
        return x

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """See the module docstring; draws masks, noise and timesteps from torch's global generator."""
        c = self.config
        context, goal, future, distance = self.window_inputs(batch)
        b, dev = context.shape[0], context.device
        goal_mask = (torch.rand(b) < c.goal_mask_prob).long().to(dev)
        cond = self.encode(context, goal, goal_mask)
        dist_pred = self.net.dist_pred_net(cond)[:, 0]
        dist = masked_mean((dist_pred - distance) ** 2, 1 - goal_mask)
        target = normalize_deltas(future[..., :2], c.waypoint_scale)
        noise = torch.randn(target.shape).to(dev)
        timesteps = torch.randint(0, c.num_diffusion_iters, (b,)).to(dev)
        noisy = self.scheduler.add_noise(target, noise, timesteps)
        pred = self.net.noise_pred_net(noisy, timesteps, cond)
        diffusion = masked_mean(F.mse_loss(pred, noise, reduction="none"), torch.ones(b, device=dev))
        loss = c.alpha * dist + (1.0 - c.alpha) * diffusion
        info = {
            "loss/diffusion": float(diffusion.detach()),
            "loss/distance": float(dist.detach()),
            "goal_masked": float(goal_mask.float().mean()),
        }
        return loss, info
