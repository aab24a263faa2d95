"""CLIP / LongCLIP towers for RDP, read from a local directory through ``transformers`` (nothing is
downloaded).

A CLIP directory is Hugging Face's layout: ``config.json`` (a ``CLIPConfig``), ``model.safetensors`` (a
``CLIPModel`` state dict) and the tokenizer (``vocab.json`` + ``merges.txt``, or ``tokenizer.json``), as
``openai/clip-vit-base-patch16`` ships it or as ``CLIPModel.save_pretrained`` writes it. LongCLIP
(Zhang et al. 2024) is CLIP with 248 text positions; its ``longclip-B.pt`` is converted once into this layout
by :mod:`agents.rdp.clip_convert`. A text tower with fewer positions than asked for is stretched LongCLIP's
way: the first 20 position embeddings are kept and the rest interpolated linearly (:func:`stretch_positions`).
Images of another size than the vision tower's use its interpolated position embeddings
(``interpolate_pos_encoding``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from agents.encoders.common import load_state_dict_checked
from agents.weights import read_json

log = logging.getLogger(__name__)

#: CLIP's image normalisation (OpenAI CLIP ``Normalize``).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Text positions LongCLIP keeps unchanged when it stretches CLIP's 77 to 248.
LONGCLIP_KEEP = 20
TEXT_POSITIONS_KEY = "text_model.embeddings.position_embedding.weight"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


def vit_b16_config(text_positions: int = 77) -> Any:
    """The ``CLIPConfig`` of CLIP ViT-B/16 (text 12×512, 8 heads; vision 12×768, 12 heads, 16-px patches on
    224×224; projection 512), with ``text_positions`` text positions (248 for LongCLIP-B)."""
    from transformers import CLIPConfig

    text = {"max_position_embeddings": text_positions}
    vision = {"patch_size": 16, "image_size": 224}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)


def stretch_positions(table: Tensor, target: int, keep: int = LONGCLIP_KEEP) -> Tensor:
    """Position embeddings (n, W) stretched to (target, W): the first ``keep`` rows unchanged, the remaining
    ``n - keep`` rows linearly interpolated to ``target - keep`` rows (LongCLIP's knowledge-preserved
    stretching). ``target <= n`` keeps the first ``target`` rows."""
    n = table.shape[0]
    if target <= n:
        return table[:target].clone()
    keep = min(keep, n - 1)
    tail = table[keep:].T.unsqueeze(0)  # (1, W, n - keep)
    tail = F.interpolate(tail.float(), size=target - keep, mode="linear", align_corners=True)
    return torch.cat([table[:keep], tail[0].T.to(table.dtype)], dim=0)


def read_clip_config(directory: str | Path) -> Any:
    """The ``CLIPConfig`` of a CLIP directory.

    Raises:
        FileNotFoundError: the directory or its ``config.json`` is missing (the message says what is
            expected).
        ValueError: ``config.json`` is not a CLIP config.
    """
    from transformers import CLIPConfig

    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        what = "directory" if not directory.is_dir() else "config.json"
        raise FileNotFoundError(
            f"{path}: missing {what}; expected a CLIP directory in Hugging Face layout (config.json, "
            "model.safetensors, tokenizer files); convert LongCLIP's .pt with "
            "python -m agents.rdp.clip_convert"
        )
    data = read_json(path, "a CLIPConfig (model_type 'clip')")
    if not isinstance(data, dict) or data.get("model_type") != "clip":
        kind = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected a CLIPConfig with model_type 'clip', got {kind!r}")
    return CLIPConfig.from_dict(data)


def build_clip(config: Any, text_positions: int | None = None) -> Any:
    """A randomly initialised ``CLIPModel`` of ``config`` with ``text_positions`` text positions (None: the
    config's)."""
    from transformers import CLIPModel

    config = config.__class__.from_dict(config.to_dict())
    if text_positions is not None:
        config.text_config.max_position_embeddings = int(text_positions)
    return CLIPModel(config)


def load_clip_weights(model: Any, directory: str | Path) -> None:
    """Load ``directory/model.safetensors`` into ``model``, stretching the text positions when the file has
    fewer than the model (:func:`stretch_positions`).

    Raises:
        FileNotFoundError: the weights file is missing.
        ValueError: it is unreadable, or its tensors do not fit ``model`` (missing, unexpected or
            mis-shaped keys are listed with the file's name).
    """
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (expected the CLIPModel weights as safetensors)")
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error type for truncated or foreign files
        raise ValueError(
            f"{path}: not a readable safetensors file ({err}); expected CLIPModel weights"
        ) from None
    state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
    expected = model.state_dict()[TEXT_POSITIONS_KEY].shape[0]
    table = state.get(TEXT_POSITIONS_KEY)
    if table is not None and table.ndim == 2 and table.shape[0] != expected:
        log.info("%s: text positions %d stretched to %d", path, table.shape[0], expected)
        state[TEXT_POSITIONS_KEY] = stretch_positions(table, expected)
    load_state_dict_checked(model, state, source=str(path))


def load_clip(directory: str | Path, text_positions: int | None = None) -> Any:
    """The ``CLIPModel`` of a CLIP directory with its weights (see :func:`load_clip_weights`)."""
    model = build_clip(read_clip_config(directory), text_positions)
    load_clip_weights(model, directory)
    log.info("loaded CLIP from %s", directory)
    return model


def load_tokenizer(directory: str | Path) -> Any:
    """The CLIP tokenizer of a directory (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``).

    Raises:
        FileNotFoundError: no tokenizer files in ``directory``.
    """
    from transformers import CLIPTokenizer

    directory = Path(directory)
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{directory}: no CLIP tokenizer (expected tokenizer.json, or vocab.json and merges.txt)"
        )
    return CLIPTokenizer.from_pretrained(str(directory), local_files_only=True)


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> tuple[Tensor, Tensor]:
    """(B, L) int64 token ids with start/end tokens and (B, L) int64 attention mask; L is the longest
    instruction (at most ``max_length``)."""
    enc = tokenizer(
        list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return enc["input_ids"], enc["attention_mask"]
