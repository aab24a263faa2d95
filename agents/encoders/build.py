"""Build the encoders of a recurrent VLN agent from its :class:`agents.policy_config.VLNPolicyConfig`."""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor

from agents.encoders.depth import DepthEncoder
from agents.encoders.instruction import InstructionEncoder
from agents.encoders.rgb import RGBEncoder

log = logging.getLogger(__name__)


def _weights(config: Any, field: str, trainable: bool, load_pretrained: bool) -> str | None:
    path = getattr(config, field) if load_pretrained else None
    if load_pretrained and path is None and not trainable:
        log.warning("%s: frozen encoder without %s keeps its random initialisation", config.name, field)
    return path


def make_instruction_encoder(
    config: Any,
    vocab_size: int,
    embeddings: Tensor | None,
    bidirectional: bool,
    final_state_only: bool,
    load_pretrained: bool = True,
) -> InstructionEncoder:
    """The word-embedding + LSTM encoder of ``config`` (``embeddings`` from the GloVe file, or None)."""
    if load_pretrained and embeddings is None and not config.fine_tune_embeddings:
        log.warning("%s: frozen word embeddings without embedding_file keep their random values", config.name)
    return InstructionEncoder(
        vocab_size,
        config.embedding_size,
        config.instruction_hidden_size,
        bidirectional=bidirectional,
        final_state_only=final_state_only,
        embeddings=embeddings,
        fine_tune_embeddings=config.fine_tune_embeddings,
    )


def make_depth_encoder(
    config: Any, spatial_output: bool, spatial_embedding_size: int = 64, load_pretrained: bool = True
) -> DepthEncoder:
    """The DD-PPO depth encoder of ``config``; loads ``depth_weights`` when ``load_pretrained``."""
    return DepthEncoder(
        input_size=config.depth_size,
        output_size=config.depth_output_size,
        backbone=config.depth_backbone,
        baseplanes=config.depth_baseplanes,
        flat_size=config.depth_flat_size,
        input_pool=config.depth_input_pool,
        spatial_output=spatial_output,
        spatial_embedding_size=spatial_embedding_size,
        trainable=config.depth_trainable,
        weights_path=_weights(config, "depth_weights", config.depth_trainable, load_pretrained),
    )


def make_rgb_encoder(
    config: Any, spatial_output: bool, spatial_embedding_size: int = 64, load_pretrained: bool = True
) -> RGBEncoder:
    """The RGB encoder of ``config``; loads ``rgb_weights`` when ``load_pretrained``."""
    return RGBEncoder(
        input_size=config.rgb_size,
        output_size=config.rgb_output_size,
        kind=config.rgb_encoder,
        backbone=config.rgb_backbone,
        baseplanes=config.rgb_baseplanes,
        flat_size=config.rgb_flat_size,
        input_pool=config.rgb_input_pool,
        spatial_output=spatial_output,
        spatial_size=config.rgb_spatial_size,
        spatial_embedding_size=spatial_embedding_size,
        trainable=config.rgb_trainable,
        weights_path=_weights(config, "rgb_weights", config.rgb_trainable, load_pretrained),
    )
