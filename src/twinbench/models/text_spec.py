"""What every text family's spec shares: vocabulary, sequence length, classes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any


def text_spec_for(cls: type, data: Any) -> Any:
    """A spec for a prepared text Dataset: its vocabulary size, length and classes."""
    return cls(vocab=int(data.provenance["vocab_size"]), length=int(data.x_train.shape[1]),
               classes=int(data.classes))


def without_dropout(spec: Any) -> Any:
    return replace(spec, dropout=0.0) if hasattr(spec, "dropout") else spec
