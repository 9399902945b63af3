"""Keras's default initialisers, reimplemented in numpy so that one seeded copy of the
initial weights exists outside every framework and is loaded into all twins."""

from __future__ import annotations

import math

import numpy as np


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fan computation: the last two axes are (in, out), leading axes are the
    receptive field (conv kernels are (kh, kw, in, out) in the canonical layout)."""
    if len(shape) < 2:
        raise ValueError(f"fans need a kernel of rank >= 2, got shape {shape}")
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """keras.initializers.GlorotUniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """keras.initializers.HeNormal: a normal truncated at 2 standard deviations, scaled so
    the result has variance 2 / fan_in (0.8796 is the std of N(0, 1) truncated at +-2)."""
    fan_in, _ = fans(shape)
    z = rng.standard_normal(shape)
    while (out := np.abs(z) > 2.0).any():  # redraw the tails: truncation by rejection
        z[out] = rng.standard_normal(int(out.sum()))
    return (z * (math.sqrt(2.0 / fan_in) / 0.87962566103423978)).astype(np.float32)


def zeros(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """keras.initializers.Zeros (the rng is taken so every initialiser has one signature)."""
    return np.zeros(shape, dtype=np.float32)


def ones(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """keras.initializers.Ones (BatchNorm/LayerNorm gamma, BatchNorm moving variance)."""
    return np.ones(shape, dtype=np.float32)


def embedding_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Keras Embedding's default: RandomUniform(-0.05, 0.05)."""
    return rng.uniform(-0.05, 0.05, size=shape).astype(np.float32)


def orthogonal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """keras.initializers.Orthogonal (recurrent kernels): QR of a normal matrix, signs
    fixed by diag(R), transposed when there are fewer rows than columns."""
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape).astype(np.float32)


def lstm_bias(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Keras LSTM bias with unit_forget_bias=True: gates (i, f, c, o), forget gate at 1."""
    units = shape[-1] // 4
    b = np.zeros(shape, dtype=np.float32)
    b[..., units:2 * units] = 1.0
    return b


INITIALISERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "zeros": zeros,
                "ones": ones, "embedding_uniform": embedding_uniform,
                "orthogonal": orthogonal, "lstm_bias": lstm_bias}


def init_weights(
    shapes: dict[str, tuple[tuple[int, ...], str]], seed: int
) -> dict[str, np.ndarray]:
    """Canonical initial weights: {"layer/param": array}, drawn in the spec's layer order
    from one generator, so the same seed always gives the same bytes."""
    rng = np.random.default_rng(seed)
    return {name: INITIALISERS[init](shape, rng) for name, (shape, init) in shapes.items()}
