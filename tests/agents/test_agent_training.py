"""Model sizes of the paper presets and a tiny overfitting check of the default CMA agent."""

import numpy as np
import pytest
import torch

from agents import make_agent
from agents.cma import CMAConfig
from agents.seq2seq import Seq2SeqConfig
from envs.datasets.vocab import PAD_TOKEN, UNK_TOKEN

#: VLN-CE's R2R vocabulary size.
R2R_VOCAB_SIZE = 2504


@pytest.mark.parametrize(
    ("name", "config_class", "total", "trainable"),
    [("cma", CMAConfig, 36.86, 6.15), ("seq2seq", Seq2SeqConfig, 33.16, 2.46)],
)
def test_paper_parameter_counts(name, config_class, total, trainable):
    words = [PAD_TOKEN, UNK_TOKEN] + [f"word{i}" for i in range(R2R_VOCAB_SIZE - 2)]
    agent = make_agent(name, config_class.paper(), vocab=words)
    params = list(agent.parameters())
    assert round(sum(p.numel() for p in params) / 1e6, 2) == total
    assert round(sum(p.numel() for p in params if p.requires_grad) / 1e6, 2) == trainable


def test_cma_default_overfits_four_trajectories():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    texts = ["walk to the kitchen", "turn left at the sofa", "go up the stairs", "exit the bedroom and stop"]
    n, steps = 4, 6
    actions = rng.integers(0, 4, (n, steps))
    batch = {
        "rgb": rng.integers(0, 256, (n, steps, 64, 64, 3), dtype=np.uint8),
        "depth": (rng.random((n, steps, 64, 64, 1)) * 10).astype(np.float32),
        "instruction_text": texts,
        "actions": actions,
        "prev_actions": np.concatenate([np.full((n, 1), -1), actions[:, :-1]], axis=1),
        "mask": np.ones((n, steps), dtype=bool),
    }
    agent = make_agent("cma", instructions=texts).train()
    optimizer = torch.optim.Adam([p for p in agent.parameters() if p.requires_grad], lr=2e-3)
    accuracy = 0.0
    for _ in range(60):
        loss, info = agent.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracy = info["accuracy"]
        if accuracy > 0.9:
            break
    assert accuracy > 0.9
