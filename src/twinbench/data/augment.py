"""Image augmentation from one seeded plan, in numpy, before any framework sees the
pixels: every stack trains on identical augmented images in the same order.

The plan of epoch e is drawn from a generator seeded by (seed, e, AUGMENT_STREAM), apart
from the epoch order's (seed, e): per sample position in the epoch order, a crop offset
(dy, dx) in [0, 2p] of the zero-padded image and a flip bit. Images are NHWC (canonical).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from twinbench.recipe import AugmentConfig

AUGMENT_STREAM = 7919  # keeps the plan's generator apart from epoch_order's


class AugmentPlan(NamedTuple):
    dy: np.ndarray  # (N,) int: crop row offset in the padded image, 0..2p
    dx: np.ndarray  # (N,) int: crop column offset
    flip: np.ndarray  # (N,) bool: flip left-right after cropping


def plan(n: int, cfg: AugmentConfig, seed: int, epoch: int) -> AugmentPlan:
    rng = np.random.default_rng([seed, epoch, AUGMENT_STREAM])
    p = cfg.crop_padding
    dy = rng.integers(0, 2 * p + 1, n) if p else np.full(n, 0)
    dx = rng.integers(0, 2 * p + 1, n) if p else np.full(n, 0)
    flip = rng.random(n) < 0.5 if cfg.horizontal_flip else np.zeros(n, bool)
    return AugmentPlan(dy, dx, flip)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of NHWC images (float64 sums, float32 results)."""
    mean = x.mean(axis=(0, 1, 2), dtype=np.float64)
    std = np.sqrt(((x.astype(np.float64) - mean) ** 2).mean(axis=(0, 1, 2)))
    return mean.astype(np.float32), np.maximum(std, 1e-12).astype(np.float32)


def apply(x: np.ndarray, p: AugmentPlan, cfg: AugmentConfig,
          stats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """x (N, H, W, C) in epoch order -> augmented copy; normalised with `stats` when the
    config says so (after cropping: padded pixels are black before normalisation, as
    torchvision's RandomCrop then Normalize)."""
    if x.ndim != 4:
        raise ValueError(f"augmentation needs NHWC images, got shape {x.shape}")
    pad = cfg.crop_padding
    out = np.empty_like(x)
    if pad:
        h, w = x.shape[1:3]
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        for oy in range(2 * pad + 1):  # one slice per distinct offset: no per-sample loop
            for ox in range(2 * pad + 1):
                idx = np.flatnonzero((p.dy == oy) & (p.dx == ox))
                out[idx] = padded[idx, oy:oy + h, ox:ox + w]
    else:
        out[:] = x
    out[p.flip] = out[p.flip, :, ::-1]
    if cfg.normalize:
        if stats is None:
            raise ValueError("normalize needs the training split's channel statistics")
        out -= stats[0]
        out /= stats[1]
    return out


def augmented_epoch(x: np.ndarray, order: np.ndarray, cfg: AugmentConfig, seed: int,
                    epoch: int, stats: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The epoch's images in `order`, augmented by the epoch's plan."""
    return apply(x[order], plan(len(order), cfg, seed, epoch), cfg, stats)


def normalized(x: np.ndarray, cfg: AugmentConfig,
               stats: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Test images: normalised like the training ones, never cropped or flipped."""
    if not cfg.normalize or stats is None:
        return x
    return (x - stats[0]) / stats[1]
