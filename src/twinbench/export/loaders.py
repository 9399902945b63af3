"""One loader per runtime. Imported only in a reload process; each function imports its
runtime when called, so the process holds that runtime and nothing else.

A loader returns an inference function (numpy batch in, host numpy logits out) and the
input dtype the artifact declares (None where the runtime does not expose it), plus the
runtime settings it applied. Thread counts are set explicitly to the run's `threads`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

InferFn = Callable[[np.ndarray], np.ndarray]
Loaded = tuple[InferFn, str | None, dict[str, Any]]

IMPORTS = {"onnxruntime": "onnxruntime", "tf-saved-model": "tensorflow",
           "litert": "ai_edge_litert.interpreter", "openvino": "openvino",
           "torch-jit": "torch", "torch-export": "torch", "torch-state": "torch",
           "torch-aoti": "torch", "keras": "keras"}
ORT_TYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(int32)": "int32"}


def host(out: Any) -> np.ndarray:
    """The single logits array of whatever a runtime returns (tensor, list, dict)."""
    if isinstance(out, dict):
        (out,) = out.values()
    elif isinstance(out, (list, tuple)):
        out = out[0]
    return np.array(out.numpy() if hasattr(out, "numpy") else out, copy=True)


def onnxruntime(path: Path, job) -> Loaded:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = job.run.threads, 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    settings = {"providers": sess.get_providers(), "intra_op_threads": job.run.threads,
                "graph_optimization": str(opts.graph_optimization_level)}
    return (lambda x: sess.run(None, {inp.name: x})[0]), ORT_TYPES.get(inp.type), settings


def tf_saved_model(path: Path, job) -> Loaded:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(job.run.threads)
    tf.config.threading.set_inter_op_parallelism_threads(job.run.threads)
    loaded = tf.saved_model.load(str(path))  # held: its variables die with it

    def run(x: np.ndarray) -> np.ndarray:
        return host(loaded.serve(tf.constant(x)))  # Keras's export endpoint

    return run, None, {"endpoint": "serve"}


def litert(path: Path, job) -> Loaded:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=job.run.threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    shape: list = [None]

    def run(x: np.ndarray) -> np.ndarray:
        if shape[0] != x.shape:  # the batch is dynamic (-1 in shape_signature)
            it.resize_tensor_input(inp["index"], x.shape)
            it.allocate_tensors()
            shape[0] = x.shape
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(out["index"]).copy()

    one = (1, *inp["shape"][1:])
    run(np.zeros(one, dtype=inp["dtype"]))  # allocates, and fails here if an op is missing
    return run, np.dtype(inp["dtype"]).name, {"num_threads": job.run.threads}


def openvino(path: Path, job) -> Loaded:
    import openvino as ov

    core = ov.Core()
    # f32 explicitly: on CPUs with bf16/AMX OpenVINO would otherwise pick bf16.
    config = {"INFERENCE_NUM_THREADS": job.run.threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    req = compiled.create_infer_request()
    declared = compiled.input(0).get_element_type().to_dtype().name
    settings = {k: str(compiled.get_property(k)) for k in config}
    return (lambda x: host(req.infer({0: x})[compiled.output(0)])), declared, settings


def _torch_fn(module) -> InferFn:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return host(module(torch.from_numpy(x)))

    return run


def _torch_threads(job) -> dict[str, Any]:
    import torch

    torch.set_num_threads(job.run.threads)
    return {"torch.num_threads": torch.get_num_threads()}


def torch_jit(path: Path, job) -> Loaded:
    import torch

    settings = _torch_threads(job)
    return _torch_fn(torch.jit.load(str(path)).eval()), None, settings


def torch_export(path: Path, job) -> Loaded:
    import torch

    settings = _torch_threads(job)
    return _torch_fn(torch.export.load(str(path)).module()), None, settings


def torch_aoti(path: Path, job) -> Loaded:
    import torch

    settings = _torch_threads(job)
    return _torch_fn(torch._inductor.aoti_load_package(str(path))), None, settings


def _spec(job):
    from twinbench.data.dataset import Dataset
    from twinbench.models import spec_for as model_spec_for

    return model_spec_for(job.model, Dataset.load(job.data_path))


def torch_state(path: Path, job) -> Loaded:
    """weights_only=True: the unpickler accepts tensors and plain containers only, so a
    state file cannot run code (tests/test_export.py feeds it a malicious pickle)."""
    import torch

    from twinbench.models import twin_module

    settings = _torch_threads(job)
    state = torch.load(str(path), weights_only=True)
    model = twin_module(job.model, "torch").build(_spec(job), 0)
    model.load_state_dict(state)
    return _torch_fn(model.eval()), None, {**settings, "weights_only": True}


def keras(path: Path, job) -> Loaded:
    """safe_mode=True refuses lambdas and other arbitrary code in the archive. A subclassed
    model still needs its class: importing the twin registers it (its code, not the file's)."""
    import keras as k

    from twinbench.models import twin_module

    twin_module(job.model, "keras")
    model = k.saving.load_model(str(path), safe_mode=True)
    return (lambda x: host(model.predict_on_batch(x))), None, {
        "safe_mode": True, "path": "predict_on_batch", "backend": k.backend.backend()}


LOADERS: dict[str, Callable[[Path, Any], Loaded]] = {
    "onnxruntime": onnxruntime, "tf-saved-model": tf_saved_model, "litert": litert,
    "openvino": openvino, "torch-jit": torch_jit, "torch-export": torch_export,
    "torch-state": torch_state, "torch-aoti": torch_aoti, "keras": keras,
}
