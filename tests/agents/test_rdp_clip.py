"""RDP's CLIP / LongCLIP towers built from tiny configs and files written here (nothing is downloaded)."""

import argparse
import json
import string

import numpy as np
import pytest
import torch

from agents import load_agent, make_agent
from agents.rdp.clip import load_clip, stretch_positions
from agents.rdp.clip_convert import main as convert_main

TEXTS = ["walk past the sofa and turn left", "go up the stairs, then stop at the door"]
WIDTH, POSITIONS = 32, 16


def write_tokenizer(directory):
    """A character-level CLIP BPE vocabulary (+ one merge) with CLIP's start and end tokens."""
    chars = list(string.ascii_lowercase + string.digits + ",.'")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(chars)})
    vocab.update({"th": len(vocab), "<|startoftext|>": len(vocab) + 1, "<|endoftext|>": len(vocab) + 2})
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\nt h\n")
    return len(vocab)


def tiny_clip_config(vocab_size, positions=POSITIONS, width=WIDTH):
    from transformers import CLIPConfig

    common = {"hidden_size": width, "intermediate_size": 2 * width, "num_hidden_layers": 1}
    ids = {"bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1}
    text = {
        **common,
        **ids,
        "vocab_size": vocab_size,
        "num_attention_heads": 2,
        "max_position_embeddings": positions,
    }
    vision = {**common, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPModel

    directory = tmp_path_factory.mktemp("tiny_clip")
    vocab_size = write_tokenizer(directory)
    torch.manual_seed(0)
    CLIPModel(tiny_clip_config(vocab_size)).save_pretrained(directory)
    assert (directory / "model.safetensors").is_file()
    return directory


def clip_agent(clip_dir, **overrides):
    torch.manual_seed(0)
    config = {"rgb_encoder": "clip", "text_encoder": "clip", "clip_path": str(clip_dir), "rgb_size": 32}
    config.update(
        {"max_instruction_length": 40, "clip_text_positions": 40, "stop_threshold": 1.0, **overrides}
    )
    return make_agent("rdp", config)


def obs(rng, b=2):
    return {
        "rgb": rng.integers(0, 256, (b, 48, 48, 3), dtype=np.uint8),
        "depth": (rng.random((b, 48, 48, 1)) * 5).astype(np.float32),
        "instruction_text": TEXTS[:b],
        "odometry": rng.normal(0, 1, (b, 3)).astype(np.float32),
    }


def test_stretch_positions_keeps_the_first_20_and_interpolates_the_rest():
    table = torch.arange(30, dtype=torch.float32)[:, None].repeat(1, 4)
    out = stretch_positions(table, 60)
    assert out.shape == (60, 4)
    torch.testing.assert_close(out[:20], table[:20])
    torch.testing.assert_close(out[20], table[20])
    torch.testing.assert_close(out[-1], table[-1])
    assert (out[21:, 0].diff() > 0).all() and out[21, 0] < 21  # 10 rows spread over 40: finer steps
    torch.testing.assert_close(stretch_positions(table, 16), table[:16])


def test_a_clip_agent_loads_the_towers_stretches_the_text_positions_and_trains_only_the_rest(
    clip_dir, tmp_path
):
    from safetensors.torch import load_file

    agent = clip_agent(clip_dir)
    saved = load_file(str(clip_dir / "model.safetensors"))
    tower = agent.net.rgb_encoder.vision.state_dict()
    torch.testing.assert_close(
        tower["embeddings.patch_embedding.weight"], saved["vision_model.embeddings.patch_embedding.weight"]
    )
    text_model = agent.net.instruction_encoder.text["model"]
    positions = text_model.embeddings.position_embedding.weight
    original = saved["text_model.embeddings.position_embedding.weight"]
    assert positions.shape == (40, WIDTH)
    torch.testing.assert_close(positions[:15], original[:15])  # fewer than 20 rows: all but the last kept
    torch.testing.assert_close(positions[-1], original[-1])
    frozen = [n for n, p in agent.named_parameters() if not p.requires_grad]
    assert frozen and all(".vision." in n or ".text." in n for n in frozen)
    assert sum(len(g["params"]) for g in agent.param_groups()) == len(list(agent.parameters())) - len(frozen)

    batch_rgb = np.random.default_rng(0).integers(0, 256, (2, 3, 48, 48, 3), dtype=np.uint8)
    batch = {
        "rgb": batch_rgb, "depth": np.ones((2, 3, 48, 48, 1), np.float32), "instruction_text": TEXTS,
        "actions": np.array([[1, 2, 0], [3, 1, 0]]), "mask": np.ones((2, 3), bool),
        "progress": np.full((2, 3), 0.5, np.float32), "positions": np.zeros((2, 3, 3), np.float32),
        "yaws": np.zeros((2, 3), np.float32),
    }  # fmt: skip
    agent.train()
    loss, _ = agent.loss(batch)
    loss.backward()
    assert all(p.grad is None for n, p in agent.named_parameters() if not p.requires_grad)
    assert agent.net.rgb_encoder.project.linear.weight.grad.abs().sum() > 0
    assert agent.net.instruction_encoder.words.weight.grad.abs().sum() > 0


def test_a_clip_checkpoint_rebuilds_without_the_clip_directory(clip_dir, tmp_path):
    agent = clip_agent(clip_dir).eval()
    agent.save(tmp_path / "agent")
    meta = json.loads((tmp_path / "agent" / "config.json").read_text())
    assert "clip/config.json" in meta["extra_files"] and "clip/tokenizer.json" in meta["extra_files"]
    config = meta["config"]
    config["clip_path"] = str(tmp_path / "gone")  # the original directory is not read back
    (tmp_path / "agent" / "config.json").write_text(json.dumps(meta))
    loaded = load_agent(tmp_path / "agent").eval()
    rng = np.random.default_rng(1)
    episode = [obs(rng) for _ in range(3)]
    for a in (agent, loaded):
        a.reset(2)
    with torch.inference_mode():
        for step in episode:
            np.testing.assert_array_equal(agent.act(step), loaded.act(step))


def test_missing_or_wrong_clip_files_fail_naming_the_file(clip_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/config.json"):
        clip_agent(tmp_path / "nowhere")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "config.json").write_text((clip_dir / "config.json").read_text())
    from transformers import CLIPModel

    CLIPModel(tiny_clip_config(write_tokenizer(wrong), width=16)).save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "model.safetensors").rename(wrong / "model.safetensors")
    with pytest.raises(
        ValueError, match=r"wrong/model.safetensors: weights do not fit CLIPModel; shape mismatches"
    ):
        clip_agent(wrong)
    (wrong / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="expected a CLIPConfig"):
        clip_agent(wrong)
    with pytest.raises(ValueError, match="max_instruction_length"):
        clip_agent(clip_dir, clip_text_positions=None)  # 40 tokens do not fit 16 positions


def openai_state(vocab, width=WIDTH, positions=20, longclip=True):
    """Random tensors in OpenAI CLIP's layout (as ``longclip-B.pt`` holds them)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    def block(prefix):
        shapes = {
            "attn.in_proj_weight": (3 * width, width), "attn.in_proj_bias": (3 * width,),
            "attn.out_proj.weight": (width, width), "attn.out_proj.bias": (width,),
            "ln_1.weight": (width,), "ln_1.bias": (width,), "ln_2.weight": (width,), "ln_2.bias": (width,),
            "mlp.c_fc.weight": (4 * width, width), "mlp.c_fc.bias": (4 * width,),
            "mlp.c_proj.weight": (width, 4 * width), "mlp.c_proj.bias": (width,),
        }  # fmt: skip
        return {prefix + name: r(*shape) for name, shape in shapes.items()}

    state = {
        "token_embedding.weight": r(vocab, width), "positional_embedding": r(positions, width),
        "ln_final.weight": r(width), "ln_final.bias": r(width), "text_projection": r(width, 24),
        "logit_scale": torch.tensor(4.6), "visual.class_embedding": r(width),
        "visual.conv1.weight": r(width, 3, 8, 8), "visual.positional_embedding": r(17, width),
        "visual.ln_pre.weight": r(width), "visual.ln_pre.bias": r(width), "visual.ln_post.weight": r(width),
        "visual.ln_post.bias": r(width), "visual.proj": r(width, 24),
        **block("transformer.resblocks.0."), **block("visual.transformer.resblocks.0."),
    }  # fmt: skip
    if longclip:
        state["positional_embedding_res"] = r(positions, width)
    return state


def test_longclip_conversion_maps_every_tensor_and_merges_the_position_tables(clip_dir, tmp_path):
    state = openai_state(vocab=write_tokenizer(tmp_path), positions=30)
    torch.save(state, tmp_path / "longclip.pt")
    convert_main(
        [
            str(tmp_path / "longclip.pt"),
            str(tmp_path / "converted"),
            "--tokenizer",
            str(clip_dir),
            "--head-width",
            "16",
        ]
    )
    model = load_clip(tmp_path / "converted")
    sd = model.state_dict()
    positions = sd["text_model.embeddings.position_embedding.weight"]
    torch.testing.assert_close(positions[:20], state["positional_embedding"][:20])
    torch.testing.assert_close(positions[20:], state["positional_embedding_res"][20:])
    q, k, v = state["transformer.resblocks.0.attn.in_proj_weight"].chunk(3)
    torch.testing.assert_close(sd["text_model.encoder.layers.0.self_attn.k_proj.weight"], k)
    torch.testing.assert_close(
        sd["vision_model.encoder.layers.0.mlp.fc1.weight"],
        state["visual.transformer.resblocks.0.mlp.c_fc.weight"],
    )
    torch.testing.assert_close(sd["text_projection.weight"], state["text_projection"].T)
    assert model.config.text_config.hidden_act == "quick_gelu" and model.config.vision_config.image_size == 32
    agent = clip_agent(tmp_path / "converted", max_instruction_length=30, clip_text_positions=None).eval()
    agent.reset(2)
    with torch.inference_mode():
        assert agent.act(obs(np.random.default_rng(2))).shape == (2,)


def test_the_converter_refuses_pickled_objects(tmp_path):
    # any class outside PyTorch's allow-list (here a harmless one) is refused, never instantiated
    torch.save({"token_embedding.weight": torch.zeros(2), "x": argparse.Namespace(a=1)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt: not a torch checkpoint loadable with weights_only=True"):
        convert_main([str(tmp_path / "evil.pt"), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
