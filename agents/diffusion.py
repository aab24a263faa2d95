"""What the diffusion policies (RDP, NavDP, NoMaD, the dual systems' heads) share: diffusers' DDPM schedule
with cosine betas, the names of what a denoiser may predict, and the per-episode noise of reproducible
acting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

#: What a denoiser may predict (diffusers' names): the noise, or the clean sample.
PREDICTION_TYPES = ("epsilon", "sample")


def cosine_ddpm_scheduler(
    num_train_timesteps: int,
    prediction_type: str = "epsilon",
    clip_sample: bool = True,
    clip_sample_range: float = 1.0,
) -> Any:
    """diffusers' ``DDPMScheduler`` with ``squaredcos_cap_v2`` betas (every policy here uses them).

    diffusers is imported here: it takes seconds to import and only the diffusion policies need it.

    Raises:
        ValueError: ``prediction_type`` is not one of :data:`PREDICTION_TYPES`.
    """
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={prediction_type!r}: expected one of {list(PREDICTION_TYPES)}")
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=prediction_type,
        clip_sample=clip_sample,
        clip_sample_range=clip_sample_range,
    )


class EpisodeNoise:
    """The sampling noise of reproducible (``deterministic=True``) acting: one generator per environment,
    seeded with ``seed`` when that environment's episode starts and advancing over the episode's plans.

    An episode replays exactly, whatever the other environments do, while two plans of one episode draw
    different noise. A generator seeded afresh for every plan draws the same noise every time, so wherever the
    observation barely changes (an agent pressed against an obstacle it cannot see) the policy repeats the
    same blocked plan until the episode ends: NavDP's stuck episodes in the hard arenas.

    Args:
        seed: the agent config's ``sample_seed``.
        n_envs: environment slots.
    """

    def __init__(self, seed: int, n_envs: int = 0) -> None:
        self.seed = int(seed)
        self._generators = [self._fresh() for _ in range(n_envs)]

    def _fresh(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def clear(self, env_ids: Iterable[int]) -> None:
        """Restart the listed environments' noise (their new episodes)."""
        for i in env_ids:
            self._generators[int(i)] = self._fresh()

    def generators(self, env_ids: Iterable[int], k: int = 1) -> list[torch.Generator]:
        """The listed environments' generators, each repeated ``k`` times: diffusers' schedulers and
        :func:`draw` take one generator per sample, and the ``k`` samples of an environment draw one after
        another from its generator."""
        return [self._generators[int(i)] for i in env_ids for _ in range(k)]


def draw(shape: tuple[int, ...], generators: list[torch.Generator] | None, n: int) -> torch.Tensor:
    """(n, *shape) standard normal noise: one draw per generator (``len(generators) == n``), or from torch's
    global generator when ``generators`` is None."""
    if generators is None:
        return torch.randn((n, *shape))
    if len(generators) != n:
        raise ValueError(f"draw: {len(generators)} generators for {n} samples")
    return torch.stack([torch.randn(shape, generator=g) for g in generators])
