"""Config of the Recurrent Diffusion Policy (RDP) agent, with its small default and the published sizes.

The default is a small model that trains from scratch on a CPU: 64×64 RGB and depth through GroupNorm
ResNet-18s with 8 base planes, a word-embedding + 2-layer transformer instruction encoder over the agent's
vocabulary, 64-d tokens, a GRU of 128 and a 2 + 1 layer diffusion transformer of width 64.
:meth:`RDPConfig.paper` gives InternNav's RDP (VLN-PE, anchors Part A §2.3, Part B §4): frozen (Long)CLIP
ViT-B/16 image and text towers, the frozen DD-PPO ResNet-50 depth encoder, 512-d tokens, GRU 512,
8-head cross-modal layers and a diffusion transformer of width 512 with 3 decoder and 1 condition layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.diffusion import PREDICTION_TYPES
from agents.encoders.habitat_resnet import BACKBONES
from agents.policy_config import check_positive_ints

RGB_ENCODERS = ("conv", "clip")
TEXT_ENCODERS = ("transformer", "clip")

#: Overrides turning the default into the published RDP (anchors Part A §2.3, Part B §4).
PAPER_SIZES: dict[str, Any] = {
    "rgb_encoder": "clip",
    "text_encoder": "clip",
    "clip_text_positions": 248,
    "max_instruction_length": 248,
    "rgb_size": 224,
    "depth_size": 256,
    "depth_backbone": "resnet50",
    "depth_baseplanes": 32,
    "depth_input_pool": 2,
    "depth_flat_size": 2048,
    "depth_spatial_embedding_size": 64,
    "depth_feature_size": 768,
    "depth_trainable": False,
    "token_size": 512,
    "hidden_size": 512,
    "cross_modal_heads": 8,
    "head_size": 512,
    "head_layers": 3,
    "head_cond_layers": 1,
    "head_heads": 8,
    "head_dropout": 0.2,
    "odometry_xy_scale": 1.0,
    "action_loss_weight": 0.0,
    "prediction_type": "epsilon",
}

_POSITIVE_INTS = (
    "rgb_size", "depth_size", "max_instruction_length", "rgb_baseplanes", "rgb_flat_size",
    "depth_baseplanes", "depth_input_pool", "depth_flat_size", "depth_spatial_embedding_size",
    "depth_feature_size", "embedding_size", "text_layers", "text_heads", "token_size", "hidden_size",
    "action_embedding_size", "odometry_embedding_size", "cross_modal_layers", "text_cross_modal_layers",
    "cross_modal_heads", "head_size", "head_layers", "head_heads", "horizon", "len_traj_act",
    "n_prev_actions", "num_train_timesteps", "num_inference_steps", "stop_window",
)  # fmt: skip


@dataclass
class RDPConfig:
    """RDP: vision tokens + GRU state + cross-modal fusion → a diffusion transformer over future steps.

    Attributes:
        name: registry key (``rdp``).
        rgb_encoder: ``conv`` (a trainable GroupNorm ResNet; CLS = global mean + 4 pooled quadrants) or
            ``clip`` (the CLIP ViT image tower, ``multi_patches_avg_pooling``: CLS + 4 average-pooled patch
            quadrants).
        text_encoder: ``transformer`` (trainable word embedding + transformer over the agent's vocabulary, a
            learned summary token first) or ``clip`` (the CLIP text tower; its pooled EOT embedding first).
        clip_path: a local CLIP directory in Hugging Face layout (``config.json``, ``model.safetensors``,
            tokenizer files); LongCLIP converted once with ``python -m agents.rdp.clip``. None with a
            ``clip`` encoder: a randomly initialised ViT-B/16 (for counting parameters; it cannot tokenise).
        clip_text_positions: text positions of the CLIP text tower (248 for LongCLIP); a checkpoint with
            fewer is stretched LongCLIP's way (first 20 kept, the rest interpolated). None: the file's.
        clip_trainable: train the CLIP towers (InternNav: frozen).
        rgb_size: side the RGB frames are resized to (224 for CLIP).
        depth_size: side the depth frames are resized to.
        max_depth: metres mapped to 1.0 when depth is normalised.
        max_instruction_length: tokens per instruction (words, or CLIP BPE tokens with SOT/EOT).
        rgb_backbone, rgb_baseplanes, rgb_flat_size: the ``conv`` RGB encoder (DD-PPO layout ResNet).
        depth_backbone, depth_baseplanes, depth_input_pool, depth_flat_size: the DD-PPO depth ResNet.
        depth_spatial_embedding_size: learned per-cell embedding appended to the depth map (64 in RDP).
        depth_feature_size: the flattened depth map → Linear → this → Linear → ``token_size``, added to
            vision token 0 (RDP: 768).
        depth_weights: a DD-PPO checkpoint for the depth ResNet.
        depth_trainable: train the depth ResNet.
        embedding_size: word-embedding size of the ``transformer`` text encoder.
        text_layers, text_heads: its transformer layers and heads (width ``token_size``).
        token_size: width D of vision, text, fusion and condition tokens (RDP: 512).
        hidden_size: GRU state size (RDP: 512).
        action_embedding_size: previous-action embedding fed to the GRU (Linear 3 → 64).
        odometry_embedding_size: odometry embedding fed to the GRU (Linear 3 → 64).
        odometry_xy_scale: odometry x, y (metres) are multiplied by this before the embeddings.
        cross_modal_layers: layers of image → text fusion; text_cross_modal_layers: of text → image.
        cross_modal_heads: attention heads of the fusion layers (RDP: 8).
        env_dropout: dropout on raw image features (RDP: 0.3); dropout: elsewhere (RDP: 0.1).
        head_size, head_layers, head_cond_layers, head_heads, head_dropout: the diffusion transformer's
            width, causal decoder layers, condition-encoder layers, heads and embedding dropout.
        horizon: future steps predicted per plan (8).
        len_traj_act: decoded actions executed per plan before re-planning (model config 4; eval config 2).
        n_prev_actions: previous actions among the condition tokens (4).
        num_train_timesteps, num_inference_steps: DDPM steps (20, 20).
        prediction_type: what the head predicts, ``epsilon`` (the noise: InternNav's RDP, :meth:`paper`) or
            ``sample`` (the clean plan; the small default). On snapped labels most of the ε-loss sits at low
            noise, where the plan is readable from the noisy sample and the condition cannot help; predicting
            the sample puts the loss where the condition decides the plan (measured: the README's RDP
            section).
        guidance_scale: classifier-free guidance at sampling (1.5; 1.0 = off, the conditional prediction).
        cfg_mask_prob: probability that a training step's RGB and instruction tokens are replaced by the
            learned mask token (0.25).
        sample_seed: seed of the noise of deterministic acting (restarted at every episode).
        use_discrete_dataset: snap label steps to the discrete actions' semantics.
        forward_step: metres of a MOVE_FORWARD (0.25); turn_angle: degrees of a TURN (15).
        max_dxy, max_dyaw: normalisation bounds of (dx, dy) metres and dyaw radians (0.25, 0.27): labels are
            divided by them and clipped to [-1, 1]; a snapped turn is ``± max_dyaw``.
        supervise_after_end: train steps past the end of an episode that ended with STOP on zero motion.
        move_threshold: a decoded step with |dx| and |dy| below this (metres) is a turn, else a forward.
        stop_threshold: STOP when the stop-progress prediction exceeds this (0.85).
        stop_window: STOP at the first of this many consecutive near-zero steps (|dx|, |dy|, |dyaw| below
            ``move_threshold``).
        progress_alpha: weight of the progress-monitor MSE; stop_progress_weight: of the stop-progress MSE.
        action_loss_weight: weight of an auxiliary cross-entropy of the expert's next action, read from [GRU
            state, fused text summary] (two of the diffusion head's condition tokens). Not in InternNav's
            RDP (0 in :meth:`paper`, whose frozen CLIP towers give informative tokens from the start): with
            encoders trained from scratch by the ε-loss alone the head learns to ignore its condition and
            samples the marginal plan (measured: the README's RDP section), and this loss gives the encoders
            a direct signal.
    """

    name: str = "rdp"
    rgb_encoder: str = "conv"
    text_encoder: str = "transformer"
    clip_path: str | None = None
    clip_text_positions: int | None = None
    clip_trainable: bool = False
    rgb_size: int = 64
    depth_size: int = 64
    max_depth: float = 10.0
    max_instruction_length: int = 200
    rgb_backbone: str = "resnet18"
    rgb_baseplanes: int = 8
    rgb_flat_size: int = 512
    depth_backbone: str = "resnet18"
    depth_baseplanes: int = 8
    depth_input_pool: int = 1
    depth_flat_size: int = 512
    depth_spatial_embedding_size: int = 16
    depth_feature_size: int = 128
    depth_weights: str | None = None
    depth_trainable: bool = True
    embedding_size: int = 64
    text_layers: int = 2
    text_heads: int = 4
    token_size: int = 64
    hidden_size: int = 128
    action_embedding_size: int = 64
    odometry_embedding_size: int = 64
    odometry_xy_scale: float = 0.1
    cross_modal_layers: int = 2
    text_cross_modal_layers: int = 2
    cross_modal_heads: int = 4
    env_dropout: float = 0.3
    dropout: float = 0.1
    head_size: int = 64
    head_layers: int = 2
    head_cond_layers: int = 1
    head_heads: int = 4
    head_dropout: float = 0.1
    horizon: int = 8
    len_traj_act: int = 4
    n_prev_actions: int = 4
    num_train_timesteps: int = 20
    num_inference_steps: int = 20
    prediction_type: str = "sample"
    guidance_scale: float = 1.5
    cfg_mask_prob: float = 0.25
    sample_seed: int = 0
    use_discrete_dataset: bool = True
    forward_step: float = 0.25
    turn_angle: float = 15.0
    max_dxy: float = 0.25
    max_dyaw: float = 0.27
    supervise_after_end: bool = True
    move_threshold: float = 0.1
    stop_threshold: float = 0.85
    stop_window: int = 3
    progress_alpha: float = 1.0
    stop_progress_weight: float = 10.0
    action_loss_weight: float = 1.0

    @classmethod
    def paper(cls, **overrides: Any) -> RDPConfig:
        """InternNav's RDP sizes (:data:`PAPER_SIZES`), then ``overrides`` (e.g. ``clip_path=...``)."""
        return cls(**{**PAPER_SIZES, **overrides})

    def _fail(self, field: str, expected: str) -> None:
        raise ValueError(f"RDPConfig.{field} must be {expected}, got {getattr(self, field)!r}")

    def __post_init__(self) -> None:
        check_positive_ints(self, _POSITIVE_INTS)
        if self.name != "rdp":
            self._fail("name", "'rdp'")
        for field, choices in (
            ("prediction_type", PREDICTION_TYPES),
            ("rgb_encoder", RGB_ENCODERS),
            ("text_encoder", TEXT_ENCODERS),
            ("rgb_backbone", tuple(BACKBONES)),
            ("depth_backbone", tuple(BACKBONES)),
        ):
            if getattr(self, field) not in choices:
                self._fail(field, f"one of {list(choices)}")
        positions = self.clip_text_positions
        if positions is not None and (isinstance(positions, bool) or positions < 2):
            self._fail("clip_text_positions", "an integer >= 2 or null")
        for field in ("max_depth", "forward_step", "turn_angle", "max_dxy", "max_dyaw", "move_threshold"):
            if not (math.isfinite(getattr(self, field)) and getattr(self, field) > 0):
                self._fail(field, "a positive number")
        for field in ("env_dropout", "dropout", "head_dropout", "cfg_mask_prob"):
            if not 0.0 <= getattr(self, field) < 1.0:
                self._fail(field, "in [0, 1)")
        for field in ("progress_alpha", "stop_progress_weight", "odometry_xy_scale", "action_loss_weight"):
            if not getattr(self, field) >= 0.0:
                self._fail(field, ">= 0")
        if not self.guidance_scale >= 0.0:
            self._fail("guidance_scale", ">= 0 (1.0 = no guidance)")
        if not 0.0 < self.stop_threshold <= 1.0:
            self._fail("stop_threshold", "in (0, 1]")
        self._check_sizes()

    def _check_sizes(self) -> None:
        if self.len_traj_act > self.horizon:
            self._fail("len_traj_act", f"<= horizon ({self.horizon})")
        if self.num_inference_steps > self.num_train_timesteps:
            self._fail("num_inference_steps", f"<= num_train_timesteps ({self.num_train_timesteps})")
        for width, heads in (
            ("token_size", "cross_modal_heads"),
            ("token_size", "text_heads"),
            ("head_size", "head_heads"),
        ):
            if getattr(self, width) % getattr(self, heads):
                self._fail(width, f"a multiple of {heads} ({getattr(self, heads)})")
        for prefix in ("rgb", "depth"):
            pool = self.depth_input_pool if prefix == "depth" else 1
            size = getattr(self, f"{prefix}_size")
            if (prefix == "depth" or self.rgb_encoder == "conv") and (
                (size // pool) < 32 or (size // pool) % 32
            ):
                self._fail(f"{prefix}_size", "such that size // input pool is a multiple of 32")
            if getattr(self, f"{prefix}_baseplanes") % 2:
                self._fail(f"{prefix}_baseplanes", "even (GroupNorm uses baseplanes // 2 groups)")
