"""Instruction tokenisation and vocabularies in R2R-CE's ``instruction_vocab`` format.

The tokenizer follows Habitat's (used to build R2R-CE): lower-case, split on non-word characters keeping the
possessive ``'s``, drop ``,`` and ``?``. Token ids: 0 = PAD, 1 = UNK, words from 2 on; sequences are padded
with 0 to a fixed length (200 in R2R-CE).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

PAD_INDEX = 0
UNK_INDEX = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
#: Instruction length of R2R-CE token vectors.
MAX_INSTRUCTION_LENGTH = 200

_SPLIT = re.compile(r"([^\w'-]+)")
_DROP = {",", "?", ""}


def tokenize(text: str) -> list[str]:
    """Split an instruction into lower-case words the way Habitat's VLN tokenizer does.

    Args:
        text: an English instruction.

    Returns:
        Words in order; punctuation other than ``.`` and ``!`` is dropped, ``'s`` stays a token of its own.
    """
    text = text.lower().replace("'s", " 's")
    tokens = []
    for piece in _SPLIT.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if _SPLIT.fullmatch(piece) or piece in _DROP:
            # Punctuation runs: keep sentence ends (they mark sub-instructions), drop the rest.
            tokens.extend(ch for ch in piece if ch in ".!")
            continue
        tokens.append(piece)
    return [t for t in tokens if t not in _DROP]


@dataclass
class Vocabulary:
    """A word list with ids; id 0 is padding and id 1 stands for unknown words (whatever their spelling in a
    file: NavGym writes ``<pad>`` and ``<unk>``).

    Attributes:
        word_list: all words, index = token id.
    """

    word_list: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.word_list) < 2:
            raise ValueError(f"instruction_vocab.word_list needs at least PAD and UNK, got {self.word_list}")
        self._index = {w: i for i, w in enumerate(self.word_list)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Build a vocabulary of every word seen at least ``min_count`` times, sorted for determinism."""
        counts: dict[str, int] = {}
        for text in texts:
            for tok in tokenize(text):
                counts[tok] = counts.get(tok, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= min_count)
        return cls([PAD_TOKEN, UNK_TOKEN, *words])

    def __len__(self) -> int:
        return len(self.word_list)

    def encode(self, text: str, length: int = MAX_INSTRUCTION_LENGTH) -> list[int]:
        """Token ids of ``text``, truncated or padded with ``PAD_INDEX`` to ``length``."""
        ids = [self._index.get(tok, UNK_INDEX) for tok in tokenize(text)][:length]
        return ids + [PAD_INDEX] * (length - len(ids))

    def decode(self, ids: Iterable[int]) -> str:
        """Words of non-padding ids joined by spaces."""
        return " ".join(self.word_list[i] for i in ids if i != PAD_INDEX)

    def to_dict(self) -> dict:
        """The R2R-CE ``instruction_vocab`` object."""
        return {
            "word_list": list(self.word_list),
            "word2idx_dict": dict(self._index),
            "itos": list(self.word_list),
            "stoi": dict(self._index),
            "num_vocab": len(self.word_list),
            "UNK_INDEX": UNK_INDEX,
            "PAD_INDEX": PAD_INDEX,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "instruction_vocab") -> Vocabulary:
        """Read an R2R-CE ``instruction_vocab`` object; ``source`` names it in errors."""
        if not isinstance(data, dict) or not isinstance(data.get("word_list"), list):
            raise ValueError(f"{source}: expected an object with a 'word_list' list of strings")
        return cls([str(w) for w in data["word_list"]])
