"""Config of the NavDP agent (InternVLA-N1's System 1), with a small default and the published sizes.

The default is a small model that trains from scratch on a CPU: 64×64 inputs, 16-pixel patches, two-layer
ViTs of width 64, a two-layer token compressor and a two-layer denoiser of width 64. :meth:`NavDPConfig.paper`
gives NavDP as InternNav trains it (anchors Part A §2.4, Part B §3): 224×224 inputs, DINOv2 ViT-S/14
encoders (width 384, 12 layers, 6 heads, position table for 518 px as DepthAnythingV2 stores it), a
two-layer compressor to 128 tokens of width 384 and a 16-layer denoiser (8 heads, FFN 1536).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.diffusion import PREDICTION_TYPES
from agents.policy_config import check_positive_ints
from envs.datasets.critic import HISTORY_STRIDE, HORIZON

#: Goal kinds the network encodes, in the order of its goal slots' candidates.
GOAL_KINDS = ("point", "image", "pixel")
#: Values of :attr:`NavDPConfig.goal`: ``auto`` picks from the observation keys present.
GOAL_CHOICES = ("auto", "none", *GOAL_KINDS)
#: How ``act`` picks one of the sampled trajectories.
SELECTIONS = ("critic", "random")
#: Training windows: 7 history frames every 4 steps + the current one; 24 future poses every 2 steps (the
#: System-1 data's, whose critic labels score paths of this shape).
STRIDE = HISTORY_STRIDE

#: Overrides turning the defaults into NavDP's published model.
PAPER_SIZES: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 14,
    "vit_dim": 384,
    "vit_layers": 12,
    "vit_heads": 6,
    "vit_pos_grid": 37,
    "rgb_trainable": False,
    "compress_layers": 2,
    "compress_heads": 8,
    "compress_ffn": 2048,
    "token_dim": 384,
    "decoder_layers": 16,
    "decoder_heads": 8,
    "decoder_ffn": 1536,
    "dropout": 0.1,
    "prediction_type": "epsilon",
}

_POSITIVE_INTS = (
    "image_size", "patch_size", "vit_dim", "vit_layers", "vit_heads", "compress_layers", "compress_heads",
    "compress_ffn", "queries_per_frame", "token_dim", "decoder_layers", "decoder_heads", "decoder_ffn",
    "n_waypoints", "history_every", "num_train_timesteps", "num_inference_steps", "num_samples",
)  # fmt: skip


@dataclass
class NavDPConfig:
    """NavDP's sizes, diffusion, acting and loss settings.

    Attributes:
        name: registry key (``navdp``).
        image_size: side in pixels of the (letter-boxed) RGB and depth inputs (NavDP: 224).
        patch_size: ViT patch side (DINOv2: 14).
        vit_dim, vit_layers, vit_heads: width, blocks and heads of every ViT (ViT-S: 384, 12, 6).
        vit_pos_grid: side of the stored position table (DepthAnythingV2: 37, for 518 px), interpolated
            bicubically to the input's patch grid; None: the input's grid (``image_size // patch_size``).
        rgb_weights: a DepthAnythingV2 ViT-S ``.pth`` (keys ``pretrained.*``) loaded into the RGB encoder;
            None keeps the random initialisation.
        rgb_trainable: train the RGB encoder (NavDP: False, frozen).
        normalize_rgb: ImageNet mean/std after scaling RGB to [0, 1] (DINOv2's preprocessing).
        min_depth, max_depth: depth outside [min, max] metres becomes 0 (NavDP: 0.1, 5). The default keeps
            every reading below 5 m: NavDP's 0.1 m suits a depth camera on the front of a robot body, while
            our camera sits at the centre of a body of radius 0.1 m, so an obstacle the robot is pressed
            against reads 0.09-0.1 m and would become 0, "no reading", like open space beyond 5 m.
        compress_layers, compress_heads: the token compressor's decoder layers and heads (NavDP: 2, 8).
        compress_ffn: its FFN width (NavDP: 2048, PyTorch's default for ``nn.TransformerDecoderLayer``).
        queries_per_frame: learned queries per memory frame; the compressor outputs
            ``(HISTORY + 1) * queries_per_frame`` tokens (NavDP: 8 · 16 = 128).
        token_dim: width of the memory tokens, goal slots and denoiser (NavDP: 384).
        decoder_layers, decoder_heads, decoder_ffn: the causal denoiser's layers, heads and FFN width.
        dropout: dropout in the transformers and on the condition embeddings (NavDP: 0.1, for 1,000 epochs
            on 8 GPUs). The small default has none: on this CPU it trains 1.5x faster without (PyTorch's
            fused attention instead of the math path; drawing the masks took 27 % of a step) and learns the
            turns it misses with it (over-fitting 64 windows for 900 steps: turn-window yaw error
            0.12 rad without, 0.27 with; README, NavDP).
        max_goal_distance: point-goal x is clipped to [0, max], y to [-max, max] metres (NavDP: 10).
        num_train_timesteps, num_inference_steps: DDPM steps (10, 10).
        prediction_type: what the denoiser predicts: ``sample`` (the clean scaled path; the small default) or
            ``epsilon`` (the noise, NavDP's; ``paper()``). From scratch on the CPU data the clean-path head
            learns to avoid obstacles much sooner: at step 4,000 of the same data and schedule, 100
            ``cluttered_hard`` episodes give SR / SPL 0.63 / 0.61 against 0.36 / 0.24 with ε (README, NavDP).
        clip_sample: clip the DDPM's predicted clean sample to [-clip_sample_range, clip_sample_range].
        clip_sample_range: that bound (3.0: a waypoint here is up to 2 expert steps, 0.5 m or 0.52 rad, from
            the last, 2.0 or 2.1 after the ×4 scaling; diffusers' default of 1 would cut them).
        action_scale: training targets are the per-step deltas of the path times this (NavDP: 4).
        num_samples: trajectories sampled per plan and ranked by the critic (32).
        n_waypoints: waypoints of the best trajectory executed before re-planning (of the 24).
        history_every: ``act`` calls (environment steps) between the RGB frames kept as history (NavDP's
            ``memory_digit`` 4; see :mod:`agents.navdp.agent`).
        stop_threshold: when the best critic value is below this, rotate in place instead.
        rotate_angle: degrees (left) of an in-place rotation.
        selection: ``critic`` (follow the sample the critic scores best) or ``random`` (a uniformly drawn
            sample of the K, no rotation: the critic ablation).
        sample_seed: seed of the noise of deterministic acting (restarted at every episode).
        goal: goal kind used by ``act``: ``auto`` (point, then image, then pixel goal, then none, by the keys
            present) or one of ``none``, ``point``, ``image``, ``pixel``.
        action_weight, critic_weight, aux_weight: loss weights (0.8, 0.2, 0.5).
    """

    name: str = "navdp"
    image_size: int = 64
    patch_size: int = 16
    vit_dim: int = 64
    vit_layers: int = 2
    vit_heads: int = 2
    vit_pos_grid: int | None = None
    rgb_weights: str | None = None
    rgb_trainable: bool = True
    normalize_rgb: bool = True
    min_depth: float = 0.0
    max_depth: float = 5.0
    compress_layers: int = 2
    compress_heads: int = 4
    compress_ffn: int = 256
    queries_per_frame: int = 16
    token_dim: int = 64
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_ffn: int = 256
    dropout: float = 0.0
    max_goal_distance: float = 10.0
    num_train_timesteps: int = 10
    num_inference_steps: int = 10
    prediction_type: str = "sample"
    clip_sample: bool = True
    clip_sample_range: float = 3.0
    action_scale: float = 4.0
    num_samples: int = 32
    n_waypoints: int = 4
    history_every: int = 4
    stop_threshold: float = -3.0
    rotate_angle: float = 30.0
    selection: str = "critic"
    sample_seed: int = 0
    goal: str = "auto"
    action_weight: float = 0.8
    critic_weight: float = 0.2
    aux_weight: float = 0.5

    @classmethod
    def paper(cls, **overrides: Any) -> NavDPConfig:
        """NavDP's published sizes (:data:`PAPER_SIZES`), then ``overrides`` (e.g. ``rgb_weights=...``)."""
        return cls(**{**PAPER_SIZES, **overrides})

    @property
    def grid(self) -> int:
        """Patches per side of an input image."""
        return self.image_size // self.patch_size

    def _fail(self, field: str, expected: str) -> None:
        raise ValueError(f"NavDPConfig.{field} must be {expected}, got {getattr(self, field)!r}")

    def __post_init__(self) -> None:
        if self.name != "navdp":
            self._fail("name", "'navdp'")
        if self.prediction_type not in PREDICTION_TYPES:
            self._fail("prediction_type", f"one of {list(PREDICTION_TYPES)}")
        check_positive_ints(self, _POSITIVE_INTS)
        if self.image_size % self.patch_size:
            self._fail("image_size", f"a multiple of patch_size ({self.patch_size})")
        if self.vit_pos_grid is not None and self.vit_pos_grid < 1:
            self._fail("vit_pos_grid", "a positive integer or null")
        for width, heads in (
            ("vit_dim", "vit_heads"),
            ("vit_dim", "compress_heads"),
            ("token_dim", "decoder_heads"),
        ):
            if getattr(self, width) % getattr(self, heads):
                self._fail(width, f"a multiple of {heads} ({getattr(self, heads)})")
        if self.token_dim % 2:
            self._fail("token_dim", "even (sinusoidal timestep embedding)")
        if not 0.0 <= self.min_depth < self.max_depth:
            self._fail("max_depth", f"> min_depth ({self.min_depth}) >= 0")
        for field in ("max_goal_distance", "action_scale", "clip_sample_range"):
            if not (math.isfinite(getattr(self, field)) and getattr(self, field) > 0):
                self._fail(field, "a positive number")
        if not 0.0 <= self.dropout < 1.0:
            self._fail("dropout", "in [0, 1)")
        if self.n_waypoints > HORIZON:
            self._fail("n_waypoints", f"<= the horizon ({HORIZON})")
        if self.num_inference_steps > self.num_train_timesteps:
            self._fail("num_inference_steps", f"<= num_train_timesteps ({self.num_train_timesteps})")
        if self.selection not in SELECTIONS:
            self._fail("selection", f"one of {list(SELECTIONS)}")
        if self.goal not in GOAL_CHOICES:
            self._fail("goal", f"one of {list(GOAL_CHOICES)}")
        for field in ("action_weight", "critic_weight", "aux_weight"):
            if not getattr(self, field) >= 0.0:
                self._fail(field, ">= 0")
        if not math.isfinite(self.stop_threshold) and self.stop_threshold != -math.inf:
            self._fail("stop_threshold", "a number (or -inf: never rotate)")
