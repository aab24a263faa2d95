"""Colour augmentation of RGB frames, seeded per sample so that an item is the same wherever it is read.

InternVLA-N1's System-2 training augments its history and current frames with torchvision's
``ColorJitter(brightness=0.2, saturation=0.2)``, ``RandomPosterize(bits=4)``,
``RandomAdjustSharpness(1.5)`` and ``RandomAutocontrast()`` (the last three each with probability 0.5).
:func:`colour_augment` does the same with PIL's equivalents (``ImageEnhance.Brightness`` / ``Color`` blend
with black / grey as torchvision does; ``ImageOps.posterize`` / ``autocontrast``; ``ImageEnhance.Sharpness``),
drawing every random choice from the generator it is given, so an item's augmentation depends on its seed
only, not on the worker or the order it is read in. torchvision is not needed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

#: Brightness and saturation factors are drawn from [1 - JITTER, 1 + JITTER].
JITTER = 0.2
POSTERIZE_BITS = 4
SHARPNESS = 1.5
#: Probability of each of posterize, sharpness and autocontrast.
P_APPLY = 0.5


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of item ``index`` in epoch ``epoch`` of a run seeded with ``seed``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


def draw_params(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmentation's random choices: jitter factors (brightness, saturation), their order, and whether
    posterize, sharpness and autocontrast apply."""
    factors = rng.uniform(1.0 - JITTER, 1.0 + JITTER, size=2)
    order = rng.permutation(2)  # torchvision applies the jitters in a random order
    return factors, order, rng.random(3) < P_APPLY


def apply_params(frame: np.ndarray, params: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """One (H, W, 3) uint8 frame augmented with the choices of :func:`draw_params`."""
    factors, order, apply = params
    img = Image.fromarray(np.ascontiguousarray(frame, np.uint8))
    jitters = [ImageEnhance.Brightness, ImageEnhance.Color]
    for k in order:
        img = jitters[k](img).enhance(float(factors[k]))
    if apply[0]:
        img = ImageOps.posterize(img, POSTERIZE_BITS)
    if apply[1]:
        img = ImageEnhance.Sharpness(img).enhance(SHARPNESS)
    if apply[2]:
        img = ImageOps.autocontrast(img)
    return np.asarray(img, np.uint8)


def augment_frame(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One (H, W, 3) uint8 frame, colour-augmented (see the module docstring)."""
    return apply_params(frame, draw_params(rng))


def colour_augment(frames: np.ndarray, rng: np.random.Generator, per_frame: bool = True) -> np.ndarray:
    """(N, H, W, 3) uint8 frames augmented, each with its own draws from ``rng`` (``per_frame``) or all
    with one draw (a whole trajectory under one lighting, as a recurrent agent sees it); N may be 0."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"colour_augment: expected (N, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}"
        )
    if not len(frames):
        return frames.copy()
    if per_frame:
        return np.stack([augment_frame(f, rng) for f in frames])
    params = draw_params(rng)
    return np.stack([apply_params(f, params) for f in frames])
