"""Fields shared by the configs of the recurrent VLN-CE agents (Seq2Seq, CMA), with validation and presets.

The defaults are a small model that trains from scratch on a CPU: 64×64 RGB and depth, GroupNorm ResNet-18
encoders with 8 base planes, 32-d trainable word embeddings, hidden size 256. ``paper()`` gives VLN-CE's
sizes: frozen GloVe-50, ImageNet ResNet-50 on 224×224 RGB, frozen DD-PPO ResNet-50 on 256×256 depth,
hidden 512.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.encoders.habitat_resnet import BACKBONES
from agents.encoders.rgb import RGB_ENCODER_KINDS

#: Overrides turning the defaults into VLN-CE's published model (Krantz et al. 2020; anchors Part B §1.3-1.6).
PAPER_SIZES: dict[str, Any] = {
    "rgb_size": 224,
    "depth_size": 256,
    "embedding_size": 50,
    "fine_tune_embeddings": False,
    "instruction_hidden_size": 128,
    "depth_backbone": "resnet50",
    "depth_baseplanes": 32,
    "depth_input_pool": 2,
    "depth_flat_size": 2048,
    "depth_output_size": 128,
    "depth_trainable": False,
    "rgb_encoder": "torchvision",
    "rgb_backbone": "resnet50",
    "rgb_output_size": 256,
    "rgb_trainable": False,
    "hidden_size": 512,
}

_POSITIVE_INTS = (
    "rgb_size",
    "depth_size",
    "max_instruction_length",
    "embedding_size",
    "instruction_hidden_size",
    "depth_baseplanes",
    "depth_input_pool",
    "depth_flat_size",
    "depth_output_size",
    "rgb_baseplanes",
    "rgb_input_pool",
    "rgb_flat_size",
    "rgb_spatial_size",
    "rgb_output_size",
    "hidden_size",
)


def check_positive_ints(config: Any, fields: Iterable[str]) -> None:
    """Fail through ``config._fail(field, expected)`` on the first of ``fields`` that is not an int >= 1
    (a bool is refused too: ``True`` is an int to Python but never a size)."""
    for field in fields:
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            config._fail(field, "a positive integer")


@dataclass
class VLNPolicyConfig:
    """Inputs, encoders, recurrent state and losses of a recurrent VLN agent.

    Attributes:
        name: registry key of the agent.
        rgb_size: side in pixels the RGB frames are resized to.
        depth_size: side in pixels the depth frames are resized to.
        max_depth: metres mapped to 1.0 when depth is normalised to [0, 1].
        normalize_rgb: apply ImageNet mean/std after scaling RGB to [0, 1] (VLN-CE: off).
        max_instruction_length: tokens per instruction after truncation / padding (PAD 0, UNK 1).
        embedding_size: word-vector size.
        embedding_file: VLN-CE ``embeddings.json.gz`` with rows aligned with the agent's vocabulary; random
            initialisation when None.
        fine_tune_embeddings: train the word vectors.
        instruction_hidden_size: LSTM hidden size per direction.
        depth_backbone: ``resnet18`` or ``resnet50`` GroupNorm (DD-PPO layout) ResNet.
        depth_baseplanes: width of its first stage (32 in DD-PPO).
        depth_input_pool: side of the input average pooling (2 in DD-PPO, 1 = none).
        depth_flat_size: flattened size after the compression conv (2048 in DD-PPO).
        depth_output_size: size of the depth linear head / attention values.
        depth_weights: DD-PPO checkpoint to load (``gibson-2plus-resnet50.pth``).
        depth_trainable: train the depth ResNet (False: frozen, eval mode).
        rgb_encoder: ``torchvision`` (ImageNet ResNet layout) or ``groupnorm`` (DD-PPO layout).
        rgb_backbone: ``resnet18`` or ``resnet50``.
        rgb_baseplanes: first-stage width (``groupnorm`` only).
        rgb_input_pool: input average pooling (``groupnorm`` only).
        rgb_flat_size: flattened size after the compression conv (``groupnorm`` only).
        rgb_spatial_size: side of the pooled map (``torchvision`` kind, CMA: 4).
        rgb_output_size: size of the RGB linear head / attention values.
        rgb_weights: torchvision state dict (``resnet50-*.pth``) or DD-PPO checkpoint to load.
        rgb_trainable: train the RGB ResNet (False: frozen, eval mode).
        hidden_size: recurrent state size.
        inflection_weight: weight of inflection steps in the action loss (3.2 for R2R).
        progress_monitor: train a progress head ``tanh(Linear(hidden → 1))`` with MSE when the batch has
            ``progress``.
        progress_alpha: weight of the progress loss.
        progress_stop: acting: STOP when the progress head predicts at least this (the agent believes it
            has arrived), whatever the action head says; None: the action head alone decides (VLN-CE).
            Needs ``progress_monitor``.
    """

    name: str = ""
    rgb_size: int = 64
    depth_size: int = 64
    max_depth: float = 10.0
    normalize_rgb: bool = False
    max_instruction_length: int = 200
    embedding_size: int = 32
    embedding_file: str | None = None
    fine_tune_embeddings: bool = True
    instruction_hidden_size: int = 64
    depth_backbone: str = "resnet18"
    depth_baseplanes: int = 8
    depth_input_pool: int = 1
    depth_flat_size: int = 512
    depth_output_size: int = 64
    depth_weights: str | None = None
    depth_trainable: bool = True
    rgb_encoder: str = "groupnorm"
    rgb_backbone: str = "resnet18"
    rgb_baseplanes: int = 8
    rgb_input_pool: int = 1
    rgb_flat_size: int = 512
    rgb_spatial_size: int = 4
    rgb_output_size: int = 64
    rgb_weights: str | None = None
    rgb_trainable: bool = True
    hidden_size: int = 256
    inflection_weight: float = 3.2
    progress_monitor: bool = True
    progress_alpha: float = 1.0
    progress_stop: float | None = None

    @classmethod
    def paper(cls, **overrides: Any) -> VLNPolicyConfig:
        """VLN-CE's published sizes: ``PAPER_SIZES``, the subclass's ``PAPER_EXTRA``, then ``overrides``."""
        return cls(**{**PAPER_SIZES, **getattr(cls, "PAPER_EXTRA", {}), **overrides})

    def _fail(self, field: str, expected: str) -> None:
        raise ValueError(f"{type(self).__name__}.{field} must be {expected}, got {getattr(self, field)!r}")

    def __post_init__(self) -> None:
        cls_fields = {f.name for f in dataclasses.fields(self)}
        check_positive_ints(
            self, _POSITIVE_INTS + tuple(f for f in ("prev_action_embedding_size",) if f in cls_fields)
        )
        if not self.name:
            self._fail("name", "the agent's registry name")
        for field, minimum in (("max_depth", 0.0), ("inflection_weight", 0.0)):
            if not getattr(self, field) > minimum:
                self._fail(field, f"> {minimum}")
        if not self.progress_alpha >= 0.0:
            self._fail("progress_alpha", ">= 0")
        stop = self.progress_stop
        if stop is not None and not (self.progress_monitor and -1.0 < stop <= 1.0):
            self._fail("progress_stop", "null, or in (-1, 1] with progress_monitor=true")
        for field, choices in (
            ("depth_backbone", tuple(BACKBONES)),
            ("rgb_backbone", tuple(BACKBONES)),
            ("rgb_encoder", RGB_ENCODER_KINDS),
        ):
            if getattr(self, field) not in choices:
                self._fail(field, f"one of {list(choices)}")
        self._check_groupnorm("depth")
        if self.rgb_encoder == "groupnorm":
            self._check_groupnorm("rgb")
        elif self.rgb_size < 32:
            self._fail("rgb_size", ">= 32 for the torchvision ResNet")

    def _check_groupnorm(self, prefix: str) -> None:
        size, pool = getattr(self, f"{prefix}_size"), getattr(self, f"{prefix}_input_pool")
        if (size // pool) < 32 or (size // pool) % 32:
            self._fail(
                f"{prefix}_size",
                f"such that {prefix}_size // {prefix}_input_pool ({pool}) is a multiple of 32",
            )
        if getattr(self, f"{prefix}_baseplanes") % 2:
            self._fail(f"{prefix}_baseplanes", "even (GroupNorm uses baseplanes // 2 groups)")
