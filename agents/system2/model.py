"""The Qwen2.5-VL model and processor of System 2: the tiny one built from a config, the real one read from a
local folder (nothing is downloaded).

A processor is transformers' ``Qwen2_5_VLProcessor`` (the tokenizer + ``Qwen2VLImageProcessor``); it and the
model's config are written into every checkpoint (:func:`save_files`) and read back from it
(:func:`load_files`), so a checkpoint rebuilds exactly without the original folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoTokenizer,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLVideoProcessor,
)

from agents.system2.config import System2Config
from agents.system2.tokenizer import check_vision_tokens, special_token_ids

#: The checkpoint's sub-folder with the model config, the tokenizer and the processor.
MODEL_DIR = "qwen2_5_vl"
MODEL_CONFIG_FILE = "config.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json")


def _has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


class System2Processor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` that may lack its video processor (transformers' video processors need
    torchvision; System 2 feeds images only)."""

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> list[str]:
        """Write the tokenizer (with its chat template) and the image processor's
        ``preprocessor_config.json`` (and the video processor's, when there is one) into the folder."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(folder))
        self.image_processor.save_pretrained(str(folder))
        if self.video_processor is not None:
            self.video_processor.save_pretrained(str(folder))
        return sorted(str(p) for p in folder.iterdir())


def _image_processor_class() -> type:
    # Without torchvision (transformers' fast backend) the PIL image processor does the same work.
    return transformers.Qwen2VLImageProcessor if _has_torchvision() else transformers.Qwen2VLImageProcessorPil


def build_processor(
    tokenizer, min_pixels: int, max_pixels: int, image_processor: Any = None
) -> Qwen2_5_VLProcessor:
    """A ``Qwen2_5_VLProcessor`` assembled from ``tokenizer`` and a ``Qwen2VLImageProcessor`` (the one given,
    or a new one) bounded to [``min_pixels``, ``max_pixels``] pixels per image (patch 14, 2×2 merge)."""
    size = {"shortest_edge": int(min_pixels), "longest_edge": int(max_pixels)}
    shape = {"size": size, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
    if image_processor is None:
        image_processor = _image_processor_class()(**shape)
    image_processor.size = size
    # The video processor (System 2 feeds images only) needs torchvision; without it, it is left out.
    video_processor = Qwen2VLVideoProcessor(**shape) if _has_torchvision() else None
    return System2Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


def tiny_model_config(config: System2Config, tokenizer) -> Qwen2_5_VLConfig:
    """The tiny ``Qwen2_5_VLConfig``: vocabulary and special-token ids from ``tokenizer``, sizes from
    ``config`` (multimodal rotary sections split the text head dimension 1:1.5:1.5 as Qwen's 16:24:24)."""
    half = config.text_hidden // config.text_heads // 2
    temporal = half // 4
    spatial = (half - temporal) // 2
    mrope = [temporal, spatial, half - temporal - spatial]
    ids = special_token_ids(tokenizer)
    vision = {
        "depth": config.vision_depth,
        "hidden_size": config.vision_hidden,
        "intermediate_size": config.vision_intermediate,
        "num_heads": config.vision_heads,
        "out_hidden_size": config.text_hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": list(range(config.vision_depth)),
    }
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": config.text_hidden,
        "intermediate_size": config.text_intermediate,
        "num_hidden_layers": config.text_layers,
        "num_attention_heads": config.text_heads,
        "num_key_value_heads": config.text_kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        "bos_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **ids)


def _require_files(folder: Path, patterns: tuple[str, ...], what: str) -> None:
    if not any(any(folder.glob(p)) for p in patterns):
        raise FileNotFoundError(
            f"{folder}: no {what} found (expected one of {', '.join(patterns)}); System2Config.model_path "
            "must be a local Qwen2.5-VL folder (nothing is downloaded)"
        )


def load_pretrained(
    path: str | Path, dtype: torch.dtype, min_pixels: int | None = None, max_pixels: int | None = None
) -> tuple[Any, Qwen2_5_VLProcessor]:
    """The model and processor of a local Qwen2.5-VL folder (pixel bounds: the given ones, else the folder's).

    Raises:
        FileNotFoundError: the folder, its ``config.json``, its safetensors weights or its tokenizer is
            missing (the message names the path). ValueError: the tokenizer lacks a vision special token.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"System2Config.model_path {folder}: no such folder (a local Qwen2.5-VL copy)"
        )
    _require_files(folder, (MODEL_CONFIG_FILE,), "model config")
    _require_files(folder, _WEIGHT_PATTERNS, "weights")
    processor = load_processor(folder, min_pixels, max_pixels)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), dtype=dtype)
    return model, processor


def load_processor(folder: Path, min_pixels: int | None = None, max_pixels: int | None = None):
    """The tokenizer (checked for the vision tokens) and processor saved in ``folder``."""
    _require_files(folder, _TOKENIZER_FILES, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    check_vision_tokens(tokenizer, f"tokenizer in {folder}")
    if tokenizer.chat_template is None:
        raise ValueError(f"tokenizer in {folder}: it has no chat template (Qwen2.5-VL tokenizers carry one)")
    image_processor = None
    if (folder / "preprocessor_config.json").is_file():
        image_processor = _image_processor_class().from_pretrained(str(folder))
    size = getattr(image_processor, "size", None) or {}
    lo = min_pixels or size.get("shortest_edge", 3136)
    hi = max_pixels or size.get("longest_edge", 313600)
    return build_processor(tokenizer, lo, hi, image_processor)


def save_files(directory: Path, model, processor) -> list[str]:
    """Write the model config, the tokenizer and the processor into ``directory/qwen2_5_vl``; returns the
    written names relative to ``directory``."""
    folder = Path(directory) / MODEL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return sorted(f"{MODEL_DIR}/{p.name}" for p in folder.iterdir() if p.is_file())


def load_files(directory: Path, dtype: torch.dtype) -> tuple[Any, Qwen2_5_VLProcessor]:
    """A model with random weights from the config saved by :func:`save_files`, and the saved processor."""
    folder = Path(directory) / MODEL_DIR
    _require_files(folder, (MODEL_CONFIG_FILE,), "model config")
    model_config = Qwen2_5_VLConfig.from_pretrained(str(folder))
    model = Qwen2_5_VLForConditionalGeneration._from_config(model_config, dtype=dtype)
    return model, load_processor(folder)
