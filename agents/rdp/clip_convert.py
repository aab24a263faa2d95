"""One-time conversion of an OpenAI-format CLIP / LongCLIP checkpoint (``longclip-B.pt``) into the
Hugging Face CLIP directory that RDP reads (``config.json`` + ``model.safetensors`` + tokenizer files).

    python -m agents.rdp.clip_convert checkpoints/clip-long/longclip-B.pt checkpoints/longclip-B \\
        --tokenizer checkpoints/clip-vit-base-patch16

The ``.pt`` file is read with ``torch.load(weights_only=True)``: PyTorch's allow-list unpickler, which
rebuilds only tensors and plain containers and refuses every other class, so a hostile file cannot run code.
The architecture is read off the tensor shapes (OpenAI's convention: 64-d attention heads, quick-GELU;
``--head-width`` for other models).
LongCLIP's two text position tables are merged as LongCLIP's forward uses them: rows 0-19 from
``positional_embedding`` and rows 20-247 from ``positional_embedding_res``. The tokenizer (CLIP's BPE, which
LongCLIP shares) is copied from ``--tokenizer`` (any CLIP directory holding ``vocab.json`` and ``merges.txt``
or ``tokenizer.json``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from agents.encoders.common import read_torch_checkpoint
from agents.rdp.clip import CONFIG_FILE, LONGCLIP_KEEP, WEIGHTS_FILE, build_clip

log = logging.getLogger(__name__)

_LAYER_KEYS = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
    "attn.out_proj": "self_attn.out_proj",
}


def _layers(state: Mapping[str, Tensor], prefix: str) -> int:
    ids = {int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(ids) + 1 if ids else 0


def _convert_tower(state: Mapping[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    """Transformer blocks ``<src>resblocks.i.*`` → ``<dst>encoder.layers.i.*`` (q/k/v split from in_proj)."""
    out = {}
    for i in range(_layers(state, f"{src}resblocks.")):
        block, layer = f"{src}resblocks.{i}.", f"{dst}encoder.layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state[f"{block}attn.in_proj_{kind}"].chunk(3, dim=0)
            for name, t in (("q", q), ("k", k), ("v", v)):
                out[f"{layer}self_attn.{name}_proj.{kind}"] = t.clone()
            for old, new in _LAYER_KEYS.items():
                out[f"{layer}{new}.{kind}"] = state[f"{block}{old}.{kind}"]
    return out


def text_positions(state: Mapping[str, Tensor]) -> Tensor:
    """The effective text position table: LongCLIP's merged tables, or CLIP's one table."""
    table = state["positional_embedding"]
    if "positional_embedding_res" in state:
        table = torch.cat([table[:LONGCLIP_KEEP], state["positional_embedding_res"][LONGCLIP_KEEP:]], dim=0)
    return table


def config_from_state(state: Mapping[str, Tensor], head_width: int = 64) -> Any:
    """A ``CLIPConfig`` read off an OpenAI-format state dict's shapes (``head_width`` channels per attention
    head, 64 in OpenAI's and LongCLIP's models)."""
    from transformers import CLIPConfig

    vocab, text_width = state["token_embedding.weight"].shape
    vision_width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text = {
        "vocab_size": vocab, "hidden_size": text_width, "num_attention_heads": text_width // head_width,
        "intermediate_size": state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _layers(state, "transformer.resblocks."),
        "max_position_embeddings": text_positions(state).shape[0], "hidden_act": "quick_gelu",
        "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "pad_token_id": vocab - 1,
    }  # fmt: skip
    vision = {
        "hidden_size": vision_width, "num_attention_heads": vision_width // head_width, "patch_size": patch,
        "intermediate_size": state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _layers(state, "visual.transformer.resblocks."), "image_size": grid * patch,
        "hidden_act": "quick_gelu",
    }  # fmt: skip
    return CLIPConfig(
        text_config=text, vision_config=vision, projection_dim=state["text_projection"].shape[1]
    )


def convert_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """OpenAI-format CLIP tensors → ``CLIPModel`` keys."""
    out = _convert_tower(state, "transformer.", "text_model.")
    out.update(_convert_tower(state, "visual.transformer.", "vision_model."))
    out["text_model.embeddings.token_embedding.weight"] = state["token_embedding.weight"]
    out["text_model.embeddings.position_embedding.weight"] = text_positions(state)
    out["text_model.final_layer_norm.weight"] = state["ln_final.weight"]
    out["text_model.final_layer_norm.bias"] = state["ln_final.bias"]
    out["text_projection.weight"] = state["text_projection"].T
    out["vision_model.embeddings.class_embedding"] = state["visual.class_embedding"]
    out["vision_model.embeddings.patch_embedding.weight"] = state["visual.conv1.weight"]
    out["vision_model.embeddings.position_embedding.weight"] = state["visual.positional_embedding"]
    for old, new in (
        ("visual.ln_pre", "vision_model.pre_layrnorm"),
        ("visual.ln_post", "vision_model.post_layernorm"),
    ):
        out[f"{new}.weight"], out[f"{new}.bias"] = state[f"{old}.weight"], state[f"{old}.bias"]
    out["visual_projection.weight"] = state["visual.proj"].T
    out["logit_scale"] = state["logit_scale"]
    return {k: v.float().contiguous() for k, v in out.items()}


def read_openai_state(path: str | Path) -> dict[str, Tensor]:
    """The tensors of an OpenAI-format checkpoint (a state dict, or ``{"state_dict": ...}``), read with the
    allow-list unpickler.

    Raises:
        ValueError: not such a file, or keys of an OpenAI CLIP are missing (named).
    """
    state = read_torch_checkpoint(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected an OpenAI-format CLIP state dict, got {type(state).__name__}")
    state = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    needed = ("token_embedding.weight", "positional_embedding", "visual.conv1.weight", "text_projection")
    missing = [k for k in needed if k not in state]
    if missing:
        raise ValueError(f"{path}: not an OpenAI-format CLIP/LongCLIP state dict; missing keys {missing}")
    return state


def convert(
    src: str | Path, out: str | Path, tokenizer: str | Path | None = None, head_width: int = 64
) -> Path:
    """Write the CLIP directory ``out`` from the checkpoint ``src`` (atomically: a temporary directory,
    renamed);
    returns ``out``. The result is loaded back before the rename, so a written directory always loads."""
    from safetensors.torch import save_file

    state = read_openai_state(src)
    config = config_from_state(state, head_width)
    tensors = convert_state(state)
    model = build_clip(config)
    model.load_state_dict(tensors, strict=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (tmp / CONFIG_FILE).write_text(config.to_json_string())
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"source": Path(src).name})
        if tokenizer is not None:
            for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"):
                if (Path(tokenizer) / name).is_file():
                    shutil.copy(Path(tokenizer) / name, tmp / name)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info(
        "wrote %s (%d tensors, %d text positions)",
        out,
        len(tensors),
        config.text_config.max_position_embeddings,
    )
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``SRC.pt OUT_DIR [--tokenizer DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", help="OpenAI-format CLIP or LongCLIP checkpoint (.pt / .pth)")
    parser.add_argument("out", help="the CLIP directory to write")
    parser.add_argument("--tokenizer", help="a CLIP directory whose tokenizer files are copied")
    parser.add_argument("--head-width", type=int, default=64, help="channels per attention head (64)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert(args.src, args.out, args.tokenizer, args.head_width)


if __name__ == "__main__":
    main()
