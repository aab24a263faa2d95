"""What the diffusion policies (RDP, NavDP, NoMaD, the dual systems' NavDP head) share: diffusers' DDPM
schedule with cosine betas, and the names of what a denoiser may predict."""

from __future__ import annotations

from typing import Any

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
