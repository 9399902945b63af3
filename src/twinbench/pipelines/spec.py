"""The transforms every input pipeline applies, framework-free, and their numpy reference.

Image (float32 NHWC in [0, 1]), per sample, in this order:
1. random shift with zero padding: pad `pad` pixels on every side, then crop the original
   size at offset (dy, dx) in [0, 2*pad]^2 (torchvision's RandomCrop(padding=...)):
   out[i, j] = x[i + dy - pad, j + dx - pad], 0 outside;
2. random horizontal flip (when `flip`; off for digits, whose classes are not mirror
   symmetric);
3. per-channel normalisation: (x - mean) / sqrt(var), mean and var of the training split.
Text: raw string -> `twinbench.data.text` tokenizer -> vocabulary ids, post-padded to
`length` (0 padding, 1 out-of-vocabulary, an empty text becomes one OOV token).

Randomness: the sample order of an epoch (`epoch_order`, the one every stack trains on)
and each sample's shift and flip are drawn here, from one seeded numpy generator per
epoch, and handed to every pipeline. With the same seed every pipeline therefore yields
the same batches, bit for bit; with augmentation off they are equal trivially.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinbench.data.dataset import epoch_order
from twinbench.data.text import Vocabulary, encode


@dataclass(frozen=True)
class PipelineData:
    """The training split as a pipeline starts from it, plus the transform parameters.

    Image: `x` float32 (N, H, W, C) in [0, 1]; `mean`, `var` float32 (C,). Text: `x` str
    (N,) raw texts; `vocab` the training vocabulary, `length` tokens per sequence."""

    name: str
    kind: str  # "image" or "text"
    x: np.ndarray
    y: np.ndarray  # int64 class ids
    classes: int
    augment: bool = True  # shift (and flip): off makes every pipeline deterministic
    pad: int = 0
    flip: bool = False
    mean: np.ndarray | None = None
    var: np.ndarray | None = None
    vocab: Vocabulary | None = None
    length: int = 0

    @property
    def std(self) -> np.ndarray:
        """float32 sqrt(var): every framework divides by exactly this (IEEE sqrt)."""
        return np.sqrt(self.var)

    def transforms(self) -> dict[str, object]:
        """What the pipelines compute, for the results' settings."""
        if self.kind == "text":
            return {"text": "tokenize (twinbench.data.text) -> ids, post-pad", "length":
                    self.length, "vocab_size": self.vocab.size}
        return {"shift_pad": self.pad if self.augment else 0, "flip": self.flip and self.augment,
                "normalise": {"mean": self.mean.tolist(), "var": self.var.tolist()},
                "order": "shift, flip, normalise"}

    def save(self, path: Path) -> None:
        meta = {"name": self.name, "kind": self.kind, "classes": self.classes,
                "augment": self.augment, "pad": self.pad, "flip": self.flip,
                "length": self.length}
        extra = {}
        if self.kind == "image":
            extra = {"mean": self.mean, "var": self.var}
        else:
            extra = {"vocab": np.array(self.vocab.tokens, dtype=str)}
        np.savez(path, x=self.x, y=self.y, meta=np.array(json.dumps(meta)), **extra)

    @classmethod
    def load(cls, path: Path) -> PipelineData:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            extra: dict[str, object] = {}
            if meta["kind"] == "image":
                extra = {"mean": z["mean"], "var": z["var"]}
            else:
                extra = {"vocab": Vocabulary(tuple(str(t) for t in z["vocab"]))}
            return cls(x=z["x"], y=z["y"], **meta, **extra)


def image_data(name: str, x: np.ndarray, y: np.ndarray, classes: int, augment: bool,
               pad: int, flip: bool) -> PipelineData:
    """Per-channel mean and variance of the training images (float64 sums, stored float32)."""
    mean = x.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    var = x.var(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    return PipelineData(name, "image", x, y, classes, augment, pad, flip, mean, var)


@dataclass(frozen=True)
class EpochPlan:
    """One epoch's randomness. `order`: sample ids in training order; `offsets[i]` (dy, dx)
    and `flips[i]` belong to sample id i (not to its position), so a pipeline that maps
    over sample ids needs no position bookkeeping."""

    order: np.ndarray  # (N,) int64
    offsets: np.ndarray  # (N, 2) int64 in [0, 2*pad]
    flips: np.ndarray  # (N,) bool


def plan_epoch(data: PipelineData, seed: int, epoch: int) -> EpochPlan:
    n = len(data.y)
    order = epoch_order(n, seed, epoch)  # the order every stack trains on
    rng = np.random.default_rng([seed, epoch, 1])  # augmentation: its own stream
    offsets = np.full((n, 2), data.pad, dtype=np.int64)  # centre: no shift
    flips = np.zeros(n, dtype=bool)
    if data.kind == "image" and data.augment:
        offsets = rng.integers(0, 2 * data.pad + 1, size=(n, 2))
        if data.flip:
            flips = rng.random(n) < 0.5
    return EpochPlan(order, offsets, flips)


def shift_flip(x: np.ndarray, offsets: np.ndarray, flips: np.ndarray, pad: int) -> np.ndarray:
    """(B, H, W, C) -> (B, H, W, C): zero-pad, crop at each sample's offset, flip."""
    b, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    # windows: (B, 2p+1, 2p+1, C, H, W), a view; fancy indexing copies one per sample.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
    out = windows[np.arange(b), offsets[:, 0], offsets[:, 1]].transpose(0, 2, 3, 1)
    out = np.where(flips[:, None, None, None], out[:, :, ::-1], out)
    return np.ascontiguousarray(out, dtype=x.dtype)


def transform_images(data: PipelineData, ids: np.ndarray, plan: EpochPlan) -> np.ndarray:
    """The numpy reference for the images `ids`: float32 (B, H, W, C)."""
    x = data.x[ids]
    if data.augment:
        x = shift_flip(x, plan.offsets[ids], plan.flips[ids], data.pad)
    return (x - data.mean) / data.std


def encode_texts(data: PipelineData, ids: np.ndarray, index: dict[str, int] | None = None
                 ) -> np.ndarray:
    """The numpy reference for the texts `ids`: int64 (B, length)."""
    return encode([str(t) for t in data.x[ids]], data.vocab, data.length, index)


def reference(data: PipelineData, ids: np.ndarray, plan: EpochPlan) -> np.ndarray:
    if data.kind == "image":
        return transform_images(data, ids, plan)
    return encode_texts(data, ids)


def allowed_outputs(data: PipelineData, ids: np.ndarray) -> np.ndarray:
    """Every output the image transforms may give for each sample: (B, K, H, W, C) over
    the K = (2*pad+1)^2 shifts (times 2 with flips). Checks a pipeline whose randomness
    is its own (Keras layers inside the model) against the transforms' support."""
    p, b = (data.pad if data.augment else 0), len(ids)
    flips = (False, True) if data.flip and data.augment else (False,)
    outs = [shift_flip(data.x[ids], np.tile([dy, dx], (b, 1)), np.full(b, f), p)
            for f in flips for dy in range(2 * p + 1) for dx in range(2 * p + 1)]
    return (np.stack(outs, axis=1) - data.mean) / data.std


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise distance in units in the last place of two float32 arrays (ints: the
    plain difference, so any change in an id counts)."""
    if np.asarray(b).dtype != np.float32:
        return np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64))
    ia, ib = (np.asarray(v, np.float32).view(np.int32).astype(np.int64) for v in (a, b))
    return np.abs(ia - ib)


def support_ulps(out: np.ndarray, data: PipelineData, ids: np.ndarray) -> np.ndarray:
    """(B,) for each sample, the ulps to its nearest allowed output (0: it is one)."""
    allowed = allowed_outputs(data, ids)  # (B, K, H, W, C)
    dist = ulps(np.broadcast_to(out[:, None], allowed.shape), allowed)
    return dist.reshape(*allowed.shape[:2], -1).max(axis=2).min(axis=1)


def within_support(out: np.ndarray, data: PipelineData, ids: np.ndarray) -> np.ndarray:
    """(B,) bool: sample b equals, bit for bit, one of its allowed outputs."""
    return support_ulps(out, data, ids) == 0


class PlannedDataset:
    """The epoch methods of a pipeline built on a tf.data `self.dataset` whose random draws
    come from `self.plan` (tf.Variables): shared by tf.data and Keras-layers-outside.
    Framework-free itself, so importing it never imports TensorFlow."""

    def iterate(self, plan: EpochPlan):
        self.plan.assign(plan)
        return iter(self.dataset)

    def to_numpy(self, batch) -> tuple[np.ndarray, np.ndarray]:
        return batch[0].numpy(), batch[1].numpy()

    def train(self, stack, plan: EpochPlan, timer) -> float:  # timer: StepTimer
        self.plan.assign(plan)
        return stack.fit_epoch(self.dataset, self.n, timer)
