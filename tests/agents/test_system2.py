"""System 2 (tiny Qwen2.5-VL): conversation and labels, answers to actions, save/load, local-path errors."""

import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import envs  # noqa: F401  (registers the environment ids)
from agents import make_agent
from agents.base import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT, Agent
from agents.contract import agent_sim_config, interface_of
from agents.system2 import System2Agent, System2Config, acting
from agents.system2.conversation import IGNORE_INDEX, STOP_TEXT, parse_answer
from agents.system2.model import load_pretrained
from agents.system2.tokenizer import IM_END, IMAGE_PAD, VISION_START
from envs.navigator import Navigator

CORPUS = ["walk past the sofa and stop at the door", "turn left into the kitchen and wait by the table"]
SIZE = 48


def frames(rng, n, size=SIZE):
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def item(rng, kind, answer, k=3):
    return {
        "instruction_text": CORPUS[0],
        "history": frames(rng, k),
        "current": frames(rng, 1)[0],
        "lookdown": frames(rng, 1)[0],
        "lookdown_depth": np.ones((SIZE, SIZE, 1), np.float32),
        "kind": kind,
        "answer": answer,
    }


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return make_agent("system2", instructions=CORPUS)


def test_tokenizer_special_ids_match_the_model_config(agent):
    cfg, tok = agent.model.config, agent.tokenizer
    assert tok.convert_tokens_to_ids(IMAGE_PAD) == cfg.image_token_id
    assert tok.convert_tokens_to_ids(VISION_START) == cfg.vision_start_token_id
    assert cfg.vision_config.patch_size == 14 and cfg.vision_config.spatial_merge_size == 2
    assert cfg.text_config.vocab_size == len(tok) <= agent.config.vocab_size
    assert 1e5 < sum(p.numel() for p in agent.parameters()) < 1e7


@pytest.mark.parametrize("kind,answer", [("pixel", "12 34"), ("turn", "←←"), ("stop", "STOP")])
def test_labels_mask_everything_but_the_assistant_tokens(agent, kind, answer):
    rng = np.random.default_rng(0)
    out = agent.item_transform()(item(rng, kind, answer))
    ids, labels = out["input_ids"], out["labels"]
    kept = labels != IGNORE_INDEX
    assert torch.equal(labels[kept], ids[kept])
    decoded = agent.tokenizer.decode(ids[kept])
    assert decoded == (f"↓{IM_END}{answer}{IM_END}" if kind == "pixel" else f"{answer}{IM_END}")
    n_images = 3 + 1 + (kind == "pixel")
    assert out["image_grid_thw"].shape == (n_images, 3)
    # every image's merged patches appear as image-pad tokens
    pads = int((ids == agent.model.config.image_token_id).sum())
    assert pads == int(out["image_grid_thw"].prod(-1).sum()) // 4


def test_labels_survive_a_tokenizer_that_splits_the_assistant_header():
    """With few merges "assistant\n" takes many tokens; the assistant turn is still found."""
    torch.manual_seed(0)
    small = make_agent("system2", {"vocab_size": 290}, instructions=CORPUS * 50)
    header = small.tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert len(header) > 5
    out = small.item_transform()(item(np.random.default_rng(1), "turn", "←←"))
    kept = out["labels"] != IGNORE_INDEX
    assert small.tokenizer.decode(out["input_ids"][kept]) == f"←←{IM_END}"


def test_answers_parse_as_the_evaluator_reads_them():
    assert parse_answer("12 34").pixel == (12, 34)
    assert parse_answer("←←").turns == ("←", "←") and parse_answer("→").kind == "turn"
    assert parse_answer("STOP").kind == "stop" and parse_answer("↓").kind == "lookdown"
    assert parse_answer("the door").kind == "unknown" and parse_answer("7").kind == "unknown"


@pytest.fixture(scope="module")
def env(tiny_dataset):
    sim_config = agent_sim_config(interface_of(System2Agent), SIZE, SIZE, 90.0)
    env = gym.make(
        "NavGym/VLN-v0", episodes=tiny_dataset / "train", width=SIZE, height=SIZE, sim_config=sim_config
    )
    yield env
    env.close()


def test_fixed_answers_become_actions_through_the_navigator(env):
    obs, _ = env.reset(seed=0)
    nav = Navigator(env.unwrapped.sim)
    memory, depth = acting.EnvMemory(), obs["lookdown_depth"]
    decide = lambda text: acting.decide(parse_answer(text), memory, nav, depth, 8, 0.25)  # noqa: E731
    assert decide("STOP") == STOP
    assert decide("←→→") == TURN_LEFT and list(memory.pending) == [TURN_RIGHT, TURN_RIGHT]
    memory.pending.clear()
    assert decide("no idea") == acting.FALLBACK_ACTION and memory.n_fallbacks == 1
    # the bottom-centre pixel of the look-down view: the floor ahead, back-projected and snapped
    row, col = SIZE - 1, SIZE // 2
    action = decide(f"{row} {col}")
    goal = memory.goal if memory.goal is not None else None
    position, _ = nav.agent_pose()
    expected = acting.pixel_goal((row, col), depth, nav)
    assert nav.is_navigable(expected)
    assert 0.3 < np.linalg.norm((expected - position)[[0, 2]]) < 3.0
    assert action in (MOVE_FORWARD, TURN_LEFT, TURN_RIGHT)
    if goal is not None:
        np.testing.assert_allclose(goal, expected)
        assert memory.steps_left == 7
    # a pixel far outside the image is clipped into it, never a crash
    assert decide("900 900") in (MOVE_FORWARD, TURN_LEFT, TURN_RIGHT)


def test_a_pixel_goal_at_the_feet_turns_when_the_step_forward_is_blocked(env):
    obs, _ = env.reset(seed=1)
    nav = Navigator(env.unwrapped.sim)
    for _ in range(200):  # walk into a wall
        before = nav.agent_pose()[0]
        obs, *_ = env.step(MOVE_FORWARD)
        if np.linalg.norm(nav.agent_pose()[0] - before) < 1e-3:
            break
    else:
        pytest.fail("MOVE_FORWARD never reached a wall")
    # a pixel whose goal is where the agent stands: the follower has nothing to walk
    depth, position = obs["lookdown_depth"], nav.agent_pose()[0]
    feet = [
        (row, col)
        for row in range(0, SIZE, 4)
        for col in range(0, SIZE, 4)
        if nav.geodesic_distance(acting.pixel_goal((row, col), depth, nav)) < 0.2
    ]
    assert feet, "no pixel of the look-down view lands at the agent's feet against a wall"
    text = "{} {}".format(*feet[0])
    memory = acting.EnvMemory()
    decide = lambda: acting.decide(parse_answer(text), memory, nav, obs["lookdown_depth"], 8, 0.25)  # noqa: E731
    assert decide() == MOVE_FORWARD and memory.n_fallbacks == 0
    obs, *_ = env.step(MOVE_FORWARD)
    np.testing.assert_allclose(nav.agent_pose()[0], position, atol=1e-3)  # blocked
    assert decide() == acting.FALLBACK_ACTION and memory.n_fallbacks == 1
    obs, *_ = env.step(acting.FALLBACK_ACTION)
    # the view changed: the next such answer tries forward again
    assert decide() == MOVE_FORWARD and memory.n_fallbacks == 1
    assert acting.decide(parse_answer("STOP"), memory, nav, None, 8, 0.25) == STOP
    assert memory.forward_from is None


def test_stop_min_prob_lets_only_a_confident_stop_through():
    torch.manual_seed(0)
    agent = make_agent("system2", instructions=CORPUS)
    rng = np.random.default_rng(3)
    query = item(rng, "stop", "STOP")
    batch = {k: [v] for k, v in agent.item_transform()(dict(query)).items()}
    optimiser = torch.optim.Adam(agent.parameters(), lr=1e-3)
    for _ in range(30):  # teach it to answer this query STOP
        loss, _ = agent.loss(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    agent.eval()
    ask = lambda: agent.generate(query["instruction_text"], list(query["history"]), query["current"])  # noqa: E731
    assert agent.config.stop_min_prob is None and ask() == "STOP"
    tokens = agent.tokenizer(STOP_TEXT, add_special_tokens=False)["input_ids"]
    assert agent.stop_token() == tokens[0]
    agent.config.stop_min_prob = 0.5  # it is confident: STOP stays
    assert ask() == "STOP"
    agent.config.stop_min_prob = 1.0  # never confident enough: its best other answer
    other = ask()
    assert other != "STOP" and not other.startswith(agent.tokenizer.decode(tokens[:1]))
    with pytest.raises(ValueError, match="stop_min_prob must lie in"):
        System2Config(stop_min_prob=1.5)


def test_save_load_gives_the_same_logits(agent, tmp_path):
    rng = np.random.default_rng(1)
    inputs = agent.collate({k: [v] for k, v in agent.item_transform()(item(rng, "turn", "→")).items()})
    agent.save(tmp_path / "a")
    loaded = Agent.load(tmp_path / "a")
    assert isinstance(loaded, System2Agent) and loaded.config == agent.config
    with torch.no_grad():
        a, b = agent.model(**inputs).logits, loaded.model(**inputs).logits
    assert torch.equal(a, b)
    assert loaded.tokenizer.get_vocab() == agent.tokenizer.get_vocab()
    assert (
        loaded.model.lm_head.weight.data_ptr()
        == loaded.model.model.language_model.embed_tokens.weight.data_ptr()
    )


def test_local_path_loader_names_what_is_missing(agent, tmp_path):
    folder = tmp_path / "qwen"
    agent.model.save_pretrained(str(folder))
    agent.processor.save_pretrained(str(folder))
    model, processor = load_pretrained(folder, torch.float32)  # the real code path on a tiny folder
    for (name, p), q in zip(agent.model.named_parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q), name
    no_tok = tmp_path / "no_tokenizer"
    shutil.copytree(folder, no_tok)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / f).unlink()
    with pytest.raises(FileNotFoundError, match=f"{no_tok}.*tokenizer"):
        load_pretrained(no_tok, torch.float32)
    no_weights = tmp_path / "no_weights"
    shutil.copytree(folder, no_weights)
    for f in no_weights.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=f"{no_weights}.*weights"):
        load_pretrained(no_weights, torch.float32)
    plain = tmp_path / "plain_tokenizer"
    shutil.copytree(folder, plain)
    plain_bpe = Tokenizer(models.BPE())
    plain_bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    plain_bpe.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    PreTrainedTokenizerFast(tokenizer_object=plain_bpe).save_pretrained(str(plain))
    with pytest.raises(ValueError, match="<\\|vision_start\\|>"):
        load_pretrained(plain, torch.float32)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        make_agent("system2", System2Config(model_path=str(tmp_path / "nowhere")))
