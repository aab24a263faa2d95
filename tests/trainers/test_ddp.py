"""Two-process DDP (torchrun, gloo on CPU): sharded collection and batches, identical parameters."""

import json
import subprocess
import sys
from pathlib import Path

from trainers.data.store import TrajectoryStore
from trainers.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import hashlib, json, sys
sys.path.insert(0, {root!r})
import torch
from hydra import compose, initialize_config_dir
from trainers import distributed
from trainers.base import make_trainer
from trainers.config import register_configs, to_config

register_configs()
with initialize_config_dir(config_dir={configs!r}, version_base="1.3"):
    config = to_config(compose("train", overrides=sys.argv[2:]))
info = distributed.init_distributed(device="cpu")
trainer = make_trainer(config, info)
final = trainer.learn()
flat = torch.cat([p.detach().flatten() for p in trainer.agent.parameters()]).numpy()
out = {{"hash": hashlib.sha256(flat.tobytes()).hexdigest(), "step": trainer.state.step, "final": final}}
with open(sys.argv[1] + f"/rank{{info.rank}}.json", "w") as f:
    json.dump(out, f)
del trainer  # its DDP wrapper holds the process group; cleanup() tears the group down once that is gone
distributed.cleanup()
"""


def test_two_ranks_train_dagger_with_identical_parameters(tiny_dataset, tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT.format(root=str(ROOT), configs=str(ROOT / "configs")))
    run_dir = tmp_path / "run"
    overrides = [
        "experiment=smoke", "agent=cma", "trainer=dagger", "trainer.rounds=2", "trainer.episodes_per_round=4",
        "trainer.epochs=1", "data.batch_size=1", "data.max_episode_steps=25", "eval.every_epochs=1",
        "eval.n_episodes=2", "eval.final_n_episodes=2", "device=cpu", f"data.dir={tiny_dataset}",
        f"run_dir={run_dir}",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*cmd, str(script), str(tmp_path), *overrides], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["hash"] == ranks[1]["hash"]
    # Round 0: 4 episodes -> 2 batches per rank; round 1: 8 -> 4 per rank.
    assert ranks[0]["step"] == ranks[1]["step"] == 6
    assert ranks[0]["final"] == ranks[1]["final"] and ranks[0]["final"]["final/episodes"] == 2
    store = TrajectoryStore(run_dir / "store", readonly=True)
    assert [len(store.filter(round=r)) for r in (0, 1)] == [4, 4]  # both ranks' shards, collected once
    assert sorted(ep.extras["slot"] for ep in store if ep.round == 1) == [0, 1, 2, 3]
    rows = read_metrics(run_dir)
    assert [r["collect/episodes"] for r in rows if "collect/episodes" in r] == [4, 4]
    assert sum("eval/success" in r for r in rows) == 2  # rank 0 alone logs
