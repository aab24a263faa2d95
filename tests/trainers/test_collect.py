"""Expert collection and DAgger's β-mixture through the rollout loop, into a trajectory store."""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from agents import make_agent
from envs.datasets.r2r import load_episodes
from envs.datasets.store import TrajectoryStore
from trainers.config import register_configs, to_config
from trainers.data.collect import (
    BetaMixing,
    collect,
    collect_expert,
    episode_plan,
    main,
    make_env,
    round_totals,
    stored_slots,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
register_configs()


def test_episode_plan_is_seeded_unique_per_pass_and_round_dependent():
    ids = [str(i) for i in range(10)]
    plan = episode_plan(ids, None, seed=0, round=0)
    assert sorted(plan) == ids and plan == episode_plan(ids, None, seed=0, round=0)
    assert plan != episode_plan(ids, None, seed=0, round=1)
    long = episode_plan(ids, 25, seed=3, round=2)
    assert len(long) == 25 and sorted(long[:10]) == ids and sorted(long[10:20]) == ids
    with pytest.raises(ValueError, match="n_episodes"):
        episode_plan(ids, 0, 0, 0)


def test_collect_expert_stores_poses_labels_and_progress_then_resumes(tiny_dataset, tmp_path):
    store = collect_expert(tiny_dataset, "train", tmp_path / "s", n_episodes=3, progress=False)
    assert len(store) == 3 and store.rounds() == [0]
    split = load_episodes(tiny_dataset / "train", tiny_dataset / "scenes").by_id()
    for ep in store:
        assert np.array_equal(ep.actions, ep.executed)  # the expert executed its own labels
        assert ep.actions[-1] == 0 and (ep.actions[:-1] != 0).all()  # one STOP, at the end
        np.testing.assert_allclose(ep.positions[0], split[ep.episode_id].start_position, atol=0.05)
        assert ep.extras["geodesic"].shape == (ep.n_steps,) and ep.extras["metrics"]["success"] == 1.0
        assert ep.extras["geodesic"][-1] < ep.extras["geodesic"][0]
    assert stored_slots(store, 0) == {0, 1, 2}
    again = collect_expert(tiny_dataset, "train", tmp_path / "s", n_episodes=4, progress=False)
    assert len(again) == 4 and stored_slots(again, 0) == {0, 1, 2, 3}  # only the missing slot ran


def test_collect_expert_with_frames_matches_store_layout(tiny_dataset, tmp_path):
    store = collect_expert(
        tiny_dataset, "train", tmp_path / "f", n_episodes=1, store_frames=True, width=32, height=24,
        progress=False,
    )  # fmt: skip
    ep = store[0]
    assert ep.frames["rgb"].shape == (ep.n_steps, 24, 32, 3) and ep.frames["rgb"].dtype == np.uint8
    assert ep.frames["depth"].shape == (ep.n_steps, 24, 32, 1) and ep.frames["depth"].dtype == np.float32


def test_cli_collects_shards_into_one_store(tiny_dataset, tmp_path):
    for shard in ("0/2", "1/2"):
        args = ["--data", str(tiny_dataset), "--out", str(tmp_path / "c"), "--n-episodes", "3"]
        assert main([*args, "--shard", shard, "--no-progress"]) == 0
    assert stored_slots(TrajectoryStore(tmp_path / "c"), 0) == {0, 1, 2}


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_beta_mixing_labels_with_the_expert_and_executes_the_mixture(tiny_dataset, tmp_path, beta):
    env = make_env(tiny_dataset, "train", 32, 32, max_episode_steps=25)
    agent = make_agent("random", {"seed": 1, "stop_probability": 0.02})
    store = TrajectoryStore(tmp_path / "m")
    plan = episode_plan([e.episode_id for e in env.dataset.episodes], 3, seed=0, round=2)
    results = collect(env, store, plan, round=2, beta=beta, agent=agent, seed=0, progress=False)
    env.close()
    assert len(store) == 3 and store.rounds() == [2]
    labels = np.concatenate([ep.actions for ep in store])
    executed = np.concatenate([ep.executed for ep in store])
    matches = (labels == executed).mean()
    if beta == 0.0:
        assert matches < 0.6  # the random agent's actions, which agree with the expert only by chance
    else:
        assert 0.5 < matches < 1.0
    assert all(ep.extras["beta"] == beta and ep.round == 2 for ep in store)
    assert all(len(r.expert_actions) == len(r.actions) for r in results)


def test_beta_mixing_rejects_beta_outside_unit_interval():
    with pytest.raises(ValueError, match="beta"):
        BetaMixing(1.5)


def test_same_slot_seed_gives_the_same_episode(tiny_dataset, tmp_path):
    env = make_env(tiny_dataset, "train", 32, 32, max_episode_steps=20)
    plan = episode_plan([e.episode_id for e in env.dataset.episodes], 2, seed=5, round=1)
    stores = []
    for name in ("a", "b"):
        agent = make_agent("random", {"seed": 7})
        store = TrajectoryStore(tmp_path / name)
        collect(env, store, plan, round=1, beta=0.5, agent=agent, seed=5, progress=False)
        stores.append({ep.extras["slot"]: ep for ep in store})
    env.close()
    for slot in (0, 1):
        a, b = stores[0][slot], stores[1][slot]
        assert np.array_equal(a.executed, b.executed) and np.array_equal(a.positions, b.positions)


def test_round_totals_count_every_stored_episode_of_the_round(tiny_dataset, tmp_path):
    store = collect_expert(tiny_dataset, "train", tmp_path / "s", n_episodes=3, progress=False)
    n, steps, success = round_totals(store, 0)
    assert (n, steps, success) == (3, sum(ep.n_steps for ep in store), 3.0)
    assert round_totals(store, 1) == (0, 0, 0.0)


def test_collection_metrics_after_a_resume_report_the_whole_round(tiny_dataset, tmp_path):
    """A collection killed after 2 of 4 slots and resumed reports 4 episodes and their success rate."""
    from trainers.base import make_trainer
    from trainers.schedule import Round

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=smoke", "agent=cma", "trainer=dagger",
                                          f"data.dir={tiny_dataset}", f"run_dir={tmp_path / 'run'}",
                                          "data.max_episode_steps=25"])  # fmt: skip
    trainer = make_trainer(to_config(cfg))
    trainer.agent = make_agent("random", {"seed": 1, "stop_probability": 0.05})
    round = Round(index=1, beta=0.5, n_episodes=4, epochs=1)
    env = make_env(tiny_dataset, "train", 32, 32, max_episode_steps=25)
    plan = episode_plan([e.episode_id for e in env.dataset.episodes], 4, seed=0, round=1)
    store = TrajectoryStore(tmp_path / "run" / "store")
    collect(
        env, store, plan[:2], round=1, beta=0.5, agent=trainer.agent, seed=0, progress=False
    )  # the killed run
    env.close()
    metrics = trainer.collect(round)
    trainer._train_env.close()
    store.refresh()
    stored = [store.get(i, frames=False) for i in store.filter(round=1)]
    assert metrics["collect/episodes"] == len(stored) == 4
    assert metrics["collect/success"] == pytest.approx(
        np.mean([ep.extras["metrics"]["success"] for ep in stored])
    )
