"""RDP's training loss on padded whole trajectories (InternNav ``RDPTrainer.compute_loss``).

Loss = denoising MSE of the diffusion head over the valid label steps (of the noise, or of the plan with
``prediction_type="sample"``) + ``progress_alpha`` · progress-monitor MSE
+ ``stop_progress_weight`` · stop-progress MSE (target ``(t + 1) / T``) + ``action_loss_weight`` ·
cross-entropy of the expert's next action (the small default's auxiliary head), every term averaged over
the valid (unpadded) steps. ``T`` is where the expert finishes, so the stop-progress term only trains on
episodes that follow the expert's actions to its STOP (all expert episodes; a DAgger episode that left the
expert's path, or ended by a time limit, has no such ``T``: its own length would teach stopping wherever
the agent happened to stop).

The GRU runs over whole trajectories from a zero state (full BPTT); one diffusion timestep and one noise
sample are drawn per valid step, and in training mode each step's RGB and instruction condition tokens are
masked with probability ``cfg_mask_prob`` (classifier-free guidance).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from agents.base import MOVE_FORWARD, NUM_ACTIONS, STOP, TURN_LEFT, TURN_RIGHT, as_tensor, to_numpy
from agents.rdp.labels import action_history, batch_labels, trajectory_odometry

if TYPE_CHECKING:
    from agents.rdp.agent import RDPAgent


def _get(batch: Mapping[str, Any], key: str, form: str) -> Any:
    if key not in batch:
        raise KeyError(f"rdp: batch needs {key!r} ({form}); got keys {sorted(batch)}")
    return batch[key]


def trajectory_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """Checked numpy views of the batch's labels and poses.

    Raises:
        KeyError: a needed key is missing (named with its expected form).
        ValueError: a shape or an action id is wrong (the key is named).
    """
    mask = to_numpy(_get(batch, "mask", "(B, T) bool valid steps")).astype(bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"batch['mask'] must be (B, T) bool with a valid step, got shape {mask.shape}")
    texts = _get(batch, "instruction_text", "list of B strings")
    actions = to_numpy(_get(batch, "actions", "(B, T) int64 expert labels")).astype(np.int64)
    if "prev_actions" in batch:
        prev = to_numpy(batch["prev_actions"]).astype(np.int64)
    else:  # teacher forcing: the previous expert label, -1 at t=0
        prev = np.concatenate([np.full_like(actions[:, :1], -1), actions[:, :-1]], axis=1)
    positions = to_numpy(_get(batch, "positions", "(B, T, 3) float32 world positions"))
    yaws = to_numpy(_get(batch, "yaws", "(B, T) float32 yaws"))
    expected = {
        "actions": mask.shape,
        "prev_actions": mask.shape,
        "positions": (*mask.shape, 3),
        "yaws": mask.shape,
    }
    for key, value in (
        ("actions", actions),
        ("prev_actions", prev),
        ("positions", positions),
        ("yaws", yaws),
    ):
        if value.shape != expected[key]:
            raise ValueError(f"batch[{key!r}] has shape {value.shape}, expected {expected[key]}")
    for key, value, low in (("actions", actions, 0), ("prev_actions", prev, -1)):
        if value[mask].size and (value[mask].min() < low or value[mask].max() >= NUM_ACTIONS):
            raise ValueError(f"batch[{key!r}] must lie in [{low}, {NUM_ACTIONS}) on valid steps")
    progress = batch.get("progress")
    return {
        "mask": mask,
        "lengths": mask.sum(axis=1),
        "texts": [texts] if isinstance(texts, str) else [str(t) for t in texts],
        "actions": actions,
        "prev_actions": np.where(mask, prev, -1),
        "positions": positions,
        "yaws": yaws,
        "progress": None if progress is None else to_numpy(progress).astype(np.float32),
        "rgb": as_tensor(_get(batch, "rgb", "(B, T, H, W, 3) uint8")),
        "depth": as_tensor(_get(batch, "depth", "(B, T, H, W, 1) float32 metres")),
    }


def first_step_action(steps: Tensor, threshold: float) -> Tensor:
    """(N, 3) first steps in metres/radians → (N,) discrete action of the decoding rules (near zero: STOP)."""
    small = steps.abs() < threshold
    turning = small[:, 0] & small[:, 1]
    turn = torch.where(steps[:, 2] >= 0, TURN_LEFT, TURN_RIGHT)
    action = torch.where(turning, turn, torch.full_like(turn, MOVE_FORWARD))
    return torch.where(turning & small[:, 2], torch.full_like(turn, STOP), action)


def expert_episodes(actions: np.ndarray, prev_actions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(B,) bool: the episode executed its expert labels at every step and ends on the expert's STOP.

    Args:
        actions: (B, T) expert labels; prev_actions: (B, T) the action executed at ``t-1`` (−1 at ``t=0``);
        lengths: (B,) valid steps.
    """
    out = np.zeros(len(lengths), bool)
    for b, n in enumerate(np.asarray(lengths).tolist()):
        if n:
            followed = np.array_equal(prev_actions[b, 1:n], actions[b, : n - 1])
            out[b] = followed and actions[b, n - 1] == STOP
    return out


def _masked_mean(values: Tensor, weights: Tensor) -> Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1)


def trajectory_loss(agent: RDPAgent, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
    """See the module docstring and :meth:`agents.rdp.agent.RDPAgent.loss`."""
    net, c, sem, device = agent.net, agent.config, agent.semantics, agent.device
    x = trajectory_inputs(batch)
    mask_np = x["mask"]
    mask = torch.from_numpy(mask_np).to(device)
    for key in ("rgb", "depth"):
        if tuple(x[key].shape[:2]) != mask_np.shape:
            raise ValueError(f"batch[{key!r}] has leading dims {tuple(x[key].shape[:2])}, expected (B, T)")
    text, text_valid = net.encode_text(*agent.tokenize(x["texts"]))
    frames = agent.frames(x["rgb"][torch.from_numpy(mask_np)], x["depth"][torch.from_numpy(mask_np)])
    tokens = net.encode_frames(*frames)  # (N, 5, D) for the N valid steps
    vision = tokens.new_zeros((*mask_np.shape, *tokens.shape[1:])).index_put((mask,), tokens)
    odometry = torch.from_numpy(trajectory_odometry(x["positions"], x["yaws"], x["lengths"])).to(device)
    hidden = torch.zeros(mask_np.shape[0], c.hidden_size, device=device)
    states, _ = net.recurrent(vision, agent.steps(x["prev_actions"]), odometry, hidden)

    rows = torch.from_numpy(np.nonzero(mask_np)[0]).to(device)
    history = agent.steps(action_history(x["prev_actions"], c.n_prev_actions)[mask_np])
    state = states[mask]
    cond, summary = net.condition(tokens, state, text[rows], text_valid[rows], odometry[mask], history)
    masked = torch.rand(len(rows), device=device) < c.cfg_mask_prob if agent.training else None
    cond = net.finish_condition(cond, masked)

    labels, label_mask = batch_labels(
        x["actions"], x["prev_actions"], x["positions"], x["yaws"], x["lengths"], sem
    )
    target = torch.from_numpy(labels[mask_np]).to(device)
    weights = torch.from_numpy(label_mask[mask_np]).to(device).float().unsqueeze(-1)  # (N, H, 1)
    noise = torch.randn(target.shape, device=device)
    timesteps = torch.randint(0, c.num_train_timesteps, (len(rows),), device=device)
    noisy = agent.scheduler.add_noise(target, noise, timesteps)
    predicted = net.head(noisy, timesteps, cond)
    clean = c.prediction_type == "sample"
    eps_loss = _masked_mean((predicted - (target if clean else noise)) ** 2, weights.expand_as(noise))

    progress, stop = net.progress(state, summary)
    step_index = torch.from_numpy(np.nonzero(mask_np)[1]).to(device).float()
    lengths = torch.from_numpy(x["lengths"]).to(device).float()[rows]
    on_path = torch.from_numpy(expert_episodes(x["actions"], x["prev_actions"], x["lengths"])).to(device)
    stop_loss = _masked_mean((stop - (step_index + 1) / lengths) ** 2, on_path[rows].float())
    pm_loss = torch.zeros((), device=device)
    if x["progress"] is not None:
        pm_target = torch.from_numpy(x["progress"][mask_np]).to(device)
        pm_loss = ((progress - pm_target) ** 2).mean()
    aux = c.progress_alpha * pm_loss + c.stop_progress_weight * stop_loss
    action_ce = torch.zeros((), device=device)
    if c.action_loss_weight > 0:
        expert = torch.from_numpy(x["actions"][mask_np]).to(device)
        action_ce = torch.nn.functional.cross_entropy(net.action_logits(state, summary), expert)
        aux = aux + c.action_loss_weight * action_ce

    with torch.no_grad():  # accuracy of the one-shot denoised first step
        alpha = agent.scheduler.alphas_cumprod.to(device)[timesteps].view(-1, 1, 1)
        estimate = predicted if clean else (noisy - (1 - alpha).sqrt() * predicted) / alpha.sqrt()
        estimate = estimate.clamp(-1, 1)
        bounds = torch.from_numpy(sem.bounds).to(device)
        first = weights[:, 0, 0] > 0
        hit = first_step_action(estimate[:, 0] * bounds, c.move_threshold) == first_step_action(
            target[:, 0] * bounds, c.move_threshold
        )
        accuracy = (hit & first).sum().float() / first.sum().clamp(min=1)
    info = {
        "loss/action": eps_loss.item(),
        "loss/progress": aux.item(),
        "loss/progress_monitor": pm_loss.item(),
        "loss/stop_progress": stop_loss.item(),
        "loss/action_ce": action_ce.item(),
        "accuracy": accuracy.item(),
    }
    return eps_loss + aux, info
