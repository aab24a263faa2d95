"""A small agent that exercises the pixel-goal sample contract end to end (not a published model).

From the current frame and the look-down view (RGB and depth, its own size) it classifies System 2's answer
kind (pixel, turn, stop) and regresses the pixel goal, normalised by the look-down image size. Its per-item
transform runs in the loader's workers and records the process that ran it; the loss reports the share of
items transformed outside the training process, the batch's pixel samples and its longest history.

Registered as ``pixel_goal_probe`` when imported: ``NAVGYM_PLUGINS=tests.support.pixel_goal_probe``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.base import AGENTS, Agent, as_tensor
from agents.contract import CameraRequest, SampleSpec
from envs.tasks.pixel_goal import MOVE_FORWARD, STOP, TARGET_KINDS, TURN_LEFT

#: The look-down camera: 30° down, smaller than the main camera.
LOOKDOWN = CameraRequest("lookdown", width=24, height=20, pitch=-30.0)
#: The action each predicted kind takes when the probe acts.
KIND_ACTIONS = {"pixel": MOVE_FORWARD, "turn": TURN_LEFT, "stop": STOP}


@dataclass
class PixelGoalProbeConfig:
    """Config of ``pixel_goal_probe``: width of the network."""

    name: str = "pixel_goal_probe"
    hidden: int = 32


def inputs(current: np.ndarray, lookdown: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H,W,3) uint8, (h,w,3) uint8, (h,w,1) m -> (3,H,W) and (4,h,w) float32 in [0, 1] (depth / 10 m)."""
    image = np.asarray(current, np.float32).transpose(2, 0, 1) / 255.0
    down = np.concatenate([np.asarray(lookdown, np.float32) / 255.0, np.asarray(depth) / 10.0], axis=-1)
    return np.ascontiguousarray(image), np.ascontiguousarray(down.transpose(2, 0, 1), np.float32)


class ProbeInputs:
    """Per-item transform: network inputs, the kind id, the normalised pixel target, the history length and
    the id of the process that ran it. Holds no weights, so it pickles."""

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        out["image"], out["down"] = inputs(item["current"], item["lookdown"], item["lookdown_depth"])
        h, w = item["lookdown"].shape[:2]
        out["kind_id"] = np.int64(TARGET_KINDS.index(item["kind"]))
        out["target"] = (item["pixel"].astype(np.float32) + 0.5) / np.array([h, w], np.float32)
        out["n_history"] = np.int64(len(item["history"]))
        out["pid"] = np.int64(os.getpid())
        return out


def _encoder(channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten()
    )


@AGENTS.register("pixel_goal_probe")
class PixelGoalProbeAgent(Agent):
    """See the module docstring."""

    name = "pixel_goal_probe"
    config_class = PixelGoalProbeConfig
    cameras = (CameraRequest(), LOOKDOWN)
    sample = SampleSpec(kind="pixel_goal", max_goal_frames=12)

    def __init__(self, config: PixelGoalProbeConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.rgb, self.lookdown = _encoder(3), _encoder(4)
        self.head = nn.Sequential(nn.Linear(256, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 5))

    def item_transform(self) -> ProbeInputs:
        """Network inputs, made in the loader's workers."""
        return ProbeInputs()

    def forward_net(self, image: torch.Tensor, down: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,H,W), (B,4,h,w) -> kind logits (B,3) and normalised pixels (B,2)."""
        out = self.head(torch.cat([self.rgb(image), self.lookdown(down)], 1))
        return out[:, :3], torch.sigmoid(out[:, 3:])

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of the kind plus the MSE of the pixel goal on pixel samples."""
        logits, pixel = self.forward_net(
            as_tensor(batch["image"], device=self.device), as_tensor(batch["down"], device=self.device)
        )
        kind = as_tensor(batch["kind_id"], torch.int64, self.device)
        is_pixel = (kind == 0).float()
        target = as_tensor(batch["target"], torch.float32, self.device)
        pixel_loss = (((pixel - target) ** 2).sum(1) * is_pixel).sum() / is_pixel.sum().clamp(min=1)
        kind_loss = nn.functional.cross_entropy(logits, kind)
        info = {
            "loss/kind": float(kind_loss.detach()),
            "loss/pixel": float(pixel_loss.detach()),
            "pixel_share": float(is_pixel.mean()),
            "worker_items": float((np.asarray(batch["pid"]) != os.getpid()).mean()),
            "max_history": float(max(len(h) for h in batch["history"])),
        }
        return kind_loss + pixel_loss, info

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B,) int64: MOVE_FORWARD for a predicted pixel goal, TURN_LEFT for turns, STOP for STOP."""
        n = self._check_batch(obs)
        pairs = [inputs(obs["rgb"][i], obs["lookdown_rgb"][i], obs["lookdown_depth"][i]) for i in range(n)]
        image = torch.from_numpy(np.stack([p[0] for p in pairs])).to(self.device)
        down = torch.from_numpy(np.stack([p[1] for p in pairs])).to(self.device)
        with torch.no_grad():
            kinds = self.forward_net(image, down)[0].argmax(1).tolist()
        return np.array([KIND_ACTIONS[TARGET_KINDS[k]] for k in kinds], np.int64)
