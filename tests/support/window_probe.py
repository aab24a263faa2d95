"""A small waypoint agent that exercises the windowed-sample contract end to end (not a published model).

It predicts the next 8 poses, agent-frame ``(dx, dy, dyaw)``, from a window of 4 history RGB frames every 2
steps plus the current one, the current depth, a look-down camera pitched 30° and the point goal. Training
uses every hook of the contract: a per-item transform run in the loader's workers, parameter groups that
leave a frozen encoder out, and an exponential moving average of the weights updated after every step and
used to act.

Registered as ``window_probe`` when imported: ``NAVGYM_PLUGINS=tests.support.window_probe``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.base import AGENTS, Agent, as_tensor
from agents.contract import CameraRequest, SampleSpec
from agents.ema import EMAWeights
from agents.weights import atomic_write, read_json

HISTORY, STRIDE, HORIZON = 4, 2, 8
#: The window the weights were trained on, saved beside them and checked on load.
WINDOW_FILE = "window.json"


@dataclass
class WindowProbeConfig:
    """Config of ``window_probe``: camera side, width of the network, EMA decay."""

    name: str = "window_probe"
    size: int = 32
    hidden: int = 64
    ema_decay: float = 0.9


class StackFrames:
    """Per-item transform: the window's RGB frames, the current depth and the look-down view stacked into one
    (C, H, W) float32 image in [0, 1] (depth / 10 m), under ``image``. Holds no weights, so it pickles."""

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        out["image"] = stack_frames(item["rgb"], item["depth"][-1], item["down_rgb"])
        return out


def stack_frames(rgb: np.ndarray, depth: np.ndarray, down: np.ndarray) -> np.ndarray:
    """(K+1,H,W,3) uint8, (H,W,1) metres, (H,W,3) uint8 -> ((K+1)*3 + 1 + 3, H, W) float32."""
    frames = np.concatenate([*rgb, depth * 25.5, down], axis=-1).astype(np.float32) / 255.0
    return np.ascontiguousarray(frames.transpose(2, 0, 1))


class ProbeNet(nn.Module):
    """Conv encoder of the stacked image + point goal -> (B, 8, 3) waypoints."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.frozen = nn.Conv2d(channels, 8, 3, stride=2, padding=1)  # a fixed random projection
        self.frozen.requires_grad_(False)
        self.encoder = nn.Sequential(
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten()
        )
        self.head = nn.Sequential(nn.Linear(16 * 16 + 3, hidden), nn.ReLU(), nn.Linear(hidden, HORIZON * 3))

    def forward(self, image: torch.Tensor, pointgoal: torch.Tensor) -> torch.Tensor:
        goal = torch.stack([pointgoal[:, 0] / 10, torch.cos(pointgoal[:, 1]), torch.sin(pointgoal[:, 1])], 1)
        features = self.encoder(torch.relu(self.frozen(image)))
        return self.head(torch.cat([features, goal], 1)).view(-1, HORIZON, 3)


@AGENTS.register("window_probe")
class WindowProbeAgent(Agent):
    """See the module docstring."""

    name = "window_probe"
    config_class = WindowProbeConfig
    action_mode = "waypoint"
    n_waypoints = HORIZON
    tasks = ("pointnav",)
    cameras = (CameraRequest(), CameraRequest("down", pitch=-30.0, modalities=("rgb",)))
    sample = SampleSpec(kind="window", history=HISTORY, stride=STRIDE, horizon=HORIZON)

    def __init__(self, config: WindowProbeConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.net = ProbeNet((HISTORY + 1) * 3 + 4, config.hidden)
        self.ema = EMAWeights(self.net, config.ema_decay)
        self._frames: list[deque] = []

    def save_extra(self, directory) -> list[str]:
        """``window.json``: the history, stride and horizon of the training windows."""
        window = {"history": HISTORY, "stride": STRIDE, "horizon": HORIZON}
        atomic_write(directory / WINDOW_FILE, lambda p: open(p, "w").write(json.dumps(window)))
        return [WINDOW_FILE]

    @classmethod
    def _build_for_load(cls, config, vocab, directory=None):
        """Refuses weights trained on another window (``window.json`` names it)."""
        window = read_json(directory / WINDOW_FILE, "the training window {history, stride, horizon}")
        if window != {"history": HISTORY, "stride": STRIDE, "horizon": HORIZON}:
            raise ValueError(
                f"{directory / WINDOW_FILE}: trained on window {window}, this agent uses {HISTORY=}"
            )
        return cls(config, vocab=vocab)

    def item_transform(self) -> StackFrames:
        """Stacks the frames in the loader's workers."""
        return StackFrames()

    def param_groups(self) -> list[dict[str, Any]]:
        """Encoder and head in two groups (no weight decay on the head); the frozen projection and the EMA
        copy are left out."""
        return [{"params": list(self.net.encoder.parameters())}, {"params": list(self.net.head.parameters())}]

    def after_step(self, step: int) -> None:
        """EMA of the weights: ``ema = d * ema + (1 - d) * net``."""
        self.ema.update(self.net)

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked MSE between the predicted and the true future poses."""
        pred = self.net(
            as_tensor(batch["image"], device=self.device), as_tensor(batch["pointgoal"], device=self.device)
        )
        target = as_tensor(batch["future"], torch.float32, self.device)
        mask = as_tensor(batch["future_mask"], torch.float32, self.device)[..., None]
        loss = ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1) / 3
        return loss, {"loss/waypoints": float(loss.detach())}

    def _init_state(self, n_envs: int) -> None:
        self._frames = [deque(maxlen=HISTORY * STRIDE + 1) for _ in range(n_envs)]

    def _clear_state(self, env_ids: np.ndarray) -> None:
        for i in env_ids:
            self._frames[int(i)].clear()

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B, 8, 3) waypoints from the EMA network; the history clamps to the episode's first frame, as the
        training windows do."""
        n = self._check_batch(obs)
        images = []
        for i in range(n):
            frames = self._frames[i]
            rgb = np.asarray(obs["rgb"][i])
            while len(frames) < frames.maxlen:  # the episode's first frame fills the history, as in training
                frames.append(rgb)
            frames.append(rgb)
            history = np.stack([frames[k] for k in range(0, frames.maxlen, STRIDE)])
            images.append(stack_frames(history, np.asarray(obs["depth"][i]), np.asarray(obs["down_rgb"][i])))
        image = torch.from_numpy(np.stack(images)).to(self.device)
        with torch.no_grad():
            pred = self.ema(image, as_tensor(obs["pointgoal"], torch.float32, self.device))
        return pred.cpu().numpy().astype(np.float32)
