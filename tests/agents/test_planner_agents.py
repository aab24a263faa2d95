"""The iPlanner and ViPlanner agents: published sizes, weights in the released layouts, acting on rendered
observations, ViPlanner's class table, and training + one System-1 episode through the entry points."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.base import make_agent
from agents.baselines.iplanner import IPlannerConfig
from agents.baselines.planner import goal_vector
from agents.baselines.viplanner import ViPlannerConfig
from agents.baselines.viplanner.semantics import CATEGORY_CLASSES, CLASS_COLORS, read_model_yaml
from envs.scenes.scene import category_code

ROOT = Path(__file__).resolve().parents[2]
TINY = {"image_size": [160, 160], "width": 8, "decoder_dims": [32, 16, 32, 16, 8]}


@pytest.fixture(scope="module")
def s1_data(tmp_path_factory) -> Path:
    from envs.datasets.system1 import generate_system1
    from envs.datasets.system1_work import System1Spec

    out = tmp_path_factory.mktemp("s1")
    generate_system1(out, System1Spec(1, 1, 1, 2, n_eval_scenes=1, eval_episodes_per_scene=2), progress=False)
    return out


@pytest.mark.parametrize(("name", "params"), [("iplanner", 53_326_864), ("viplanner", 71_045_584)])
def test_published_sizes_count_as_the_anchors(name, params):
    config = (IPlannerConfig if name == "iplanner" else ViPlannerConfig).paper()
    agent = make_agent(name, config, load_pretrained=False)
    assert sum(p.numel() for p in agent.net.parameters()) == params
    assert agent.net.decoder.fc1.in_features == 256 * 8 * 16


def test_goal_preprocessing_clips_as_navdp_servers():
    goal = torch.tensor([[20.0, 0.0], [12.0, np.pi / 2]])
    ip = goal_vector(goal, IPlannerConfig())
    torch.testing.assert_close(ip, torch.tensor([[5.0, 0.0, 1.0], [0.0, 5.0, 1.0]]), atol=1e-5, rtol=0)
    vip = goal_vector(goal, ViPlannerConfig(max_goal_distance=8.0))  # clipped to 10, then 10.05 > 8 -> 4
    assert vip[0].norm() == pytest.approx(4.0, abs=1e-4) and vip[1, 1] > 3.9


def test_iplanner_loads_a_plain_state_dict(tmp_path):
    src = make_agent("iplanner", IPlannerConfig(**TINY))
    torch.save(src.net.state_dict(), tmp_path / "plannernet.pt")
    dst = make_agent("iplanner", IPlannerConfig(**TINY, weights=str(tmp_path / "plannernet.pt")))
    for k, v in src.net.state_dict().items():
        assert torch.equal(v, dst.net.state_dict()[k]), k
    with pytest.raises(ValueError, match="iplanner checkpoint"):
        make_agent(
            "iplanner", IPlannerConfig(**{**TINY, "width": 16}, weights=str(tmp_path / "plannernet.pt"))
        )


def test_viplanner_loads_its_released_folder_and_refuses_foreign_yaml_tags(tmp_path):
    src = make_agent("viplanner", ViPlannerConfig(**TINY))
    folder = tmp_path / "viplanner"
    folder.mkdir()
    torch.save((src.net.state_dict(), 0.25), folder / "model.pt")
    body = (
        "config:\n  sem: true\n  rgb: false\n  in_channel: 16\n  knodes: 5\n  decoder_small: false\n"
        "  img_input_size: !!python/tuple [160, 160]\n"
        "  data_cfg: !!python/object:viplanner.config.learning_cfg.DataCfg {max_depth: 15.0}\nloss: 0.25\n"
    )
    (folder / "model.yaml").write_text(body)
    assert read_model_yaml(folder / "model.yaml")["data_cfg"] == {"max_depth": 15.0}
    dst = make_agent("viplanner", ViPlannerConfig(**TINY, weights=str(folder)))
    for k, v in src.net.state_dict().items():
        assert torch.equal(v, dst.net.state_dict()[k]), k
    (folder / "model.yaml").write_text(body.replace("[160, 160]", "[360, 640]"))
    with pytest.raises(ValueError, match="img_input_size"):
        make_agent("viplanner", ViPlannerConfig(**TINY, weights=str(folder)))
    (folder / "model.yaml").write_text("config: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValueError, match="refusing"):
        read_model_yaml(folder / "model.yaml")
    assert yaml.safe_load("a: 1") == {"a": 1}


def test_the_class_table_covers_every_generated_category():
    from envs.scenes import arena, furniture
    from envs.scenes.generate import generate_house

    rng = np.random.default_rng(0)
    produced = {"floor", "wall", "ceiling", "window", "picture", "box", "cylinder", "pole", "table"}
    produced |= {build((120, 120, 120), rng).category for build in furniture.MODELS.values()}
    for seed in range(3):
        produced |= {i.category for i in arena.generate_arena(seed).instances.values()}
        produced |= {i.category for i in generate_house(seed).instances.values()}
    missing = sorted(produced - set(CATEGORY_CLASSES))
    assert not missing, missing
    assert set(CATEGORY_CLASSES.values()) <= set(CLASS_COLORS)
    assert len({category_code(c) for c in produced}) == len(produced)  # codes do not collide


@pytest.mark.parametrize("name", ["iplanner", "viplanner"])
def test_act_on_rendered_observations_returns_waypoints_in_the_box(name, s1_data):
    from benchmarks.base import BENCHMARKS

    agent = make_agent(name, (IPlannerConfig if name == "iplanner" else ViPlannerConfig)(**TINY)).eval()
    spec = BENCHMARKS.get("system1_pointnav")
    bench = spec.build(
        s1_data, split="houses", scenes_dir=s1_data / "scenes", n_episodes=1, width=32, height=32
    )
    env = bench.env_for(agent)
    obs, _ = env.reset(options={"episode_index": 0})
    assert ("category" in obs) == (name == "viplanner") and "depth" in obs
    if name == "viplanner":
        assert len(np.unique(obs["category"])) >= 2
    batch = {k: np.asarray(v)[None] for k, v in obs.items() if not isinstance(v, str)}
    agent.reset(1)
    actions = agent.act(batch)
    assert actions.shape == (1, 4, 3) and actions.dtype == np.float32 and np.isfinite(actions).all()
    assert env.action_space.contains(actions[0])
    agent.config.fear_threshold, agent.config.on_fear = 1e-6, "rotate"  # every plan flagged: turn in place
    turned = agent.act(batch)
    assert np.all(turned[0, :, :2] == 0) and abs(turned[0, -1, 2]) == pytest.approx(np.radians(30.0))
    bench.close()


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.mark.slow  # about 50-60 s per agent on one core
@pytest.mark.parametrize("name", ["iplanner", "viplanner"])
def test_training_steps_and_one_system1_episode(name, s1_data, tmp_path):
    from trainers.metrics import read_metrics

    run = tmp_path / "run"
    done = _run(
        "trainers/run.py", f"experiment=smoke_{name}", f"agent={name}", "trainer=bc", "trainer.n_episodes=0",
        f"data.dir={s1_data}", f"data.init_store={s1_data / 'trajectories'}", "eval.split=cluttered_easy",
        "trainer.epochs=1", "eval.every_epochs=0", "data.batch_size=64", "eval.max_episode_steps=3",
        "logger.sinks=[jsonl]", f"run_dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    losses = [r for r in read_metrics(run) if "train/loss" in r]
    assert len(losses) >= 2 and all(np.isfinite(r["train/loss"]) for r in losses)
    assert losses[0]["train/fear_skipped"] == 0.0  # the System-1 store carries critic labels
    assert losses[0]["train/loss"] == pytest.approx(
        losses[0]["train/loss_path"] + losses[0]["train/loss_fear"], rel=1e-3
    )
    done = _run(
        "benchmarks/run.py", f"checkpoint={run / 'checkpoints' / 'last'}", "benchmark=system1_pointnav",
        "benchmark.split=houses", "benchmark.n_episodes=1", "benchmark.max_episode_steps=3",
        "benchmark.n_videos=0", f"data.dir={s1_data}", f"out_dir={tmp_path / 'eval'}", "progress=false",
        "report=false", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["agent"] == name and summary["count"] == 1
    episode = json.loads((tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()[0])
    assert 1 <= len(episode["actions"]) <= 3 and np.array(episode["actions"][0]).shape == (4, 3)
