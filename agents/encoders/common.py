"""Pieces shared by the encoders: freezing, spatial embeddings and checked loading of pretrained weights."""

from __future__ import annotations

import abc
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

#: How many keys an error message lists before summarising.
_MAX_LISTED = 12


def spatial_embedding_map(embedding: nn.Embedding, n: int, h: int, w: int) -> Tensor:
    """The (n, E, h, w) map of learned per-cell embeddings appended to spatial features.

    The (h·w, E) table is reshaped (not transposed) to (E, h, w), exactly as VLN-CE does, so that its
    checkpoints keep their meaning.
    """
    return embedding.weight.reshape(1, -1, h, w).expand(n, -1, h, w)


class FrozenAware(nn.Module, abc.ABC):
    """Base of encoders whose backbone (``_frozen_part()``) may be frozen; frozen, it stays in eval mode."""

    trainable: bool

    @abc.abstractmethod
    def _frozen_part(self) -> nn.Module:
        """The backbone that freezing affects."""

    def _freeze(self, trainable: bool) -> None:
        self.trainable = trainable
        for param in self._frozen_part().parameters():
            param.requires_grad_(trainable)

    def train(self, mode: bool = True) -> FrozenAware:
        """Set train/eval mode; a frozen backbone stays in eval mode (BatchNorm keeps its statistics)."""
        super().train(mode)
        if not self.trainable:
            self._frozen_part().eval()
        return self

    def _backbone_forward(self, x: Tensor) -> Tensor:
        return self._frozen_part()(x)

    def _run_backbone(self, x: Tensor) -> Tensor:
        # A frozen backbone runs without building a graph: no activations are kept for backward.
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            return self._backbone_forward(x)


def read_torch_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(f"{path}: not a torch checkpoint loadable with weights_only=True ({err})") from None


def _listed(keys: list[str]) -> str:
    more = f" ... (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def load_state_dict_checked(module: nn.Module, weights: Mapping[str, Tensor], source: str) -> None:
    """Load ``weights`` into ``module`` after checking that keys and shapes match exactly.

    Raises:
        ValueError: names ``source`` and lists the missing, unexpected and shape-mismatched keys.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k} {tuple(weights[k].shape)} != {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(weights))
        if tuple(weights[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = [
            f"{label} ({len(keys)}): {_listed(keys)}"
            for label, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if keys
        ]
        raise ValueError(f"{source}: weights do not fit {type(module).__name__}; " + "; ".join(parts))
    module.load_state_dict(dict(weights), strict=True)
