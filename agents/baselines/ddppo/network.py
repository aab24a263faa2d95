"""DD-PPO's point-goal policy (Wijmans et al. 2020) in the layout of the released ``pointnav_weights.pth``.

habitat's ``PointNavResNetPolicy`` as NavDP's benchmark loads it (``checkpoints.md``): a depth-only GroupNorm
ResNet-18 (32 base planes, 16 groups) after 2×2 average pooling, compressed to 128×4×4 and projected to 512
(``net.visual_encoder``, ``net.visual_fc.1``); the point goal as ``[rho, cos(−θ), sin(−θ)]`` through
``net.tgt_embeding`` (32); the previous action through ``net.prev_action_embedding`` (5 × 32, fed ``(a + 1) ·
not_done``); a 2-layer LSTM of 512 (``net.state_encoder.rnn``) whose state is packed as (N, 4, 512) (h and c
of both layers); a categorical head over {STOP, FORWARD, LEFT, RIGHT} (``action_distribution.linear``) and a
value head (``critic.fc``). :data:`ACTION_TRAJECTORIES` maps the discrete actions onto the fixed trajectories
NavDP drives them as.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from agents.encoders.depth import ResNetEncoder

#: NavDP's trajectory per discrete action, 20 points (dx forward m, dy left m, dyaw rad): STOP stays, FORWARD
#: drives 1 m straight, LEFT / RIGHT arc to (0, ±1) m turning by ±1 rad.
N_TRAJECTORY_POINTS = 20


def action_trajectories(n: int = N_TRAJECTORY_POINTS) -> Tensor:
    """(4, n, 3) trajectories of STOP, FORWARD, TURN_LEFT, TURN_RIGHT (see :data:`N_TRAJECTORY_POINTS`)."""
    s = torch.linspace(1.0 / n, 1.0, n)
    zeros = torch.zeros(n)
    forward = torch.stack([s, zeros, zeros], -1)
    left = torch.stack([zeros, s, s], -1)
    return torch.stack([torch.zeros(n, 3), forward, left, left * torch.tensor([1.0, -1.0, -1.0])])


class PointNavResNetNet(nn.Module):
    """The recurrent network: depth (N, 1, H, W) metres, goal (N, 2) (rho m, theta rad), previous action (N,),
    not_done (N,) bool, state (N, 4, hidden) -> features (N, hidden), new state.

    Args:
        hidden_size: LSTM width (512).
        n_actions: discrete actions (4).
        input_size: the depth size the compression is computed for (256 → 128×4×4; 224 gives the same 4×4).
        backbone: ``resnet18`` (released) or ``resnet50``.
        baseplanes: ResNet width (32).
    """

    def __init__(
        self,
        hidden_size: int = 512,
        n_actions: int = 4,
        input_size: int = 256,
        backbone: str = "resnet18",
        baseplanes: int = 32,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.prev_action_embedding = nn.Embedding(n_actions + 1, 32)
        self.tgt_embeding = nn.Linear(3, 32)
        self.visual_encoder = ResNetEncoder(1, input_size, backbone, baseplanes, baseplanes // 2, 2048, 2)
        c, h, w = self.visual_encoder.output_shape
        self.visual_fc = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden_size), nn.ReLU(True))
        self.state_encoder = nn.Module()
        self.state_encoder.rnn = nn.LSTM(hidden_size + 64, hidden_size, num_layers=2)

    def embed(self, depth: Tensor, goal: Tensor, prev_action: Tensor, not_done: Tensor) -> Tensor:
        """The LSTM's input (N, hidden + 64) of N steps: visual features, goal and previous-action embeddings
        (no recurrence: a whole rollout's steps go through at once)."""
        visual = self.visual_fc(self.visual_encoder(depth))
        goal_in = torch.stack([goal[:, 0], torch.cos(-goal[:, 1]), torch.sin(-goal[:, 1])], -1)
        prev = self.prev_action_embedding(((prev_action.float() + 1) * not_done.float()).long())
        return torch.cat([visual, self.tgt_embeding(goal_in), prev], dim=1)

    def recurrent(self, x: Tensor, not_done: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One LSTM step: (N, hidden + 64) input, (N,) not_done, (N, 4, hidden) state -> (N, hidden) output,
        new state; the state is zeroed where ``not_done`` is false."""
        state = state * not_done.float()[:, None, None]
        h, c = state[:, :2].transpose(0, 1).contiguous(), state[:, 2:].transpose(0, 1).contiguous()
        out, (h, c) = self.state_encoder.rnn(x[None], (h, c))
        return out[0], torch.cat([h, c], dim=0).transpose(0, 1)

    def forward(
        self, depth: Tensor, goal: Tensor, prev_action: Tensor, not_done: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One step; see the class docstring. The state is zeroed where ``not_done`` is false."""
        return self.recurrent(self.embed(depth, goal, prev_action, not_done), not_done, state)


class PointNavResNetPolicy(nn.Module):
    """Network + categorical action head + value head, named as the released state dict."""

    def __init__(self, hidden_size: int = 512, n_actions: int = 4, **net_kwargs) -> None:
        super().__init__()
        self.net = PointNavResNetNet(hidden_size, n_actions, **net_kwargs)
        self.action_distribution = nn.Module()
        self.action_distribution.linear = nn.Linear(hidden_size, n_actions)
        self.critic = nn.Module()
        self.critic.fc = nn.Linear(hidden_size, 1)

    def initial_state(self, n: int) -> Tensor:
        """(n, 4, hidden) zeros."""
        return torch.zeros(n, 4, self.net.hidden_size)

    def forward(
        self, depth: Tensor, goal: Tensor, prev_action: Tensor, not_done: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> action logits (N, n_actions), value (N,), new state (N, 4, hidden)."""
        features, state = self.net(depth, goal, prev_action, not_done, state)
        return self.action_distribution.linear(features), self.critic.fc(features)[:, 0], state
