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
        """One compressed npz that every cell of the run loads: the same arrays for every
        stack. Images that are exactly uint8 / 255 (MNIST, CIFAR-10) are stored as those
        bytes, a quarter of the float32 (CIFAR-10 wrote 740 MB a run), and `load` rebuilds
        the identical float32."""
        arrays = {"y_train": self.y_train, "y_test": self.y_test}
        for name in ("x_train", "x_test"):
            x = getattr(self, name)
            packed = pack_uint8(x)
            arrays.update({f"{name}_u8": packed} if packed is not None else {name: x})
        np.savez_compressed(path, **arrays, meta=np.array(json.dumps(
            {"name": self.name, "classes": self.classes, **self.provenance})))

    @classmethod
    def load(cls, path: Path) -> "Dataset":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            name, classes = meta.pop("name"), meta.pop("classes")
            x = {k: unpack_uint8(z[f"{k}_u8"]) if f"{k}_u8" in z.files else z[k]
                 for k in ("x_train", "x_test")}
            return cls(name, x["x_train"], z["y_train"], x["x_test"], z["y_test"], classes,
                       meta)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "train": int(len(self.y_train)),
            "test": int(len(self.y_test)),
            "input_shape": list(self.x_train.shape[1:]),
            "classes": self.classes,
            **self.provenance,
        }


PACK_ROWS = 4096  # images checked at a time: no full-size float temporaries (CIFAR: 600 MB)


def unpack_uint8(q: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], computed as the image loaders compute it (float32 / 255)."""
    x = q.astype(np.float32)
    x /= np.float32(255)
    return x


def pack_uint8(x: np.ndarray) -> np.ndarray | None:
    """The uint8 k with unpack_uint8(k) == x bit for bit, or None when x is not exactly
    such an image (digits: /16 and upsampled; text: token ids), which stays as it is."""
    if x.dtype != np.float32 or x.size == 0:
        return None
    out = np.empty(x.shape, np.uint8)
    for i in range(0, len(x), PACK_ROWS):
        part = x[i: i + PACK_ROWS]
        k = np.rint(part * np.float32(255))
        if not np.all((k >= 0) & (k <= 255)):  # NaN fails this too
            return None
        out[i: i + PACK_ROWS] = k
        if not np.array_equal(unpack_uint8(out[i: i + PACK_ROWS]), part):
            return None
    return out


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled sample order of one epoch, identical for every stack.

    Seeded by (seed, epoch) rather than by a running generator, so a stack that skips or
    repeats an epoch cannot shift every later epoch's order.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive batch slices over an epoch order; the last one may be short."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
