"""NavDP's training loss on a batch of windows.

``loss = action_weight · action + critic_weight · critic + aux_weight · aux`` (0.8, 0.2, 0.5):

- **action**: ε-MSE (or, with ``prediction_type="sample"``, the MSE of the predicted clean path) of
  diffusers' DDPM on the 24 scaled per-step deltas of the expert's future path, over two
  branches of the same noisy sample: *no goal* (the three goal slots zero) and *mixed goal* (slots filled by
  :func:`agents.navdp.inputs.mixed_goal_kinds`), averaged;
- **critic**: MSE of the critic's values of the expert path and of the augmented path against ``labels``
  ``[value_expert, value_augmented, augmented_path (24·3)]`` (B, 74); skipped (0, ``critic_skipped`` 1)
  when the batch has no labels;
- **aux**: MSE of the point goal ``(x, y, θ)`` regressed from the image-goal and pixel-goal embeddings of the
  samples that have them; skipped (0, ``aux_skipped`` 1) when none has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from agents.base import as_tensor
from agents.navdp.inputs import mixed_goal_kinds, path_to_steps
from agents.navdp.network import STEP_DIM
from envs.datasets.critic import HISTORY, HORIZON

if TYPE_CHECKING:
    from agents.navdp.agent import NavDPAgent

#: Width of a critic label row: two values and the augmented path.
LABEL_WIDTH = 2 + HORIZON * STEP_DIM


def _require(batch: Mapping[str, Any], key: str, form: str) -> Any:
    if key not in batch:
        raise KeyError(f"navdp: the batch needs {key!r} ({form}); got keys {sorted(batch)}")
    return batch[key]


def _check_window(batch: Mapping[str, Any]) -> int:
    rgb = _require(batch, "rgb", f"(B, {HISTORY + 1}, H, W, 3) uint8")
    if rgb.ndim != 5 or rgb.shape[1] != HISTORY + 1:
        raise ValueError(
            f"navdp: batch['rgb'] has shape {tuple(rgb.shape)}, expected (B, {HISTORY + 1}, H, W, 3) "
            f"(SampleSpec history={HISTORY})"
        )
    future = _require(batch, "future", f"(B, {HORIZON}, 3) float32 agent-frame path")
    if tuple(future.shape[1:]) != (HORIZON, STEP_DIM):
        raise ValueError(
            f"navdp: batch['future'] has shape {tuple(future.shape)}, expected (B, {HORIZON}, 3)"
        )
    return int(rgb.shape[0])


def goal_slots(cand: Tensor, kinds: Tensor) -> Tensor:
    """(B, 3 kinds, D) candidate embeddings, (B, 3 slots) kind indices (-1 empty) -> (B, 3 slots, D)."""
    index = kinds.clamp(min=0)[..., None].expand(-1, -1, cand.shape[-1])
    slots = torch.gather(cand, 1, index)
    return slots * (kinds >= 0)[..., None].to(slots.dtype)


def navdp_loss(agent: NavDPAgent, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
    """The loss of the module docstring; draws noise and timesteps from torch's global generator.

    Returns:
        (loss, info): ``loss/action``, ``loss/critic``, ``loss/aux``, ``critic_skipped``, ``aux_skipped`` and
        ``goals/point``, ``goals/image``, ``goals/pixel`` (fractions of the batch with that goal).
    """
    c, net, dev = agent.config, agent.net, agent.device
    b = _check_window(batch)
    tokens, current = agent.encode_scene(batch["rgb"], as_tensor(batch["depth"])[:, -1])
    cand, available, point = agent.goal_embeddings(batch, current)
    if agent.training:
        agent.goal_samples += available.sum(dim=0).to(agent.goal_samples)

    target = path_to_steps(as_tensor(batch["future"], torch.float32, dev), c.action_scale)
    noise = torch.randn(target.shape).to(dev)
    timesteps = torch.randint(0, c.num_train_timesteps, (b,)).to(dev)
    noisy = agent.scheduler.add_noise(target, noise, timesteps)
    mixed = goal_slots(cand, mixed_goal_kinds(available))
    pred = net.noise(
        torch.cat([noisy, noisy]),
        torch.cat([timesteps, timesteps]),
        torch.cat([torch.zeros_like(mixed), mixed]),
        torch.cat([tokens, tokens]),
    )
    wanted = target if c.prediction_type == "sample" else noise
    action = F.mse_loss(pred, torch.cat([wanted, wanted]))

    labels = batch.get("labels")
    critic = torch.zeros((), device=dev)
    if labels is not None:
        labels = as_tensor(labels, torch.float32, dev)
        if labels.ndim != 2 or labels.shape[1] != LABEL_WIDTH:
            raise ValueError(
                f"navdp: batch['labels'] has shape {tuple(labels.shape)}, expected (B, {LABEL_WIDTH}) "
                "[value_expert, value_augmented, augmented path (24, 3) flattened]"
            )
        augmented = path_to_steps(labels[:, 2:].reshape(b, HORIZON, STEP_DIM), c.action_scale)
        values = net.critic(torch.cat([target, augmented]), torch.cat([tokens, tokens]))
        critic = F.mse_loss(values, torch.cat([labels[:, 0], labels[:, 1]]))

    aux_terms = []
    if point is not None:
        for k, head in ((1, net.image_aux_head), (2, net.pixel_aux_head)):
            rows = available[:, k]
            if rows.any():
                aux_terms.append(F.mse_loss(head(cand[rows, k]), point[rows]))
    aux = torch.stack(aux_terms).mean() if aux_terms else torch.zeros((), device=dev)

    loss = c.action_weight * action + c.critic_weight * critic + c.aux_weight * aux
    info = {
        "loss/action": float(action.detach()),
        "loss/critic": float(critic.detach()),
        "loss/aux": float(aux.detach()),
        "critic_skipped": float(labels is None),
        "aux_skipped": float(not aux_terms),
        **{
            f"goals/{kind}": float(available[:, i].float().mean())
            for i, kind in enumerate(("point", "image", "pixel"))
        },
    }
    return loss, info
