"""Config of the System-2 agent (InternVLA-N1's pixel-goal VLM) in two sizes from one code path.

``model_path: null`` (the default) builds a **tiny** Qwen2.5-VL from a ``Qwen2_5_VLConfig`` (a vision tower
of patch 14 with 2×2 spatial merging and a small text model, a few million parameters) with a byte-level BPE
trained on the instruction corpus, trained from scratch on a CPU. ``model_path: /path/to/Qwen2.5-VL-3B-
Instruct`` (or 7B) loads the **real** model, its tokenizer and processor from that local folder, in bf16 with
gradient checkpointing (anchors Part A §1.3: lr 2e-5, vision tower 5e-6, min/max pixels 3136 / 313600).
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class System2Config:
    """System 2: a Qwen2.5-VL answering pixel goals in a look-down image, turns or STOP.

    Attributes:
        name: registry key (``system2``).
        model_path: a local Qwen2.5-VL folder (config, safetensors weights, tokenizer, preprocessor); None
            builds the tiny model.
        dtype: parameter dtype (``bfloat16`` for the real model).
        gradient_checkpointing: recompute activations in the backward pass (the real model).
        vocab_size: tiny tokenizer size (special tokens included).
        corpus_split: an R2R-CE split (file or folder) whose train instructions the tiny tokenizer learns
            from; None uses the instructions or vocabulary the agent is built with.
        vision_depth, vision_hidden, vision_heads, vision_intermediate: the tiny vision tower.
        text_hidden, text_layers, text_heads, text_kv_heads, text_intermediate: the tiny text model.
        image_size: side history and current frames are resized to before the processor.
        min_pixels, max_pixels: the image processor's bounds on an image's area (it resizes to multiples of
            28 within them).
        n_history: history frames per query (up to 8, spread evenly over the episode so far).
        max_new_tokens: greedy generation length per query.
        follow_steps: follower steps toward a pixel goal before System 2 is asked again.
        goal_radius: the follower stops within this geodesic distance of the goal (m).
        lr_vision: learning rate of the vision tower (None: the optimiser's).
        stop_min_prob: answer STOP only when the model gives the STOP answer's first token at least this
            probability, else its best other answer (None: plain greedy decoding, as the anchor).
    """

    name: str = "system2"
    model_path: str | None = None
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    vocab_size: int = 512
    corpus_split: str | None = None
    vision_depth: int = 2
    vision_hidden: int = 96
    vision_heads: int = 4
    vision_intermediate: int = 192
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 512
    image_size: int | None = 56
    min_pixels: int = 3136
    max_pixels: int = 12544
    n_history: int = 8
    max_new_tokens: int = 8
    follow_steps: int = 8
    goal_radius: float = 0.25
    lr_vision: float | None = None
    stop_min_prob: float | None = None

    def __post_init__(self) -> None:
        if self.name != "system2":
            raise ValueError(f"System2Config.name must be 'system2', got {self.name!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"System2Config.dtype must be one of {DTYPES}, got {self.dtype!r}")
        positive = (
            "vocab_size", "vision_depth", "vision_hidden", "vision_heads", "vision_intermediate",
            "text_hidden", "text_layers", "text_heads", "text_kv_heads", "text_intermediate", "min_pixels",
            "max_pixels", "max_new_tokens", "follow_steps",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"System2Config.{name} must be a positive int, got {value!r}")
        size = self.image_size
        if size is not None and (not isinstance(size, int) or size < 28):
            raise ValueError(f"System2Config.image_size must be an int >= 28 or null, got {size!r}")
        if self.vision_hidden % self.vision_heads or self.text_hidden % self.text_heads:
            raise ValueError(
                "System2Config: vision_hidden / text_hidden must be multiples of vision_heads / text_heads, "
                f"got {self.vision_hidden}/{self.vision_heads} and {self.text_hidden}/{self.text_heads}"
            )
        if self.text_heads % self.text_kv_heads:
            raise ValueError(
                f"System2Config.text_heads ({self.text_heads}) must be a multiple of text_kv_heads "
                f"({self.text_kv_heads})"
            )
        if self.min_pixels > self.max_pixels:
            raise ValueError(
                f"System2Config.min_pixels ({self.min_pixels}) must be <= max_pixels ({self.max_pixels})"
            )
        if not 0 <= self.n_history <= 8:
            raise ValueError(f"System2Config.n_history must lie in 0..8, got {self.n_history!r}")
        if self.stop_min_prob is not None and not 0.0 < self.stop_min_prob <= 1.0:
            raise ValueError(
                f"System2Config.stop_min_prob must lie in (0, 1] or be null, got {self.stop_min_prob!r}"
            )
        if not self.goal_radius > 0:
            raise ValueError(f"System2Config.goal_radius must be > 0 m, got {self.goal_radius!r}")

    @property
    def is_tiny(self) -> bool:
        """Whether the model is the tiny one built from a config (no ``model_path``)."""
        return self.model_path is None
