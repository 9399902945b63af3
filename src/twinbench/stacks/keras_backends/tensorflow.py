"""Keras on TensorFlow."""

from __future__ import annotations

import os  # noqa: F401
from typing import Callable

import numpy as np
import tensorflow as tf


def configure_threads(threads: int) -> dict[str, object]:
    # Must run before TensorFlow's first op, or it raises (and the pools keep defaults).
    # Settable before the runtime starts only: a second cell in the same process (parity
    # probes run one after another) finds them set already.
    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if tf.config.threading.get_inter_op_parallelism_threads() != threads:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return {"tf.intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf.inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def grads(model, loss_fn, x: np.ndarray, y: np.ndarray):
    with tf.GradientTape() as tape:
        logits = model(x, training=False)
        loss = loss_fn(y, logits)
    g = tape.gradient(loss, model.trainable_variables)
    # Embedding gradients come back sparse (IndexedSlices): densify for comparison.
    return logits.numpy(), float(loss), [tf.convert_to_tensor(t).numpy() for t in g]


def compiled_predict(model, jit_compile: bool) -> Callable[[np.ndarray], np.ndarray]:
    """A `tf.function` around the model, compiled the same way as the stack's training."""
    fn = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile,
                     reduce_retracing=True)
    return lambda xb: fn(xb).numpy()


def versions() -> dict[str, str]:
    return {"tensorflow": tf.__version__}


def dense_gradients(optimizer_cls: type) -> type:
    """Keras's optimizers on TensorFlow take an Embedding's gradient as IndexedSlices and
    square each *occurrence* separately in Adam's second moment (sum of g_i^2 for a token
    seen twice in a batch, where dense Adam uses (sum of g_i)^2). PyTorch, JAX and
    Keras's other backends use the dense gradient. `twinbench verify` caught this
    (adam_update_rel ~0.3 on the embedding): densify first, so every stack runs the same
    Adam."""

    class Dense(optimizer_cls):  # type: ignore[misc, valid-type]
        def apply(self, grads, trainable_variables=None):
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                     for g in grads]
            return super().apply(grads, trainable_variables)

    Dense.__name__ = optimizer_cls.__name__
    return Dense


def device_info(device: str) -> dict[str, object]:
    """TF's visible GPUs, with memory growth on (set before the first op, so TF does not
    grab the whole GPU and the peak reflects the model)."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        raise RuntimeError("--device cuda: TensorFlow sees no GPU (tensorflow-cpu, or no "
                           "CUDA build)")
    for g in gpus:
        tf.config.experimental.set_memory_growth(g, True)
    return {"device": gpus[0].name if gpus else "CPU", "allocator": {"memory_growth": True}}


def peak_device_memory_mb() -> float | None:
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
