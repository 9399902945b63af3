"""Framework-free text preparation: every stack gets the very same integer arrays.

- Tokenizer: lower-case, then the words of `TOKEN_PATTERN`: runs of letters or digits,
  with an optional apostrophe suffix ("don't", "it's"). Everything else separates words.
- Vocabulary: built from the training split only; tokens with at least `min_count`
  occurrences, most frequent first (ties alphabetical), at most `max_size` ids in all.
- Ids: 0 is padding, 1 is out-of-vocabulary. Sequences are truncated to `length` tokens
  (keeping the first ones) and padded at the end. An empty text becomes one OOV token, so
  every sequence has length >= 1 (a fully masked sequence has no defined RNN output).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)?"
TOKEN_RE = re.compile(TOKEN_PATTERN)
PAD, OOV = 0, 1


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]  # id 2 onwards

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 2, max_size: int = 20000
              ) -> "Vocabulary":
        counts = Counter(t for text in texts for t in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_count),
                        key=lambda t: (-counts[t], t))
        return cls(tuple(ranked[: max(max_size - 2, 0)]))

    @property
    def size(self) -> int:
        return len(self.tokens) + 2

    def index(self) -> dict[str, int]:
        return {t: i + 2 for i, t in enumerate(self.tokens)}


def encode(texts: Sequence[str], vocab: Vocabulary, length: int,
           index: dict[str, int] | None = None) -> np.ndarray:
    """(N, length) int64 ids, post-padded with PAD. `index`: `vocab.index()`, passed in by
    callers that encode batch by batch (building it costs more than a small batch)."""
    index = vocab.index() if index is None else index
    out = np.full((len(texts), length), PAD, dtype=np.int64)
    for i, text in enumerate(texts):
        ids = [index.get(t, OOV) for t in tokenize(text)][:length] or [OOV]
        out[i, : len(ids)] = ids
    return out


def lengths(ids: np.ndarray) -> np.ndarray:
    """Valid tokens per post-padded row."""
    return (ids != PAD).sum(axis=1)
