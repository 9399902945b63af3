"""Framework-free conversions between the canonical weight layout and PyTorch's.

The canonical layout is Keras's (channels-last): Dense kernel (in, out), Conv2D kernel
(kh, kw, in, out). PyTorch stores Linear weights as (out, in) and Conv2d weights as
(out, in, kh, kw). Each function here is an exact permutation (no arithmetic), so a
round trip is bit-identical.
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
