"""The NavDP agent: System 1 of InternVLA-N1, a navigation diffusion policy with a critic (Cai et al. 2025).

**Acting.** Each ``act`` call is one environment step. The agent keeps, per environment, the last
``HISTORY · history_every + 1`` RGB frames and feeds every ``history_every``-th of them (8 frames, oldest
first; at an episode's start the first frame fills the history, as the training windows clamp to the first
step). ``history_every`` counts ``act`` calls: NavDP's ``memory_digit`` of 4 camera frames (default 4). The
training windows space their frames 4 expert steps apart (about 1 m or 60°); an ``act`` call executes
``n_waypoints`` waypoints of about 2 expert steps each, so ``history_every=1`` with ``n_waypoints=2`` matches
the training spacing most closely; the default keeps NavDP's 4.

Each call samples ``num_samples`` (32) trajectories per environment in one batched DDPM pass, scores them with
the critic and returns the first ``n_waypoints`` cumulative waypoints ``(dx, dy, dyaw)`` of the best; when the
best value is below ``stop_threshold`` it rotates in place by ``rotate_angle`` instead. The goal kind comes
from ``config.goal`` or, with ``auto``, from the observation keys (``pointgoal``, then ``imagegoal``, then
``pixelgoal``, else none: PointNav also observes ``pixelgoal``, used with ``goal=pixel``).
``deterministic=True`` draws the noise (and a random selection's index) from one generator per environment,
seeded with ``sample_seed`` at the episode's start (:class:`agents.diffusion.EpisodeNoise`): episodes replay
exactly and successive plans differ.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.base import AGENTS, Agent, VocabLike, as_tensor
from agents.contract import SYSTEM1_CAMERA_HEIGHT, CameraRequest, SampleSpec
from agents.diffusion import EpisodeNoise, cosine_ddpm_scheduler, draw
from agents.navdp.config import GOAL_KINDS, STRIDE, NavDPConfig
from agents.navdp.inputs import depth_input, mask_input, point_goal_xyt, rgb_input, steps_to_path
from agents.navdp.losses import goal_slots, navdp_loss
from agents.navdp.network import N_GOAL_SLOTS, STEP_DIM, NavDPNet
from envs.datasets.critic import FUTURE_STRIDE, HISTORY, HORIZON


def make_scheduler(config: NavDPConfig) -> Any:
    """diffusers' ``DDPMScheduler`` of NavDP: ``squaredcos_cap_v2``, ε-prediction (NavDP's; or the clean
    sample, ``config.prediction_type``)."""
    return cosine_ddpm_scheduler(
        config.num_train_timesteps, config.prediction_type, config.clip_sample, config.clip_sample_range
    )


def select_best(paths: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """(B, K, H, 3) paths and (B, K) values -> the best path per row (B, H, 3) and its index (B,)."""
    best = values.argmax(dim=1)
    return paths[torch.arange(paths.shape[0], device=paths.device), best], best


@AGENTS.register("navdp")
class NavDPAgent(Agent):
    """NavDP; see the module docstring.

    Observations: ``rgb`` (B,H,W,3) uint8, ``depth`` (B,H,W,1) metres, and the goal: ``pointgoal`` (B,2),
    ``imagegoal`` (B,H,W,3) uint8, or ``pixelgoal`` (B,H,W) mask with ``pixelgoal_visible`` (B,) bool.
    Training batches: windows (``SampleSpec(kind="window", history=7, stride=4, horizon=24,
    future_stride=2)``), see :mod:`agents.navdp.losses`.

    Args:
        config: a :class:`NavDPConfig`.
        vocab, instructions: unused (NavDP reads no instruction); accepted as every agent's.
        load_pretrained: read ``rgb_weights`` (False: the weights come from a checkpoint).
    """

    name = "navdp"
    config_class = NavDPConfig
    action_mode = "waypoint"
    n_waypoints = NavDPConfig.n_waypoints
    tasks = ("pointnav", "imagenav", "explore")
    cameras = (
        CameraRequest(mount_height=SYSTEM1_CAMERA_HEIGHT),
        CameraRequest("goal", mount="goal", modalities=("rgb",)),
    )
    sample = SampleSpec(
        kind="window",
        history=HISTORY,
        stride=STRIDE,
        horizon=HORIZON,
        future_stride=FUTURE_STRIDE,
        pixel_goal_mask=True,
    )

    def __init__(
        self,
        config: NavDPConfig,
        vocab: VocabLike | None = None,
        instructions: Iterable[str] | None = None,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__(config, vocab=vocab, instructions=instructions)
        self.n_waypoints = config.n_waypoints
        self.net = NavDPNet(config, load_pretrained)
        self.scheduler = make_scheduler(config)
        #: Training samples seen per goal kind (point, image, pixel); saved with the weights.
        self.register_buffer("goal_samples", torch.zeros(len(GOAL_KINDS), dtype=torch.long))
        self._init_state(0)

    @classmethod
    def _build_for_load(cls, config: Any, vocab: list[str] | None, directory: Path | None = None) -> Agent:
        return cls(config, vocab=vocab, load_pretrained=False)

    def param_groups(self) -> list[dict[str, Any]]:
        """One group of the trainable parameters (a frozen RGB encoder is left out)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """See :func:`agents.navdp.losses.navdp_loss`; ``batch`` is not modified."""
        return navdp_loss(self, batch)

    # ------------------------------------------------------------------------------------------- encoding
    def encode_scene(self, rgb: Any, depth: Any) -> tuple[Tensor, Tensor]:
        """(B, M, H, W, 3) uint8 RGB history and (B, H, W, 1) current depth -> (B, Q, D) memory tokens and
        the current frame's (B, 3, S, S) normalised RGB."""
        c = self.config
        rgb = as_tensor(rgb)
        b, m = rgb.shape[:2]
        frames = rgb_input(rgb, c.image_size, c.normalize_rgb, self.device)
        frames = frames.view(b, m, *frames.shape[1:])  # (B*M, 3, S, S) -> (B, M, 3, S, S)
        depth = depth_input(depth, c.image_size, c.min_depth, c.max_depth, self.device)
        return self.net.rgbd_encoder(frames, depth), frames[:, -1]

    def goal_embeddings(
        self, data: Mapping[str, Any], current: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Candidate goal embeddings of every kind present in ``data`` (a batch or an observation).

        Returns:
            (B, 3, D) point, image and pixel embeddings (zero where absent), (B, 3) bool availability, and the
            (B, 3) point goal ``(x, y, θ)`` or None.
        """
        c, net, b = self.config, self.net, current.shape[0]
        cand = current.new_zeros(b, len(GOAL_KINDS), net.token_dim)
        available = torch.zeros(b, len(GOAL_KINDS), dtype=torch.bool, device=current.device)
        point = None
        if data.get("pointgoal") is not None:
            point = point_goal_xyt(data["pointgoal"], c.max_goal_distance, self.device)
            cand[:, 0], available[:, 0] = net.point_encoder(point), True
        if data.get("imagegoal") is not None:
            goal = rgb_input(data["imagegoal"], c.image_size, c.normalize_rgb, self.device)
            cand[:, 1], available[:, 1] = net.image_encoder(torch.cat([goal, current], dim=1)), True
        if data.get("pixelgoal") is not None:
            mask = mask_input(data["pixelgoal"], c.image_size, self.device)
            visible = data.get("pixelgoal_visible")
            seen = torch.ones(b, dtype=torch.bool) if visible is None else as_tensor(visible).bool()
            cand[:, 2], available[:, 2] = (
                net.pixel_encoder(torch.cat([current, mask], dim=1)),
                seen.to(current.device),
            )
        return cand, available, point

    # ---------------------------------------------------------------------------------------------- acting
    def _init_state(self, n_envs: int) -> None:
        size = HISTORY * self.config.history_every + 1
        self._frames: list[deque] = [deque(maxlen=size) for _ in range(n_envs)]
        self._noise = EpisodeNoise(self.config.sample_seed, n_envs)

    def _clear_state(self, env_ids: np.ndarray) -> None:
        for i in env_ids:
            self._frames[int(i)].clear()
        self._noise.clear(env_ids)

    def goal_kind(self, obs: Mapping[str, Any]) -> str:
        """The goal kind ``act`` uses (see the module docstring); checked against the trained goal kinds.

        Raises:
            KeyError: the configured kind's observation key is missing. ValueError: the checkpoint was
                trained on goals but never on this kind.
        """
        kind = self.config.goal
        if kind == "auto":
            # The task's own goal first: PointNav also observes the pixel goal, used only when asked for.
            keys = {"point": "pointgoal", "image": "imagegoal", "pixel": "pixelgoal"}
            kind = next((k for k, key in keys.items() if obs.get(key) is not None), "none")
        elif kind != "none":
            key = f"{kind}goal"
            if obs.get(key) is None:
                raise KeyError(f"navdp: config.goal={kind!r} needs obs[{key!r}]; got keys {sorted(obs)}")
        trained = [k for k, n in zip(GOAL_KINDS, self.goal_samples.tolist(), strict=True) if n > 0]
        if kind != "none" and trained and kind not in trained:
            raise ValueError(
                f"navdp: this checkpoint was not trained with {kind} goals (trained with {trained} and no "
                "goal); set agent.goal to one of those, or train with that goal kind"
            )
        return kind

    def _history(self, rgb: np.ndarray) -> np.ndarray:
        """Push each env's frame and return the (B, M, H, W, 3) history, oldest first."""
        every, stacks = self.config.history_every, []
        for frames, frame in zip(self._frames, rgb, strict=True):
            while len(frames) < frames.maxlen - 1:  # the episode's first frame fills the history
                frames.append(frame)
            frames.append(frame)
            stacks.append(np.stack([frames[k] for k in range(0, frames.maxlen, every)]))
        return np.stack(stacks)

    def prime_history(self, frames: Any) -> None:
        """Push past RGB frames (B, M, H, W, 3), oldest first, into each env's history, as if ``act`` had
        seen them (an open-loop replay of a stored window; the next ``plan`` adds the current frame)."""
        frames = np.asarray(as_tensor(frames).cpu())
        for m in range(frames.shape[1]):
            self._history(frames[:, m])

    @torch.no_grad()
    def plan(self, obs: Mapping[str, Any], deterministic: bool = True) -> dict[str, Any]:
        """Sample and score trajectories for every env (advances the RGB history by one step).

        Returns:
            ``paths`` (B, K, 24, 3) cumulative waypoints, ``values`` (B, K) critic values, ``best`` (B,)
            index of the best, ``goal`` the goal kind used.
        """
        c, net = self.config, self.net
        n = self._check_batch(obs)
        kind = self.goal_kind(obs)
        rgb = np.asarray(as_tensor(obs["rgb"]).cpu())
        tokens, current = self.encode_scene(self._history(rgb), as_tensor(obs["depth"]))
        goals = current.new_zeros(n, N_GOAL_SLOTS, net.token_dim)
        if kind != "none":
            cand, _, _ = self.goal_embeddings({f"{kind}goal": obs[f"{kind}goal"]}, current)
            index = GOAL_KINDS.index(kind)
            goals = goal_slots(cand, torch.full((n, N_GOAL_SLOTS), index, device=cand.device))
        k = c.num_samples  # the K samples of a scene share its memory (see agents.navdp.network.decode)
        steps = self._sample(tokens, goals, n, deterministic)
        values = net.critic(steps, tokens).view(n, k)
        paths = steps_to_path(steps, c.action_scale).view(n, k, HORIZON, STEP_DIM)
        return {"paths": paths, "values": values, "best": values.argmax(dim=1), "goal": kind}

    def _sample(self, tokens: Tensor, goals: Tensor, n: int, deterministic: bool) -> Tensor:
        """DDPM ancestral sampling of (n·K, 24, 3) scaled steps."""
        c = self.config
        generators = self._noise.generators(range(n), c.num_samples) if deterministic else None
        x = draw((HORIZON, STEP_DIM), generators, n * c.num_samples).to(tokens.device)
        self.scheduler.set_timesteps(c.num_inference_steps, device=tokens.device)
        for t in self.scheduler.timesteps:
            timestep = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
            noise = self.net.noise(x, timestep, goals, tokens)
            x = self.scheduler.step(noise, t, x, generator=generators).prev_sample
        return x

    def act(self, obs: Mapping[str, Any], deterministic: bool = True) -> np.ndarray:
        """(B, n_waypoints, 3) float32 cumulative ``(dx, dy, dyaw)``: the critic's best trajectory, or an
        in-place rotation where its value is below ``stop_threshold``; with ``selection="random"`` a
        uniformly drawn sample instead (from the episode's noise when deterministic) and no rotation;
        clipped to the waypoint action box."""
        c, n_wp = self.config, self.n_waypoints
        planned = self.plan(obs, deterministic)
        paths, values = planned["paths"], planned["values"]
        if c.selection == "critic":
            best, _ = select_best(paths, values)
            rotate = (values.max(dim=1).values < c.stop_threshold).cpu().numpy()
        else:
            n = paths.shape[0]
            generators = self._noise.generators(range(n)) if deterministic else [None] * n
            index = torch.cat([torch.randint(c.num_samples, (1,), generator=g) for g in generators])
            index = index.to(paths.device)
            best = paths[torch.arange(paths.shape[0], device=paths.device), index]
            rotate = np.zeros(paths.shape[0], bool)
        waypoints = best[:, :n_wp].cpu().numpy().astype(np.float32)
        turn = math.radians(c.rotate_angle) * np.arange(1, n_wp + 1, dtype=np.float32) / n_wp
        waypoints[rotate] = np.stack([np.zeros(n_wp), np.zeros(n_wp), turn], axis=1)
        reach = max(1.0, 0.5 * n_wp)  # the environment's waypoint box (envs.env)
        limit = np.array([reach, reach, math.pi], np.float32)
        return np.clip(waypoints, -limit, limit)
