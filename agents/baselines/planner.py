"""What iPlanner and ViPlanner share as agents: config, inputs, keypoints -> waypoints, and the loss.

**Inputs** (published preprocessing, anchors Part B §3 and ``checkpoints.md``): depth in metres with
non-finite readings and readings beyond ``max_depth`` set to 0, resized (nearest) to ``image_size`` (360×640
published) and replicated to 3 channels, not normalised. The point goal ``(distance, angle)`` becomes
``(x forward, y left, goal_z)`` in the robot frame; NavDP's servers send ``z = 1`` and clip every component
to ``±goal_clip`` (iPlanner 5 m, ViPlanner 10 m); ViPlanner then brings a goal farther than
``max_goal_distance`` (15 m) to ``max_goal_distance / 2`` along its direction (its own agent's rule).

**Acting**: the network's keypoints (B, K, 3) -> TrajOpt's Hermite path through the origin and the keypoints
(0.1 knot steps) -> ``n_waypoints`` waypoints at equal arc length along its first ``max(1, 0.5 · n)`` metres
(the environment's waypoint box, so no waypoint is clipped), each with the path's heading there. When the fear
exceeds ``fear_threshold`` (0.5) the plan is flagged, and ``on_fear`` says what the agent does then:
``rotate`` (default) turns in place by ``rotate_angle`` towards the goal's side, so the robot looks for a
free direction instead of driving into what it fears; ``stop`` stands still (the benchmark's stuck rule then
ends the episode); ``follow`` executes the path anyway.

**Loss** (trained here, not the published self-supervision): iPlanner and ViPlanner train without labels on
a cost map (obstacle cost along the predicted path + goal distance + motion + fear BCE). The System-1 windows
carry the expert's future path and NavDP critic labels instead of per-item cost maps, so the loss is

    loss = path_weight · MSE(keypoints, expert path at K equal arc lengths; z -> 0)
           + fear_weight · BCE(fear, value_augmented < fear_value)

where ``value_augmented`` is the critic label of the expert path turned by up to 60° (NavDP's value: -5 ×
fraction of waypoints touching an obstacle + 0.5 × distance gained): a low value says the space around the
expert's route is tight, which is what iPlanner's fear flags. Without labels the fear term is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from agents.base import as_tensor
from agents.baselines.iplanner.network import DECODER_DIMS, IMAGE_SIZE, decoder_grid
from agents.baselines.trajopt import hermite_path, path_to_waypoints
from agents.policy_config import check_positive_ints
from envs.datasets.critic import HORIZON

#: What the agent does with a plan whose fear exceeds the threshold (see the module docstring).
FEAR_ACTIONS = ("rotate", "stop", "follow")
#: Overrides turning the small defaults into the published network sizes.
PAPER_SIZES: dict[str, Any] = {
    "image_size": list(IMAGE_SIZE),
    "width": 64,
    "decoder_dims": list(DECODER_DIMS),
}


@dataclass
class PlannerConfig:
    """Settings shared by iPlanner and ViPlanner (subclassed per method with its ``name`` and defaults).

    Attributes:
        image_size: network input [H, W] (published 360×640; default 160×256, on which the encoder's output
            is 5×8 and ``fc1`` takes 64·1·4 inputs).
        width: encoder stem channels (published 64; default 16).
        decoder_dims: decoder widths [conv1, conv2, fc1, fc2, fear] (published 512, 256, 1024, 512, 128).
        goal_channels: channels of the tiled goal embedding (16).
        n_keypoints: keypoints predicted (5).
        max_depth: depth beyond this many metres becomes 0.
        goal_clip: each goal component is clipped to ±this many metres (NavDP's servers).
        max_goal_distance: a goal farther than this is brought to half of it (None: no such rule).
        goal_z: height component of the goal (NavDP's servers: 1).
        path_step: TrajOpt's knot step (0.1 → 10·K + 1 path points).
        n_waypoints: waypoints returned by ``act``.
        fear_threshold: fear above this flags the plan (0.5).
        on_fear: ``rotate``, ``stop`` or ``follow`` (see the module docstring).
        rotate_angle: degrees of an in-place rotation.
        weights: released weights to load (a converted folder, a plain state dict; ViPlanner: also its
            released folder with ``model.pt`` + ``model.yaml``); None keeps the random initialisation.
        path_weight, fear_weight: loss weights.
        fear_value: fear target is 1 where the turned path's critic value is below this.
    """

    name: str = ""
    image_size: list[int] = field(default_factory=lambda: [160, 256])
    width: int = 16
    decoder_dims: list[int] = field(default_factory=lambda: [128, 64, 256, 128, 32])
    goal_channels: int = 16
    n_keypoints: int = 5
    max_depth: float = 10.0
    goal_clip: float = 5.0
    max_goal_distance: float | None = None
    goal_z: float = 1.0
    path_step: float = 0.1
    n_waypoints: int = 4
    fear_threshold: float = 0.5
    on_fear: str = "rotate"
    rotate_angle: float = 30.0
    weights: str | None = None
    path_weight: float = 1.0
    fear_weight: float = 1.0
    fear_value: float = -1.0

    @classmethod
    def paper(cls, **overrides: Any) -> PlannerConfig:
        """The published network sizes (:data:`PAPER_SIZES`), then ``overrides``."""
        return cls(**{**PAPER_SIZES, **overrides})

    def _fail(self, field_name: str, expected: str) -> None:
        raise ValueError(
            f"{type(self).__name__}.{field_name} must be {expected}, got {getattr(self, field_name)!r}"
        )

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            self._fail("image_size", "[H, W] positive pixels")
        try:
            decoder_grid(tuple(self.image_size))
        except ValueError:
            self._fail("image_size", "at least 129×129 (the decoder needs a 5×5 feature map)")
        if len(self.decoder_dims) != 5 or min(self.decoder_dims) < 1:
            self._fail("decoder_dims", "5 positive widths [conv1, conv2, fc1, fc2, fear]")
        check_positive_ints(self, ("width", "goal_channels", "n_keypoints", "n_waypoints"))
        for name in ("max_depth", "goal_clip", "path_step"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                self._fail(name, "a positive number")
        if self.max_goal_distance is not None and not self.max_goal_distance > 0:
            self._fail("max_goal_distance", "a positive number or null")
        if not 0.0 < self.fear_threshold < 1.0:
            self._fail("fear_threshold", "in (0, 1)")
        if self.on_fear not in FEAR_ACTIONS:
            self._fail("on_fear", f"one of {list(FEAR_ACTIONS)}")
        for name in ("path_weight", "fear_weight"):
            if not getattr(self, name) >= 0.0:
                self._fail(name, ">= 0")


def depth_image(depth: Any, config: PlannerConfig, device: torch.device | str | None = None) -> Tensor:
    """(B, H, W, 1) metres -> (B, 3, *image_size) metres: non-finite and > ``max_depth`` -> 0, resized
    (nearest), replicated to 3 channels."""
    x = as_tensor(depth, torch.float32, device)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"depth must have shape (B, H, W, 1), got {tuple(x.shape)}")
    x = torch.nan_to_num(x.permute(0, 3, 1, 2), nan=0.0, posinf=0.0, neginf=0.0)  # (B, 1, H, W)
    x = torch.where(x > config.max_depth, torch.zeros_like(x), x)
    x = F.interpolate(x, size=tuple(config.image_size), mode="nearest")
    return x.expand(-1, 3, -1, -1).contiguous()


def goal_vector(pointgoal: Any, config: PlannerConfig, device: torch.device | str | None = None) -> Tensor:
    """(B, 2) (distance m, angle rad left-positive) -> (B, 3) ``(x, y, goal_z)`` robot-frame goal, clipped
    as the module docstring says."""
    g = as_tensor(pointgoal, torch.float32, device)
    if g.ndim != 2 or g.shape[1] != 2:
        raise ValueError(f"pointgoal must have shape (B, 2) (distance, angle), got {tuple(g.shape)}")
    z = torch.full_like(g[:, 0], config.goal_z)
    goal = torch.stack([g[:, 0] * torch.cos(g[:, 1]), g[:, 0] * torch.sin(g[:, 1]), z], dim=1)
    goal = goal.clamp(-config.goal_clip, config.goal_clip)
    if config.max_goal_distance is not None:
        norm = goal.norm(dim=1, keepdim=True)
        far = norm > config.max_goal_distance
        goal = torch.where(far, goal / norm.clamp(min=1e-9) * config.max_goal_distance / 2, goal)
    return goal


def waypoints_from_plan(
    keypoints: Tensor, fear: Tensor, goal: Tensor, config: PlannerConfig, n_waypoints: int
) -> np.ndarray:
    """(B, K, 3) keypoints, (B, 1) fear, (B, 3) goal -> (B, n, 3) float32 ``(dx, dy, dyaw)`` waypoints (see
    the module docstring), clipped to the environment's waypoint box."""
    reach = max(1.0, 0.5 * n_waypoints)  # the environment's waypoint box (envs.env)
    path = hermite_path(keypoints.float(), config.path_step)
    waypoints = path_to_waypoints(path, n_waypoints, max_length=reach).cpu().numpy().astype(np.float32)
    flagged = (fear[:, 0] > config.fear_threshold).cpu().numpy()
    if config.on_fear != "follow" and flagged.any():
        side = np.where(goal[:, 1].cpu().numpy() >= 0.0, 1.0, -1.0)  # left for goals on the left
        steps = np.arange(1, n_waypoints + 1, dtype=np.float32) / n_waypoints
        for i in np.flatnonzero(flagged):
            turn = math.radians(config.rotate_angle) * side[i] * steps if config.on_fear == "rotate" else 0.0
            waypoints[i] = 0.0
            waypoints[i, :, 2] = turn
    limit = np.array([reach, reach, math.pi], np.float32)
    return np.clip(waypoints, -limit, limit)


def current(batch: Mapping[str, Any], key: str) -> Tensor:
    """The current frame of a window batch: (B, K+1, ...) -> (B, ...) (the last of the history)."""
    if key not in batch:
        raise KeyError(f"planner: the batch needs {key!r} (window frames); got keys {sorted(batch)}")
    x = as_tensor(batch[key])
    return x[:, -1]


def keypoint_targets(future: Tensor, n_keypoints: int) -> Tensor:
    """(B, N, 3) expert future path (agent frame) -> (B, K, 3) keypoints at equal arc lengths, z = 0."""
    path = torch.cat([future.new_zeros(future.shape[0], 1, 2), future[..., :2]], dim=1)
    xy = path_to_waypoints(path, n_keypoints)[..., :2]
    return torch.cat([xy, xy.new_zeros(*xy.shape[:2], 1)], dim=-1)


def planner_loss(
    keypoints: Tensor, fear: Tensor, batch: Mapping[str, Any], config: PlannerConfig
) -> tuple[Tensor, dict[str, float]]:
    """The loss of the module docstring.

    Args:
        keypoints: (B, K, 3) predicted; fear: (B, 1) in (0, 1).
        batch: ``future`` (B, 24, 3) expert path, optionally ``labels`` (B, 74) critic labels.

    Returns:
        (loss, info): ``loss/path``, ``loss/fear``, ``fear_skipped``, ``fear/target`` (rate of positives),
        ``fear/mean``.
    """
    if "future" not in batch:
        raise KeyError(f"planner: the batch needs 'future' (B, {HORIZON}, 3); got keys {sorted(batch)}")
    future = as_tensor(batch["future"], torch.float32, keypoints.device)
    target = keypoint_targets(future, keypoints.shape[1])
    path = F.mse_loss(keypoints, target)
    labels = batch.get("labels")
    fear_loss, positive = torch.zeros((), device=keypoints.device), 0.0
    if labels is not None:
        labels = as_tensor(labels, torch.float32, keypoints.device)
        goal = (labels[:, 1] < config.fear_value).float()
        fear_loss = F.binary_cross_entropy(fear[:, 0].clamp(1e-6, 1 - 1e-6), goal)
        positive = float(goal.mean())
    loss = config.path_weight * path + config.fear_weight * fear_loss
    info = {
        "loss/path": float(path.detach()),
        "loss/fear": float(fear_loss.detach()),
        "fear_skipped": float(labels is None),
        "fear/target": positive,
        "fear/mean": float(fear.detach().mean()),
    }
    return loss, info
