"""Config of the dual systems: a frozen System 2 joined to a System-1 head (InternVLA-N1, anchors A §2.6).

``system1`` picks the head: ``navdp_async`` ("InternVLA-N1 (Dual System) w/ NavDP*", RGB-D, DDPM) or
``nextdit_async`` ("DualVLN", RGB only, a NextDiT trained by rectified flow). ``system2`` is the folder of a
trained System-2 agent (a run's ``checkpoints/last/agent`` or any ``Agent.save`` folder). The defaults are
small and train on a CPU; :meth:`DualConfig.paper` gives the anchor's sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.navdp.config import PAPER_SIZES as NAVDP_PAPER_SIZES
from agents.policy_config import check_positive_ints

#: System-1 heads.
SYSTEM1_CHOICES = ("navdp_async", "nextdit_async")
#: Inference modes: System 2 then System 1 every step, or System 2 re-queried every few System-1 steps.
INFER_MODES = ("sync", "partial_async")
#: Resampled future path: 33 points every 0.1 m (3.2 m), i.e. 32 steps.
N_STEPS = 32
PATH_SPACING = 0.1
#: The xy of a step is scaled by this in the training target (0.1 m -> 0.4).
XY_SCALE = 4.0

#: Overrides turning the defaults into the anchor's model (System 2's size is its checkpoint's): NavDP's
#: published backbone and decoder (its frozen-RGB switch aside: DualVLN trains its RGB encoder), then the
#: dual heads' own parts.
PAPER_SIZES: dict[str, Any] = {
    **{k: v for k, v in NAVDP_PAPER_SIZES.items() if k != "rgb_trainable"},
    "goal_mlp": [896, 448],
    "memory_layers": 3,
    "memory_heads": 6,
    "qformer_queries": 32,
    "qformer_layers": 3,
    "qformer_heads": 12,
    "cond_dim": 768,
    "dit_dim": 384,
    "dit_layers": 12,
    "dit_heads": 6,
}

_POSITIVE = (
    "n_query", "image_size", "patch_size", "vit_dim", "vit_layers", "vit_heads", "token_dim",
    "compress_layers", "compress_heads", "compress_ffn", "queries_per_frame", "decoder_layers",
    "decoder_heads", "decoder_ffn", "ddpm_steps", "memory_layers", "memory_heads", "qformer_queries",
    "qformer_layers", "qformer_heads", "cond_dim", "dit_dim", "dit_layers", "dit_heads", "flow_train_steps",
    "flow_steps", "num_samples", "n_waypoints", "sys2_max_forward_step", "s1_replan_every",
)  # fmt: skip


@dataclass
class DualConfig:
    """The dual systems' parts, sizes and acting settings.

    Attributes:
        name: registry key (``dual``).
        system1: ``navdp_async`` or ``nextdit_async``.
        system2: folder of a saved System-2 agent (required to build a fresh agent; a saved dual agent
            carries its System 2).
        freeze_system2: keep System 2's weights fixed (InternVLA-N1); False trains them too.
        n_query: learned latent queries appended after the conversation (4).
        image_size, patch_size, vit_dim, vit_layers, vit_heads, vit_pos_grid: the System-1 ViTs (NavDP's
            RGB-D backbone; DualVLN's RGB encoder), as in :class:`agents.navdp.config.NavDPConfig`.
        rgb_weights: a DepthAnythingV2 ViT-S ``.pth`` for the RGB encoder (None: random).
        rgb_trainable: train the RGB encoder (NavDP*: frozen; DualVLN: trained).
        token_dim: NavDP*: width of the memory tokens, goal token and denoiser.
        goal_mlp: NavDP*: hidden widths of the latent -> goal MLP (anchor: 896, 448).
        compress_layers, compress_heads, compress_ffn, queries_per_frame: NavDP*'s token compressor
            (2 frames x ``queries_per_frame`` memory tokens; anchor: 16, so 32 tokens).
        decoder_layers, decoder_heads, decoder_ffn: NavDP*'s causal denoiser.
        dropout: dropout of NavDP*'s transformers.
        ddpm_steps: NavDP*'s DDPM train and inference steps (20).
        memory_layers, memory_heads: DualVLN's memory encoder over the RGB tokens.
        qformer_queries, qformer_layers, qformer_heads: DualVLN's Q-Former (32 memory tokens).
        cond_dim: DualVLN's condition width (Q-Former and projected latents; anchor 768).
        dit_dim, dit_layers, dit_heads: DualVLN's ``LuminaNextDiT2DModel``.
        flow_train_steps: the flow-matching scheduler's train timesteps (1000).
        flow_steps: Euler steps at inference (10).
        guidance_scale: classifier-free guidance against zero conditioning (1.0: none).
        cond_drop: probability of zeroing a sample's conditioning in training (for guidance).
        num_samples: trajectories sampled per plan and averaged (K, 32).
        n_waypoints: waypoints of the plan handed to the waypoint controller per step.
        infer_mode: ``sync`` or ``partial_async``.
        sys2_max_forward_step: partial_async: System-1 steps before System 2 is asked again (8).
        s1_replan_every: partial_async: System 1 re-plans every this many steps (4), following the last
            plan (moved into the current frame by odometry) in between.
        sample_seed: seed of the noise of deterministic acting (restarted at every episode).
    """

    name: str = "dual"
    system1: str = "navdp_async"
    system2: str | None = None
    freeze_system2: bool = True
    n_query: int = 4
    image_size: int = 64
    patch_size: int = 16
    vit_dim: int = 64
    vit_layers: int = 2
    vit_heads: int = 2
    vit_pos_grid: int | None = None
    rgb_weights: str | None = None
    rgb_trainable: bool = True
    token_dim: int = 64
    goal_mlp: list[int] = field(default_factory=lambda: [128])
    compress_layers: int = 1
    compress_heads: int = 4
    compress_ffn: int = 128
    queries_per_frame: int = 16
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_ffn: int = 128
    dropout: float = 0.0
    ddpm_steps: int = 20
    memory_layers: int = 1
    memory_heads: int = 2
    qformer_queries: int = 32
    qformer_layers: int = 1
    qformer_heads: int = 4
    cond_dim: int = 64
    dit_dim: int = 64
    dit_layers: int = 2
    dit_heads: int = 4
    flow_train_steps: int = 1000
    flow_steps: int = 10
    guidance_scale: float = 1.0
    cond_drop: float = 0.0
    num_samples: int = 32
    n_waypoints: int = 8
    infer_mode: str = "sync"
    sys2_max_forward_step: int = 8
    s1_replan_every: int = 4
    sample_seed: int = 0

    @classmethod
    def paper(cls, **overrides: Any) -> DualConfig:
        """The anchor's sizes (:data:`PAPER_SIZES`), then ``overrides`` (``system1=...``, ``system2=...``)."""
        return cls(**{**PAPER_SIZES, **overrides})

    def _fail(self, name: str, expected: str) -> None:
        raise ValueError(f"DualConfig.{name} must be {expected}, got {getattr(self, name)!r}")

    def __post_init__(self) -> None:
        if self.name != "dual":
            self._fail("name", "'dual'")
        if self.system1 not in SYSTEM1_CHOICES:
            self._fail("system1", f"one of {list(SYSTEM1_CHOICES)}")
        if self.infer_mode not in INFER_MODES:
            self._fail("infer_mode", f"one of {list(INFER_MODES)}")
        check_positive_ints(self, _POSITIVE)
        self.goal_mlp = [int(w) for w in self.goal_mlp]
        if any(w < 1 for w in self.goal_mlp):
            self._fail("goal_mlp", "a list of positive widths")
        if self.image_size % self.patch_size:
            self._fail("image_size", f"a multiple of patch_size ({self.patch_size})")
        for width, heads in (
            ("vit_dim", "vit_heads"), ("vit_dim", "compress_heads"), ("token_dim", "decoder_heads"),
            ("token_dim", "compress_heads"), ("vit_dim", "memory_heads"), ("cond_dim", "qformer_heads"),
            ("dit_dim", "dit_heads"),
        ):  # fmt: skip
            if getattr(self, width) % getattr(self, heads):
                self._fail(width, f"a multiple of {heads} ({getattr(self, heads)})")
        if (self.dit_dim // self.dit_heads) % 4:
            self._fail("dit_dim", "such that dit_dim / dit_heads is a multiple of 4 (2-D rotary embedding)")
        if self.n_waypoints > N_STEPS:
            self._fail("n_waypoints", f"<= {N_STEPS}")
        if self.flow_steps > self.flow_train_steps:
            self._fail("flow_steps", f"<= flow_train_steps ({self.flow_train_steps})")
        if not 0.0 <= self.cond_drop < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"DualConfig.cond_drop and dropout must lie in [0, 1), got {self.cond_drop!r}, "
                f"{self.dropout!r}"
            )
        if not self.guidance_scale >= 0.0:
            self._fail("guidance_scale", ">= 0")
