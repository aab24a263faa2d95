"""Small layers shared by the recurrent agents: the GRU state encoder and the categorical action head."""

from __future__ import annotations

from torch import Tensor, nn


class RNNStateEncoder(nn.Module):
    """A one-layer GRU over (B, T, input) sequences (habitat ``RNNStateEncoder``: orthogonal weights, zero
    biases).

    Args:
        input_size: per-step input size.
        hidden_size: state size.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        for name, param in self.rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)

    def forward(self, x: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """Run ``x`` (B, T, input) from ``hidden`` (B, H) → outputs (B, T, H) and the last state (B, H)."""
        out, last = self.rnn(x, hidden.unsqueeze(0).contiguous())
        return out, last.squeeze(0)


class CategoricalHead(nn.Module):
    """Linear action logits (habitat ``CategoricalNet``: orthogonal init with gain 0.01, zero bias)."""

    def __init__(self, input_size: int, n_actions: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, n_actions)
        nn.init.orthogonal_(self.linear.weight, gain=0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(..., input_size) → (..., n_actions) logits."""
        return self.linear(x)


def progress_head(hidden_size: int) -> nn.Linear:
    """The progress monitor ``Linear(hidden → 1)``, VLN-CE's initialisation (a tanh follows it)."""
    layer = nn.Linear(hidden_size, 1)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="tanh")
    nn.init.zeros_(layer.bias)
    return layer
