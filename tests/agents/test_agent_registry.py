"""The generic registry, the agent registry and config handling of ``make_agent``."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from agents import AGENTS, Agent, Registry, make_agent
from agents.cma import CMAConfig
from agents.expert import ForwardConfig, RandomConfig
from agents.seq2seq import Seq2SeqConfig


def test_registry_register_get_names():
    reg = Registry("widget")

    @reg.register("b")
    class B:
        pass

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and reg.get("b") is B
    assert reg.names() == ["a", "b"]
    assert "a" in reg and "c" not in reg and len(reg) == 2
    with pytest.raises(KeyError, match=r"unknown widget 'c'; valid names: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(B)
    with pytest.raises(ValueError, match="non-empty"):
        reg.register("")


def test_agent_registry_names_match_classes_and_configs():
    assert AGENTS.names() == [
        "cma", "ddppo", "dual", "expert", "forward", "gnm", "iplanner", "navdp", "nomad", "random", "rdp",
        "seq2seq", "system2", "vint", "viplanner",
    ]  # fmt: skip
    for name in AGENTS.names():
        cls = AGENTS.get(name)
        assert cls.name == name
        assert cls.config_class().name == name


def test_unknown_agent_lists_valid_names():
    with pytest.raises(KeyError) as err:
        make_agent("nope")
    assert all(name in str(err.value) for name in AGENTS.names())


def test_subclass_contract_is_checked():
    with pytest.raises(TypeError, match="name"):

        class NoName(Agent):
            config_class = ForwardConfig

    with pytest.raises(TypeError, match="config_class"):

        class NoConfig(Agent):
            name = "no_config"

    with pytest.raises(TypeError, match="defaulting to 'other'"):

        class WrongName(Agent):
            name = "other"
            config_class = ForwardConfig


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: CMAConfig(hidden_size=-1), "hidden_size"),
        (lambda: CMAConfig(hidden_size=255), "hidden_size"),
        (lambda: CMAConfig(rgb_encoder="vit"), "rgb_encoder"),
        (lambda: Seq2SeqConfig(depth_size=50), "depth_size"),
        (lambda: Seq2SeqConfig(depth_backbone="resnet34"), "depth_backbone"),
        (lambda: Seq2SeqConfig(max_depth=0.0), "max_depth"),
        (lambda: Seq2SeqConfig(inflection_weight=-1.0), "inflection_weight"),
        (lambda: CMAConfig(depth_baseplanes=7), "depth_baseplanes"),
        (lambda: RandomConfig(stop_probability=1.5), "stop_probability"),
        (lambda: ForwardConfig(n_forward=-1), "n_forward"),
    ],
)
def test_invalid_config_names_the_field(factory, field):
    with pytest.raises(ValueError, match=field):
        factory()


def test_make_agent_accepts_mappings_and_rejects_unknown_keys():
    agent = make_agent("forward", {"n_forward": 5})
    assert agent.config == ForwardConfig(n_forward=5)
    node = OmegaConf.structured(ForwardConfig(n_forward=7))
    assert make_agent("forward", node).config.n_forward == 7
    with pytest.raises(ValueError, match="n_fwd"):
        make_agent("forward", {"n_fwd": 5})
    with pytest.raises(ValueError, match="does not match"):
        make_agent("forward", RandomConfig())
    with pytest.raises(TypeError, match="ForwardConfig"):
        AGENTS.get("forward")(RandomConfig())


@pytest.mark.parametrize("config_class", [CMAConfig, Seq2SeqConfig, RandomConfig, ForwardConfig])
def test_configs_are_omegaconf_structured(config_class):
    node = OmegaConf.structured(config_class)
    assert set(node.keys()) == {f.name for f in dataclasses.fields(config_class)}


def test_paper_presets():
    cma = CMAConfig.paper()
    assert (cma.rgb_size, cma.depth_size, cma.hidden_size, cma.embedding_size) == (224, 256, 512, 50)
    assert (cma.rgb_encoder, cma.rgb_backbone, cma.depth_backbone) == ("torchvision", "resnet50", "resnet50")
    assert not cma.depth_trainable and not cma.rgb_trainable and not cma.fine_tune_embeddings
    assert cma.spatial_embedding_size == 64 and cma.prev_action_embedding_size == 32
    assert CMAConfig.paper(hidden_size=256).hidden_size == 256
    s2s = Seq2SeqConfig.paper()
    assert (s2s.instruction_hidden_size, s2s.depth_output_size, s2s.rgb_output_size) == (128, 128, 256)
    assert not s2s.bidirectional and not s2s.use_prev_action
