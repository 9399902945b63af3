"""Keras exporters, every backend. Imported only in an export process.

All but `.keras` go through `Model.export(format=...)`, which picks the tool per backend
(read from Keras 3.15's keras/src/export): ONNX via tf2onnx on TensorFlow, jax2onnx on JAX,
`torch.onnx.export` on PyTorch; SavedModel via jax2tf on JAX; LiteRT via TensorFlow's
converter on TensorFlow, litert-torch on PyTorch; OpenVINO via `openvino.convert_model`.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from twinbench.stacks.keras_weights import load_canonical

ONNX_TOOL = {"tensorflow": "tf2onnx", "jax": "jax2onnx",
             "torch": "torch.onnx.export (TorchScript exporter: the batch is dynamic)"}
LITERT_TOOL = {"tensorflow": "tf.lite.TFLiteConverter", "torch": "litert_torch.convert"}


def signature(x: np.ndarray) -> list:
    """A dynamic batch, and int32 ids (Keras's Embedding casts ids to int32 on every
    backend; int64 is not a JAX default)."""
    dtype = "int32" if np.issubdtype(x.dtype, np.integer) else str(x.dtype)
    return [keras.InputSpec(shape=(None, *x.shape[1:]), dtype=dtype)]


def _onnx_opset(path: Path) -> int | None:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)


def inference_copy(stack) -> keras.Model:
    """A fresh, uncompiled twin holding the trained weights. The trained model's optimizer
    on TensorFlow is the harness's densifying subclass of Adam (keras_backends/tensorflow.py),
    which a reader of the file would not have; deployment needs no optimizer anyway."""
    copy = stack.family.build(stack.spec, stack.seed)
    load_canonical(copy, stack.export_weights(), stack.names)
    return copy


def export(stack, fmt: str, path: Path, x: np.ndarray) -> dict:
    model, backend = stack.model, keras.backend.backend()
    sig = signature(x)
    meta: dict = {"input_dtype": sig[0].dtype}
    if fmt == "keras":
        inference_copy(stack).save(str(path))
        return {**meta, "exporter": "Model.save of an uncompiled copy (config + weights, "
                "no optimizer)"}
    keras_format = {"tf-saved-model": "tf_saved_model", "torch-export": "torch"}.get(fmt, fmt)
    model.export(str(path), format=keras_format, input_signature=sig, verbose=False)
    meta["exporter"] = f"Model.export(format={keras_format!r})"
    if fmt == "onnx":
        meta.update(exporter=f"{meta['exporter']} via {ONNX_TOOL.get(backend, '?')}",
                    opset=_onnx_opset(path))
    elif fmt == "litert":
        meta["exporter"] += f" via {LITERT_TOOL.get(backend, '?')}"
    elif fmt == "tf-saved-model" and backend == "jax":
        meta["exporter"] += " via jax2tf"
    return meta
