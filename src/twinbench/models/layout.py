# ruff: noqa: E501 (the docstring's layer table reads best unwrapped)
"""Framework-free conversions between the canonical weight layout and PyTorch's.

The canonical layout is Keras's (channels-last): Dense kernel (in, out), Conv2D kernel
(kh, kw, in, out). PyTorch stores Linear weights as (out, in) and Conv2d weights as
(out, in, kh, kw). Each function here is an exact permutation (no arithmetic), so a
round trip is bit-identical. Per layer type (canonical -> torch):

| layer | canonical (Keras) | torch |
|---|---|---|
| Dense | kernel (in, out), bias | weight (out, in), bias |
| Conv1D | kernel (k, in, out) | weight (out, in, k) |
| Conv2D | kernel (kh, kw, in, out) | weight (out, in, kh, kw) |
| Embedding | embeddings (vocab, dim) | weight (vocab, dim), same |
| LSTM | kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H); gates i,f,c,o | weight_ih (4H, in), weight_hh (4H, H), bias_ih, bias_hh; gates i,f,g,o. torch has two biases: bias_hh is held at zero and frozen |
| GRU, reset_after | kernel (in, 3H), recurrent_kernel (H, 3H), bias (2, 3H) [input; recurrent]; gates z,r,h | weight_ih (3H, in), weight_hh (3H, H), bias_ih, bias_hh; gates r,z,n |
| BatchNormalization | gamma, beta, moving_mean, moving_variance | weight, bias, running_mean, running_var |
| LayerNormalization | gamma, beta | weight, bias |
| MultiHeadAttention | query/key/value kernel (E, heads, d), bias (heads, d); output kernel (heads, d, E), bias (E) | in_proj_weight (3*heads*d, E), in_proj_bias, out_proj.weight (E, heads*d), out_proj.bias |
"""

from __future__ import annotations

import numpy as np


def conv2d_to_torch(kernel: np.ndarray) -> np.ndarray:
    """(kh, kw, in, out) -> (out, in, kh, kw)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def conv2d_from_torch(weight: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) -> (kh, kw, in, out)."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def dense_to_torch(kernel: np.ndarray) -> np.ndarray:
    """(in, out) -> (out, in)."""
    return np.ascontiguousarray(kernel.T)


def dense_from_torch(weight: np.ndarray) -> np.ndarray:
    """(out, in) -> (in, out)."""
    return np.ascontiguousarray(weight.T)


def dense_after_flatten_to_torch(kernel: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    """The Dense right after a Flatten. Keras flattens NHWC, so kernel rows run in
    (h, w, c) order; torch flattens NCHW, (c, h, w). Reorder the rows, then transpose."""
    h, w, c = hwc
    out = kernel.shape[1]
    rows_chw = kernel.reshape(h, w, c, out).transpose(2, 0, 1, 3).reshape(h * w * c, out)
    return dense_to_torch(rows_chw)


def dense_after_flatten_from_torch(weight: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    """Inverse of `dense_after_flatten_to_torch`."""
    h, w, c = hwc
    rows_chw = dense_from_torch(weight)
    out = rows_chw.shape[1]
    return np.ascontiguousarray(
        rows_chw.reshape(c, h, w, out).transpose(1, 2, 0, 3).reshape(h * w * c, out)
    )


def conv1d_to_torch(kernel: np.ndarray) -> np.ndarray:
    """(k, in, out) -> (out, in, k)."""
    return np.ascontiguousarray(kernel.transpose(2, 1, 0))


def conv1d_from_torch(weight: np.ndarray) -> np.ndarray:
    """(out, in, k) -> (k, in, out)."""
    return np.ascontiguousarray(weight.transpose(2, 1, 0))


GRU_KERAS_TO_TORCH = (1, 0, 2)  # Keras gates (z, r, h) -> torch (r, z, n); self-inverse


def _regate(m: np.ndarray, order: tuple[int, ...], axis: int) -> np.ndarray:
    blocks = np.split(m, len(order), axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


def lstm_to_torch(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """Keras gate order (i, f, c, o) is torch's (i, f, g, o): transposes only. torch's
    second bias vector (bias_hh) gets zeros; the twin freezes it."""
    return {"weight_ih": dense_to_torch(kernel), "weight_hh": dense_to_torch(recurrent),
            "bias_ih": bias.copy(), "bias_hh": np.zeros_like(bias)}


def lstm_from_torch(t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `lstm_to_torch`; the two torch biases add up to Keras's one."""
    return (dense_from_torch(t["weight_ih"]), dense_from_torch(t["weight_hh"]),
            t["bias_ih"] + t.get("bias_hh", 0))


def gru_to_torch(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """Keras GRU with reset_after=True (its default, and the cuDNN form torch uses):
    bias (2, 3H) holds the input and the recurrent bias, as torch's bias_ih / bias_hh."""
    o = GRU_KERAS_TO_TORCH
    return {"weight_ih": dense_to_torch(_regate(kernel, o, 1)),
            "weight_hh": dense_to_torch(_regate(recurrent, o, 1)),
            "bias_ih": _regate(bias[0], o, 0), "bias_hh": _regate(bias[1], o, 0)}


def gru_from_torch(t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o = GRU_KERAS_TO_TORCH
    return (_regate(dense_from_torch(t["weight_ih"]), o, 1),
            _regate(dense_from_torch(t["weight_hh"]), o, 1),
            np.stack([_regate(t["bias_ih"], o, 0), _regate(t["bias_hh"], o, 0)]))


def mha_to_torch(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras MultiHeadAttention's per-head EinsumDense weights -> torch's packed
    nn.MultiheadAttention (which needs heads * key_dim == embed dim)."""
    e, heads, d = w["query/kernel"].shape
    qkv = [w[f"{n}/kernel"].reshape(e, heads * d).T for n in ("query", "key", "value")]
    bias = [w[f"{n}/bias"].reshape(heads * d) for n in ("query", "key", "value")]
    return {"in_proj_weight": np.ascontiguousarray(np.concatenate(qkv, axis=0)),
            "in_proj_bias": np.concatenate(bias),
            "out_proj.weight": np.ascontiguousarray(
                w["attention_output/kernel"].reshape(heads * d, e).T),
            "out_proj.bias": w["attention_output/bias"].copy()}


def mha_from_torch(t: dict[str, np.ndarray], heads: int) -> dict[str, np.ndarray]:
    e = t["out_proj.bias"].shape[0]
    d = t["in_proj_weight"].shape[0] // (3 * heads)
    out: dict[str, np.ndarray] = {}
    for i, n in enumerate(("query", "key", "value")):
        rows = slice(i * heads * d, (i + 1) * heads * d)
        out[f"{n}/kernel"] = np.ascontiguousarray(t["in_proj_weight"][rows].T.reshape(e, heads, d))
        out[f"{n}/bias"] = t["in_proj_bias"][rows].reshape(heads, d).copy()
    out["attention_output/kernel"] = np.ascontiguousarray(
        t["out_proj.weight"].T.reshape(heads, d, e))
    out["attention_output/bias"] = t["out_proj.bias"].copy()
    return out


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF/Keras `padding="same"`: the total is split with the
    extra pixel *after*, so stride 2 on an even size pads (0, 1) for a 3-wide kernel.
    torch's symmetric `padding=1` is not the same function; pad with this explicitly."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
