"""Keras on PyTorch."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch


def configure_threads(threads: int) -> dict[str, object]:
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:  # settable once per process
        torch.set_num_interop_threads(threads)
    return {"torch.num_threads": torch.get_num_threads(),
            "torch.num_interop_threads": torch.get_num_interop_threads()}


def grads(model, loss_fn, x: np.ndarray, y: np.ndarray):
    for v in model.trainable_variables:
        v.value.grad = None
    logits = model(x, training=False)
    loss = loss_fn(y, logits)
    loss.backward()
    return (logits.detach().cpu().numpy(), float(loss),
            [v.value.grad.detach().cpu().numpy() for v in model.trainable_variables])


def compiled_predict(model, jit_compile: bool) -> Callable[[np.ndarray], np.ndarray]:
    """`torch.compile` of the Keras model, called under `torch.no_grad`."""
    fn = torch.compile(model)

    def run(xb: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.from_numpy(xb), training=False).cpu().numpy()

    return run


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def dense_gradients(optimizer_cls: type) -> type:
    """Gradients are already dense on this backend (see tensorflow.py for why it matters)."""
    return optimizer_cls


def device_info(device: str) -> dict[str, object]:
    """Keras's torch backend places tensors on CUDA whenever torch sees a GPU."""
    import keras

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device")
    return {"device": str(keras.src.backend.torch.core.get_device()),
            "allocator": {"PYTORCH_CUDA_ALLOC_CONF":
                          os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "(default)")}}


def peak_device_memory_mb() -> float | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20
