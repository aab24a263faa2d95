"""Inflection weighting, the weighted action loss and the progress loss on hand-computed values."""

import math

import torch

from agents.losses import inflection_weights, progress_loss, weighted_action_loss


def test_inflection_weights_hand_computed():
    actions = torch.tensor([[1, 1, 2, 2, 1, 0], [3, 3, 3, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    expected = torch.tensor([[3.2, 1.0, 3.2, 1.0, 3.2, 3.2], [3.2, 1.0, 1.0, 3.2, 0.0, 0.0]])
    torch.testing.assert_close(inflection_weights(actions, mask, 3.2), expected)
    torch.testing.assert_close(inflection_weights(actions, mask, 1.0), mask.float())


def test_weighted_action_loss_normalises_per_trajectory():
    # Uniform logits: CE = log 4 at every step, whatever the weights.
    logits = torch.zeros(2, 3, 4)
    actions = torch.tensor([[1, 2, 2], [0, 0, 3]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    loss, accuracy = weighted_action_loss(logits, actions, mask, 3.2)
    assert math.isclose(loss.item(), math.log(4), rel_tol=1e-6)

    # Trajectory 0: labels (1, 2, 2) weights (3.2, 3.2, 1); CE is 0 except at step 2 (CE = c).
    logits = torch.full((1, 3, 4), -1e4)
    logits[0, 0, 1] = logits[0, 1, 2] = 0.0
    logits[0, 2] = torch.tensor([0.0, 0.0, 0.0, 0.0])
    loss, accuracy = weighted_action_loss(
        logits, torch.tensor([[1, 2, 2]]), torch.ones(1, 3, dtype=torch.bool), 3.2
    )
    assert math.isclose(loss.item(), 1.0 * math.log(4) / (3.2 + 3.2 + 1.0), rel_tol=1e-5)
    assert math.isclose(accuracy.item(), 2 / 3, rel_tol=1e-6)


def test_weighted_action_loss_is_batch_mean_of_trajectories():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 4)
    actions = torch.randint(0, 4, (3, 5))
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[2, 2:] = False
    loss, _ = weighted_action_loss(logits, actions, mask, 2.0)
    parts = [
        weighted_action_loss(logits[i : i + 1], actions[i : i + 1], mask[i : i + 1], 2.0)[0] for i in range(3)
    ]
    torch.testing.assert_close(loss, torch.stack(parts).mean())
    # padded steps do not matter
    logits2 = logits.clone()
    logits2[2, 2:] = 100.0
    torch.testing.assert_close(weighted_action_loss(logits2, actions, mask, 2.0)[0], loss)


def test_progress_loss_is_masked_mean():
    predicted = torch.tensor([[0.5, 0.5, 0.9], [0.0, 1.0, 7.0]])
    target = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    expected = (0.25 + 0.25 + 0.01 + 0.0 + 1.0) / 5
    assert math.isclose(progress_loss(predicted, target, mask).item(), expected, rel_tol=1e-6)
