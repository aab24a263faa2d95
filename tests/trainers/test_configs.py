"""Every training YAML composes against its structured schema; misspelt keys and bad values fail by name."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from agents.base import AGENTS
from trainers.base import TRAINERS, make_trainer, trainable_agents
from trainers.config import BCConfig, DAggerConfig, TrainConfig, register_configs, to_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OWN_GROUPS = ("agent", "trainer", "logger", "experiment")

register_configs()


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=["data.dir=/nonexistent", *overrides])


def _yamls(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def test_group_files_match_registries():
    assert _yamls("agent") == AGENTS.names()
    import trainers.bc  # noqa: F401
    import trainers.dagger  # noqa: F401
    import trainers.ppo  # noqa: F401

    assert _yamls("trainer") == TRAINERS.names() == ["bc", "dagger", "ppo"]


@pytest.mark.parametrize("agent", _yamls("agent"))
def test_every_agent_yaml_composes_to_its_dataclass(agent):
    config = to_config(_compose(f"agent={agent}"))
    assert isinstance(config, TrainConfig)
    assert isinstance(config.agent, AGENTS.get(agent).config_class)
    assert config.agent.name == agent


@pytest.mark.parametrize("trainer,schema", [("bc", BCConfig), ("dagger", DAggerConfig)])
def test_every_trainer_yaml_composes(trainer, schema):
    config = to_config(_compose(f"trainer={trainer}"))
    assert type(config.trainer) is schema and config.trainer.name == trainer


@pytest.mark.parametrize("logger", _yamls("logger"))
def test_every_logger_yaml_composes(logger):
    config = to_config(_compose(f"logger={logger}"))
    assert "jsonl" in config.logger.sinks and (logger == "jsonl" or logger in config.logger.sinks)


def _experiment_agents() -> list[tuple[str, str]]:
    """Each experiment with the agents it is for: ``smoke`` sizes the recurrent agents, ``smoke_rdp`` RDP,
    ``smoke_navdp`` NavDP, ``smoke_<baseline>`` that System-1 baseline; the schedules that set no agent
    field go with every trainable VLN agent."""
    pairs = []
    for experiment in _yamls("experiment"):
        if experiment == "smoke_rdp":
            agents = ["rdp"]
        elif experiment == "navdp_s1":
            agents = ["navdp"]
        elif experiment == "system2_vln":
            agents = ["system2"]
        elif experiment == "smoke_navdp":
            agents = ["navdp"]
        elif experiment in ("smoke_gnm", "smoke_vint", "smoke_nomad", "smoke_iplanner", "smoke_viplanner"):
            agents = [experiment.removeprefix("smoke_")]
        elif experiment == "smoke":
            agents = ["seq2seq", "cma"]
        else:
            agents = ["seq2seq", "cma", "rdp"]
        pairs += [(experiment, agent) for agent in agents]
    return pairs


@pytest.mark.parametrize(("experiment", "agent"), _experiment_agents())
def test_every_experiment_composes(experiment, agent):
    config = to_config(_compose(f"experiment={experiment}", f"agent={agent}"))
    assert config.agent.name == agent


def test_vlnce_dagger_schedule():
    t = to_config(_compose("experiment=vlnce_dagger")).trainer
    assert (t.name, t.rounds, t.episodes_per_round, t.p, t.epochs) == ("dagger", 10, 5000, 0.75, 4)
    assert to_config(_compose("experiment=vlnce_dagger")).optim.lr == 2.5e-4


def test_defaults_are_vlnce_optimiser_and_small_schedule():
    config = to_config(_compose())
    assert (config.agent.name, config.trainer.name) == ("cma", "dagger")
    assert config.optim._target_ == "torch.optim.Adam" and config.optim.lr == 2.5e-4
    assert config.trainer.rounds * config.trainer.episodes_per_round <= 1000


@pytest.mark.parametrize(
    "override,name",
    [
        ("trainer.epochz=3", "epochz"),
        ("agent.hiden_size=8", "hiden_size"),
        ("data.batchsize=2", "batchsize"),
        ("trainer.rounds=2", "rounds"),  # a DAgger key given to the bc trainer
        ("logger.sink=[jsonl]", "sink"),
    ],
)
def test_misspelt_key_fails_naming_it(override, name):
    extra = ["trainer=bc"] if name == "rounds" else []
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as err:
        _compose(*extra, override)
    assert name in str(err.value) + str(err.value.__cause__)


def test_misspelt_key_in_a_yaml_fails_naming_it(tmp_path):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "typo.yaml").write_text("defaults:\n  - cma_schema\n  - _self_\nhidden_sise: 8\n")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        with pytest.raises(ConfigCompositionException) as err:
            compose("train", overrides=["data.dir=x", "agent=typo", f"hydra.searchpath=[file://{tmp_path}]"])
    assert "hidden_sise" in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize(
    "override,field",
    [
        ("trainer.p=1.5", "trainer.p"),
        ("amp=fp8", "amp"),
        ("data.frames=disk", "data.frames"),
        ("eval.n_episodes=0", "eval.n_episodes"),
        ("eval.final_n_episodes=-2", "eval.final_n_episodes"),
    ],
)
def test_bad_value_fails_naming_the_field(override, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        to_config(_compose(override))


def test_bad_agent_value_fails_naming_the_field():
    with pytest.raises(ValueError, match="hidden_size"):
        to_config(_compose("agent.hidden_size=0"))


def test_untrainable_agent_is_refused_with_the_trainable_list():
    config = to_config(_compose("agent=random", "run_dir=/tmp/unused"))
    with pytest.raises(ValueError, match="not trainable") as err:
        make_trainer(config)
    assert all(name in str(err.value) for name in trainable_agents())


def test_scheduler_is_a_target_leaf():
    config = to_config(
        _compose("+scheduler._target_=torch.optim.lr_scheduler.StepLR", "+scheduler.step_size=10")
    )
    assert config.scheduler["_target_"] == "torch.optim.lr_scheduler.StepLR"


@pytest.mark.parametrize(
    "override,key,node",
    [
        ("+trainer.lr=abc", "trainer.lr", "trainer"),
        ("+foo=1", "foo", "the top level"),
        ("+agent.hiden_size=8", "agent.hiden_size", "agent"),
        ("+optim.momentum=0.9", "optim.momentum", "optim"),
    ],
)
def test_a_key_added_with_plus_fails_naming_it_and_the_valid_fields(override, key, node):
    cfg = _compose("trainer=bc", override)  # composition accepts a +key ...
    with pytest.raises(ValueError, match="unknown config key") as err:
        to_config(cfg)  # ... but it is no field of the schema, so it must not vanish
    assert f"{key}: not a field of {node}; valid fields: " in str(err.value)
    assert ("grad_clip" if node == "trainer" else "lr" if node == "optim" else "") in str(err.value)
