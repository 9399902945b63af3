"""The in-memory dataset contract shared by every task, and the epoch order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train/test arrays. Images are float32 NHWC in [0, 1]; labels int64 class ids."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    provenance: dict[str, object] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """One npz that every cell of the run loads: the same bytes for every stack."""
        np.savez(path, x_train=self.x_train, y_train=self.y_train, x_test=self.x_test,
                 y_test=self.y_test, meta=np.array(json.dumps(
                     {"name": self.name, "classes": self.classes, **self.provenance})))

    @classmethod
    def load(cls, path: Path) -> "Dataset":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            name, classes = meta.pop("name"), meta.pop("classes")
            return cls(name, z["x_train"], z["y_train"], z["x_test"], z["y_test"], classes, meta)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "train": int(len(self.y_train)),
            "test": int(len(self.y_test)),
            "input_shape": list(self.x_train.shape[1:]),
            "classes": self.classes,
            **self.provenance,
        }


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled sample order of one epoch, identical for every stack.

    Seeded by (seed, epoch) rather than by a running generator, so a stack that skips or
    repeats an epoch cannot shift every later epoch's order.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive batch slices over an epoch order; the last one may be short."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
