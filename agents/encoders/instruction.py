"""Instruction encoder (word embedding + LSTM / bi-LSTM, VLN-CE ``InstructionEncoder``), GloVe loader."""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from envs.datasets.vocab import PAD_INDEX, UNK_INDEX, Vocabulary

log = logging.getLogger(__name__)


class InstructionEncoder(nn.Module):
    """Embeds token ids (0 = PAD) and runs an LSTM over the unpadded part of each instruction.

    Args:
        vocab_size: number of token ids.
        embedding_size: word-vector size (50 for GloVe-6B-50d).
        hidden_size: LSTM hidden size per direction.
        bidirectional: bi-LSTM (CMA) or uni-directional (Seq2Seq).
        final_state_only: return the final hidden state (Seq2Seq) instead of per-token features (CMA).
        embeddings: (vocab_size, embedding_size) initial vectors (e.g. from :func:`load_glove_embeddings`);
            random N(0, 1) with a zero PAD row when None.
        fine_tune_embeddings: train the embeddings (False: frozen, as VLN-CE does with GloVe).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 50,
        hidden_size: int = 128,
        bidirectional: bool = False,
        final_state_only: bool = True,
        embeddings: Tensor | None = None,
        fine_tune_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if embeddings is not None and tuple(embeddings.shape) != (vocab_size, embedding_size):
            raise ValueError(
                f"InstructionEncoder: embeddings have shape {tuple(embeddings.shape)}, "
                f"expected (vocab_size, embedding_size) = ({vocab_size}, {embedding_size})"
            )
        self.embedding_layer = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_INDEX)
        if embeddings is not None:
            with torch.no_grad():
                self.embedding_layer.weight.copy_(embeddings)
        self.embedding_layer.weight.requires_grad_(fine_tune_embeddings)
        self.encoder_rnn = nn.LSTM(embedding_size, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.final_state_only = final_state_only
        #: Feature size: ``hidden_size`` × (2 if bidirectional else 1).
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, tokens: Tensor) -> Tensor:
        """Encode (B, L) int64 token ids, padded with 0 at the end.

        Returns:
            (B, output_size) final states, or (B, output_size, L') per-token features where L' is the longest
            instruction of the batch and padded positions are exactly 0.
        """
        # An empty instruction still runs one (PAD) step: packing needs lengths >= 1.
        lengths = (tokens != PAD_INDEX).sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding_layer(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        output, (final_hidden, _) = self.encoder_rnn(packed)
        if self.final_state_only:
            # (directions, B, H) -> (B, directions * H)
            return final_hidden.permute(1, 0, 2).reshape(tokens.shape[0], -1)
        return nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0].permute(0, 2, 1)


def _read_gzip_json(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: embeddings file not found")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: expected gzip-compressed JSON ({err})") from None


def load_glove_embeddings(
    path: str | os.PathLike,
    vocab: Vocabulary,
    embedding_size: int | None = None,
    file_words: Sequence[str] | None = None,
) -> Tensor:
    """Read word vectors in VLN-CE's ``embeddings.json.gz`` format.

    The file is a gzip JSON list with one row of ``embedding_size`` floats per word; row i is the vector of
    word i of the R2R-CE ``instruction_vocab.word_list`` (row 0 PAD, row 1 UNK = mean of the R2R word
    vectors).

    Args:
        path: the ``.json.gz`` file.
        vocab: the agent's vocabulary; without ``file_words`` the rows must be aligned with it.
        embedding_size: expected row length (checked when given).
        file_words: the word list the file's rows are aligned with, when it differs from ``vocab``; words of
            ``vocab`` missing from it get the file's UNK row.

    Returns:
        (len(vocab), embedding_size) float32 tensor; the PAD row is zero.

    Raises:
        ValueError: the file is not gzip JSON, not a rectangular list of numbers, or its shape does not fit.
    """
    path = Path(path)
    data = _read_gzip_json(path)
    try:
        table = torch.tensor(data, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        table = None
    if table is None or table.ndim != 2:
        raise ValueError(f"{path}: expected a JSON list of equal-length lists of numbers (one row per word)")
    expected_rows = len(vocab) if file_words is None else len(file_words)
    if table.shape[0] != expected_rows:
        raise ValueError(
            f"{path}: {table.shape[0]} rows, expected {expected_rows} (one per word of "
            f"{'file_words' if file_words is not None else 'the vocabulary'}, aligned with its word list)"
        )
    if embedding_size is not None and table.shape[1] != embedding_size:
        raise ValueError(
            f"{path}: rows have {table.shape[1]} values, expected embedding_size={embedding_size}"
        )
    if file_words is not None:
        index = {w: i for i, w in enumerate(file_words)}
        rows = [index.get(w, UNK_INDEX) for w in vocab.word_list]
        table = table[torch.tensor(rows, dtype=torch.long)]
    if table[PAD_INDEX].abs().sum() > 0:
        log.warning("%s: the PAD row (0) is not a zero vector; setting it to zero", path)
        table[PAD_INDEX] = 0.0
    return table
