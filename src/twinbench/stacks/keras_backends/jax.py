"""Keras on JAX. JAX dispatches asynchronously: every function here returns host numpy
(`np.asarray` blocks until the device buffer is ready)."""

from __future__ import annotations

import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def configure_threads(threads: int) -> dict[str, object]:
    # JAX has no reliable thread knob; the cell process is pinned to `threads` CPUs with
    # sched_setaffinity (and OMP_NUM_THREADS) before any import, which XLA's pool follows.
    return {"jax.threads": "pinned by sched_setaffinity",
            "affinity": len(os.sched_getaffinity(0)),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def _state(model):
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables])


def grads(model, loss_fn, x: np.ndarray, y: np.ndarray):
    tv, ntv = _state(model)

    def loss_of(tv):
        logits, _ = model.stateless_call(tv, ntv, x, training=False)
        return loss_fn(y, logits), logits

    (loss, logits), g = jax.value_and_grad(loss_of, has_aux=True)(tv)
    return np.asarray(logits), float(loss), [np.asarray(t) for t in g]


def compiled_predict(model, jit_compile: bool) -> Callable[[np.ndarray], np.ndarray]:
    """`jax.jit` of the stateless forward pass, with a copy of the current weights bound
    (Keras's JAX trainer donates its state buffers, so the originals can be deleted)."""
    tv, ntv = jax.tree.map(jnp.copy, _state(model))
    fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
    return lambda xb: np.asarray(fn(tv, ntv, xb))


def versions() -> dict[str, str]:
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}


def dense_gradients(optimizer_cls: type) -> type:
    """Gradients are already dense on this backend (see tensorflow.py for why it matters)."""
    return optimizer_cls


def device_info(device: str) -> dict[str, object]:
    """The device JAX computes on; raises if `device` is "cuda" and JAX sees no GPU."""
    devs = jax.devices()
    if device == "cuda" and devs[0].platform != "gpu":
        raise RuntimeError(f"--device cuda: JAX sees no GPU (devices: {devs})")
    return {"device": str(devs[0]), "platform": devs[0].platform,
            "allocator": {"XLA_PYTHON_CLIENT_PREALLOCATE":
                          os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true (default)")}}


def peak_device_memory_mb() -> float | None:
    """JAX's own allocator statistics (not NVML); None on CPU."""
    dev = jax.devices()[0]
    if dev.platform != "gpu":
        return None
    return (dev.memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**20
