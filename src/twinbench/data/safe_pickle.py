"""Load CIFAR-10's python pickle batches without executing arbitrary pickle code.

A pickle is a small program: any `GLOBAL`/`STACK_GLOBAL` opcode names a callable that the
loader imports and calls (`os.system`, `builtins.eval`, ...). `RestrictedUnpickler`
resolves only the handful of names that a CIFAR batch needs and refuses every other one
before anything is called. The containers themselves (dict, list, tuple, bytes, str,
int, float, bool, None) are built by dedicated opcodes and need no global.

What a batch (written by Python 2's cPickle, protocol 2) refers to:
- `numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`: the `data` array
  (numpy >= 2 writes `numpy._core.multiarray` instead; both map to the same function).
- `_codecs.encode`: only in protocol-2 pickles written by Python 3, which store bytes as
  `_codecs.encode(str, "latin1")`; restricted here to the latin-1 codec.
Object arrays are refused too: their element list would be arbitrary pickled objects.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list (message is one line)."""


def _reconstruct() -> Callable[..., Any]:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct as fn
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


def _dtype(spec: object, align: bool = False, copy: bool = False) -> np.dtype:
    dt = np.dtype(spec, align, copy)
    if dt.hasobject:
        raise UnsafePickleError(f"object dtype {dt!r} refused: its elements would be "
                                "arbitrary pickled objects")
    return dt


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with {encoding!r} refused; allowed: latin1")
    return text.encode("latin1")


def _allowed() -> dict[tuple[str, str], Callable[..., Any]]:
    rec = _reconstruct()
    return {
        ("numpy.core.multiarray", "_reconstruct"): rec,
        ("numpy._core.multiarray", "_reconstruct"): rec,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` resolves only the allow-list above."""

    def __init__(self, file: io.BufferedIOBase, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            valid = ", ".join(f"{m}.{n}" for m, n in self._allowed)
            raise UnsafePickleError(f"pickle refers to {module}.{name}, which is not allowed; "
                                    f"allowed: {valid}") from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle `data` (Python 2 strings come back as bytes, as CIFAR's keys are)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
