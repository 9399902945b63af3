"""Every layer type the byo converters handle, against the real layer, on every Keras
backend (one process per backend, all three at once, each running many cases:
tests/byo_layer_twins.py), and the converters' one-line refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")

BACKENDS = ("jax", "tensorflow", "torch")
TOLERANCE = 1e-5  # float32 forward, as the parity checks' forward_max_abs
# Where Keras itself computes another function on one backend (measured, Keras 3.15):
# the converters follow TF and JAX, so these must differ, and the day Keras changes, this
# test says so. On torch, an average pool with asymmetric "same" padding pads with zeros
# (F.pad) and then counts them (count_include_pad=False only covers torch's own padding).
KERAS_BACKEND_DIFFERS = {("torch", "keras:image:avgpool_same")}


@pytest.fixture(scope="module")
def layer_results() -> dict[str, dict]:
    """{backend: {case: value}}; the backends run concurrently (each is mostly Keras's
    per-op tracing, single-threaded)."""
    script = Path(__file__).with_name("byo_layer_twins.py")
    procs = {}
    for b in BACKENDS:
        if not _installed(b):
            continue
        env = {**os.environ, "KERAS_BACKEND": b, "TF_CPP_MIN_LOG_LEVEL": "3",
               "OMP_NUM_THREADS": "1"}
        args = [sys.executable, str(script)] + (["--refusals"] if b == "jax" else [])
        procs[b] = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    out = {}
    for b, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        out[b] = json.loads(stdout.strip().splitlines()[-1])
    return out


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_converted_layer_computes_the_same_function(layer_results, backend):
    if backend not in layer_results:
        pytest.skip(f"{backend} not installed")
    res = layer_results[backend]
    cases = {k: v for k, v in res.items() if k.split(":")[0] in ("keras", "torch")}
    assert len(cases) >= 35, sorted(cases)
    bad = {k: v for k, v in cases.items()
           if (v > TOLERANCE) != ((backend, k) in KERAS_BACKEND_DIFFERS)}
    assert not bad, bad


def test_refusals_name_the_class_and_its_path(layer_results):
    res = layer_results.get("jax") or pytest.skip("jax not installed")
    want = {"refusal:keras_lambda": ("Lambda at 'm/double'", "supported: InputLayer"),
            "refusal:keras_conv3d": ("Conv3D at 'm/conv3d", "Conv2D"),
            "refusal:keras_regularizer": ("Dense at", "kernel_regularizer"),
            "refusal:torch_conv3d": ("Conv3d at 'block.0'", "supported: Conv1d"),
            "refusal:torch_rnn_tanh": ("RNN at 'body.0'", "LSTM, GRU")}
    for key, parts in want.items():
        message = res[key]
        assert "\n" not in message and all(p in message for p in parts), (key, message)
