"""What GNM, ViNT and NoMaD share (``robodhruv/visualnav-transformer``): their config fields, input
preprocessing, per-environment context frames, the conversions of their outputs to waypoints and of window
targets to their labels, and the agent class around a network.

**Inputs.** RGB frames are centre-cropped to the network's aspect ratio, resized to ``image_width ×
image_height`` (GNM / ViNT 85×64, NoMaD 96×96), scaled to [0, 1] and ImageNet-normalised; the context
frames and the current one are concatenated on channels, oldest first (``(B, 3 (context + 1), H, W)``).

**Frame spacing.** Training windows take the context frames and the predicted waypoints every ``stride``
stored steps (default 5: the System-1 trajectories record a pose every 0.1 s at 0.5 m/s, so 5 steps are
0.25 m, about the published deployment's ``max_v / frame_rate`` of 0.8 / 3 m per frame). Acting, the agent
keeps one frame per ``act`` call and uses every ``context_every``-th (default 1); with ``n_waypoints=1`` (the
default) an ``act`` call executes one waypoint, about 0.25 m, so the acting frames are spaced as the
training frames, as the published deployment spaces them by its frame rate. This holds for the benchmarks'
default ``planning=sync``; under ``planning=async`` an ``act`` call comes every plan period (0.1 s plus the
latency), so ``context_every`` should be about 0.5 s over that period. At an episode's start the first frame
fills the context (the training windows clamp to the first step the same way).

**Outputs.** Positions are un-normalised by ``waypoint_scale`` (``max_v / frame_rate``: NavDP's 0.8 / 3 m)
and the labels are the window's future poses divided by it. GNM / ViNT predict cumulative ``(x, y, cos,
sin)``: the waypoint is ``(x·scale, y·scale, atan2(sin, cos))``. NoMaD predicts 8 ``(Δx, Δy)`` normalised to
[-1, 1] over [min, max] = [(-2.5, -4), (5, 4)]; they are un-normalised, cumulated and scaled, and each
waypoint's ``dyaw`` is the heading of the segment reaching it.

**Stop rule.** Where the predicted temporal distance (in frames of ``stride`` steps) is at most
``stop_distance`` (ViNT / NoMaD: 7, as the NavDP wrappers stop them; GNM: none), the agent outputs a
stay-put plan (zero waypoints): the System-1 tasks have no STOP, so the episode then ends by arrival or as
stuck, and success is judged where the agent stands.

**No goal** (the explore task, no ``imagegoal`` in the observation): GNM and ViNT get a random goal image
per episode (uniform noise, drawn from a generator seeded with ``sample_seed`` and the episode count), as
the NavDP benchmark runs them without a goal; NoMaD masks its goal token.
"""

from __future__ import annotations

import abc
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.base import Agent, VocabLike, as_tensor
from agents.baselines.loading import load_into
from agents.contract import SYSTEM1_CAMERA_HEIGHT, CameraRequest, SampleSpec
from agents.policy_config import check_positive_ints
from agents.preprocess import IMAGENET_MEAN, IMAGENET_STD

#: NavDP's un-normalisation of the baselines' waypoints: max_v / frame_rate (0.8 m/s at 3 Hz), metres.
WAYPOINT_SCALE = 0.8 / 3.0
#: Stored steps between training frames and between waypoints (0.25 m of the System-1 trajectories).
STRIDE = 5
#: NoMaD's normalisation bounds of a waypoint delta, in units of ``waypoint_scale``.
NOMAD_DELTA_MIN, NOMAD_DELTA_MAX = (-2.5, -4.0), (5.0, 4.0)


@dataclass
class VisualNavConfig:
    """Fields every one of GNM, ViNT and NoMaD has; subclasses add ``name`` and the network's sizes.

    Attributes:
        context_size: past frames besides the current one (GNM / ViNT 5, NoMaD 3).
        len_traj_pred: predicted waypoints (GNM / ViNT 5, NoMaD 8).
        image_width, image_height: network input in pixels (GNM / ViNT 85×64, NoMaD 96×96).
        stride: stored steps between training frames and between waypoints (5, see the module docstring).
        context_every: ``act`` calls between the frames kept as context (1).
        n_waypoints: waypoints of the prediction executed per ``act`` call (1).
        waypoint_scale: metres per unit of the predicted positions (max_v / frame_rate = 0.8 / 3).
        stop_distance: stay put where the predicted temporal distance is at most this (None: never).
        weights: released weights: a converted folder (GNM / ViNT, :mod:`agents.baselines.convert`) or a
            plain state dict (NoMaD); None keeps the random initialisation.
        sample_seed: seed of the random goal images (no goal) and of NoMaD's noise in deterministic acting
            (restarted at every episode).
    """

    context_size: int = 5
    len_traj_pred: int = 5
    image_width: int = 85
    image_height: int = 64
    stride: int = STRIDE
    context_every: int = 1
    n_waypoints: int = 1
    waypoint_scale: float = WAYPOINT_SCALE
    stop_distance: float | None = None
    weights: str | None = None
    sample_seed: int = 0

    def _fail(self, field: str, expected: str) -> None:
        raise ValueError(f"{type(self).__name__}.{field} must be {expected}, got {getattr(self, field)!r}")

    def _check_positive(self, *fields: str) -> None:
        check_positive_ints(self, fields)

    def __post_init__(self) -> None:
        self._check_positive(
            "context_size", "len_traj_pred", "image_width", "image_height", "stride", "context_every",
            "n_waypoints",
        )  # fmt: skip
        if self.n_waypoints > self.len_traj_pred:
            self._fail("n_waypoints", f"<= len_traj_pred ({self.len_traj_pred})")
        if not (math.isfinite(self.waypoint_scale) and self.waypoint_scale > 0):
            self._fail("waypoint_scale", "a positive number")
        if self.stop_distance is not None and not math.isfinite(self.stop_distance):
            self._fail("stop_distance", "a number or null")


# ------------------------------------------------------------------------------------------------ inputs
def frames_input(rgb: Any, width: int, height: int, device: torch.device | str | None = None) -> Tensor:
    """(..., H, W, 3) uint8 -> (N, 3, height, width) float32, centre-cropped to the target's aspect ratio,
    resized (bilinear, antialiased) and ImageNet-normalised."""
    x = as_tensor(rgb, device=device)
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"rgb must have shape (..., H, W, 3), got {tuple(x.shape)}")
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
    h, w = x.shape[-2:]
    if w * height > h * width:  # too wide: crop the width
        keep = max(1, round(h * width / height))
        x = x[..., (w - keep) // 2 : (w - keep) // 2 + keep]
    elif w * height < h * width:
        keep = max(1, round(w * height / width))
        x = x[..., (h - keep) // 2 : (h - keep) // 2 + keep, :]
    if tuple(x.shape[-2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x.clamp(0.0, 1.0) - mean) / std


def stacked_context(rgb: Any, width: int, height: int, device: torch.device | str | None = None) -> Tensor:
    """(B, K, H, W, 3) uint8 frames, oldest first -> (B, 3 K, height, width) on channels, oldest first."""
    b, k = rgb.shape[:2]
    return frames_input(rgb, width, height, device).reshape(b, 3 * k, height, width)


# ------------------------------------------------------------------------------------------------ outputs
def cumulative_to_waypoints(pred: Tensor, scale: float) -> Tensor:
    """GNM / ViNT (B, T, 4) cumulative ``(x, y, cos, sin)`` -> (B, T, 3) ``(dx m, dy m, dyaw rad)``."""
    yaw = torch.atan2(pred[..., 3], pred[..., 2])
    return torch.cat([pred[..., :2] * scale, yaw[..., None]], dim=-1)


def positions_to_waypoints(positions: Tensor) -> Tensor:
    """(B, T, 2) metres -> (B, T, 3): each waypoint's ``dyaw`` is the heading of the segment reaching it
    (the previous one's where a segment has no length)."""
    previous = torch.cat([torch.zeros_like(positions[:, :1]), positions[:, :-1]], dim=1)
    step = positions - previous
    yaw = torch.atan2(step[..., 1], step[..., 0])
    still = step.norm(dim=-1) < 1e-6
    for t in range(positions.shape[1]):
        fallback = yaw[:, t - 1] if t else torch.zeros_like(yaw[:, 0])
        yaw[:, t] = torch.where(still[:, t], fallback, yaw[:, t])
    return torch.cat([positions, yaw[..., None]], dim=-1)


def nomad_bounds(device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """(2,) lower and upper bounds of NoMaD's normalised deltas."""
    return torch.tensor(NOMAD_DELTA_MIN, device=device), torch.tensor(NOMAD_DELTA_MAX, device=device)


def unnormalize_deltas(x: Tensor, scale: float) -> Tensor:
    """NoMaD (B, T, 2) deltas in [-1, 1] -> (B, T, 2) cumulative positions in metres:
    ``cumsum((x + 1) / 2 · (max − min) + min) · scale``."""
    low, high = nomad_bounds(x.device)
    return torch.cumsum((x + 1.0) / 2.0 * (high - low) + low, dim=1) * scale


def normalize_deltas(positions: Tensor, scale: float) -> Tensor:
    """Inverse of :func:`unnormalize_deltas`: (B, T, 2) cumulative metres -> (B, T, 2) normalised deltas."""
    previous = torch.cat([torch.zeros_like(positions[:, :1]), positions[:, :-1]], dim=1)
    low, high = nomad_bounds(positions.device)
    return 2.0 * ((positions - previous) / scale - low) / (high - low) - 1.0


def gnm_labels(future: Tensor, scale: float) -> Tensor:
    """Window targets (B, T, 3) ``(dx, dy, dyaw)`` -> GNM / ViNT labels (B, T, 4) ``(x / scale, y / scale,
    cos dyaw, sin dyaw)``."""
    return torch.cat(
        [future[..., :2] / scale, torch.cos(future[..., 2:]), torch.sin(future[..., 2:])], dim=-1
    )


def masked_mean(loss: Tensor, mask: Tensor) -> Tensor:
    """(B, ...) losses averaged per sample, then over the samples of the (B,) mask (vint_train's
    ``action_reduce``: ``mean(loss · mask) / (mean(mask) + 1e-2)``)."""
    while loss.dim() > 1:
        loss = loss.mean(dim=-1)
    mask = mask.to(loss.dtype)
    return (loss * mask).mean() / (mask.mean() + 1e-2)


# ------------------------------------------------------------------------------------------------ the agent
class VisualNavAgent(Agent, abstract=True):
    """GNM, ViNT or NoMaD around its network; subclasses build the network and give ``predict`` and
    ``loss``. See the module docstring.

    Observations: ``rgb`` (B, H, W, 3) uint8 and, for an image goal, ``imagegoal`` (B, H, W, 3) uint8.
    Training batches: windows ``rgb`` (B, context + 1, H, W, 3), ``imagegoal`` (B, H, W, 3), ``future``
    (B, len_traj_pred, 3), ``future_mask`` (B, len_traj_pred) and ``steps_left`` (B,).
    """

    action_mode = "waypoint"
    n_waypoints = 1
    tasks = ("imagenav", "explore")
    cameras = (
        CameraRequest(modalities=("rgb",), mount_height=SYSTEM1_CAMERA_HEIGHT),
        CameraRequest("goal", mount="goal", modalities=("rgb",)),
    )
    sample = SampleSpec(kind="window", history=5, stride=STRIDE, horizon=5, future_stride=STRIDE)

    def __init__(
        self,
        config: Any,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(config, vocab=vocab, instructions=instructions)
        c = config
        self.n_waypoints = c.n_waypoints
        self.sample = SampleSpec(
            kind="window", history=c.context_size, stride=c.stride, horizon=c.len_traj_pred,
            future_stride=c.stride,
        )  # fmt: skip
        self.net = self.build_net(c)
        if load_pretrained and c.weights:
            load_into(self.net, c.weights, self.name)
        self._episodes = 0
        self._init_state(0)

    @abc.abstractmethod
    def build_net(self, config: Any) -> nn.Module:
        """The method's network from its config."""

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        return cls(config, vocab=vocab, load_pretrained=False)

    # ------------------------------------------------------------------------------------------ state
    def _init_state(self, n_envs: int) -> None:
        size = self.config.context_size * self.config.context_every + 1
        self._frames: list[deque] = [deque(maxlen=size) for _ in range(n_envs)]
        self._noise_goals: list[np.ndarray | None] = [None] * n_envs

    def _clear_state(self, env_ids: np.ndarray) -> None:
        for i in env_ids:
            self._frames[int(i)].clear()
            self._noise_goals[int(i)] = None

    def context(self, rgb: np.ndarray) -> Tensor:
        """Push each env's (H, W, 3) frame; returns the (B, 3 (context + 1), h, w) network input."""
        every, stacks = self.config.context_every, []
        for frames, frame in zip(self._frames, rgb, strict=True):
            while len(frames) < frames.maxlen - 1:  # the episode's first frame fills the context
                frames.append(frame)
            frames.append(frame)
            stacks.append(np.stack([frames[k] for k in range(0, frames.maxlen, every)]))
        c = self.config
        return stacked_context(np.stack(stacks), c.image_width, c.image_height, self.device)

    def noise_goals(self, shape: tuple[int, ...]) -> np.ndarray:
        """(B, H, W, 3) uint8 random goal images, one per env and episode (see the module docstring)."""
        for i, goal in enumerate(self._noise_goals):
            if goal is None or goal.shape != shape:
                rng = np.random.default_rng((self.config.sample_seed, self._episodes))
                self._noise_goals[i] = rng.integers(0, 256, shape, dtype=np.uint8)
                self._episodes += 1
        return np.stack(self._noise_goals)

    def goal_input(self, goal: Any) -> Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, h, w) normalised."""
        return frames_input(goal, self.config.image_width, self.config.image_height, self.device)

    # ------------------------------------------------------------------------------------------ acting
    @abc.abstractmethod
    def predict(self, obs: Mapping[str, Any], deterministic: bool) -> tuple[Tensor, Tensor]:
        """(B, len_traj_pred, 3) waypoints in metres and (B,) predicted temporal distance (pushes the
        context frame of this step)."""

    @torch.no_grad()
    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B, n_waypoints, 3) float32 cumulative ``(dx, dy, dyaw)``: the first ``n_waypoints`` predicted
        waypoints, zeros (stay put) where the predicted distance is at most ``stop_distance``; clipped to the
        waypoint action box."""
        self._check_batch(obs)
        waypoints, distance = self.predict(obs, deterministic)
        out = waypoints[:, : self.n_waypoints].cpu().numpy().astype(np.float32)
        if self.config.stop_distance is not None:
            out[(distance <= self.config.stop_distance).cpu().numpy()] = 0.0
        reach = max(1.0, 0.5 * self.n_waypoints)  # the environment's waypoint box (envs.env)
        limit = np.array([reach, reach, math.pi], np.float32)
        return np.clip(out, -limit, limit)

    # ------------------------------------------------------------------------------------------ training
    def window_inputs(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A window batch -> context (B, 3 (K + 1), h, w), goal (B, 3, h, w), future (B, T, 3) metres and the
        distance label (B,) in frames of ``stride`` steps. Future poses past an episode's end are its last
        pose (at the goal) and stay targets: they teach to stay at the goal."""
        c, k = self.config, self.config.context_size + 1
        for key in ("rgb", "imagegoal", "future", "steps_left"):
            if key not in batch:
                raise KeyError(
                    f"{self.name}: the batch needs {key!r} (a window with the goal camera); got keys "
                    f"{sorted(batch)}"
                )
        rgb = batch["rgb"]
        if rgb.ndim != 5 or rgb.shape[1] != k:
            raise ValueError(
                f"{self.name}: batch['rgb'] has shape {tuple(rgb.shape)}, expected (B, {k}, H, W, 3) "
                f"(SampleSpec history={c.context_size})"
            )
        future = as_tensor(batch["future"], torch.float32, self.device)
        if tuple(future.shape[1:]) != (c.len_traj_pred, 3):
            raise ValueError(
                f"{self.name}: batch['future'] has shape {tuple(future.shape)}, expected "
                f"(B, {c.len_traj_pred}, 3)"
            )
        distance = as_tensor(batch["steps_left"], torch.float32, self.device) / c.stride
        context = stacked_context(as_tensor(rgb), c.image_width, c.image_height, self.device)
        return context, self.goal_input(batch["imagegoal"]), future, distance
