from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import twinbench
from twinbench.results import Results

QUICK = dict(tasks=("digits",), epochs=1, latency_calls=5, latency_warmup=2, throughput_calls=2,
             warmup_steps=2, loadgen=False)


@pytest.fixture(autouse=True, scope="session")
def _private_history(tmp_path_factory: pytest.TempPathFactory):
    """Runs in tests store their history in a temporary database, never the user's, and
    may inject faults: TWINBENCH_FAULT acts only with TWINBENCH_TESTING=1."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TWINBENCH_DB", str(tmp_path_factory.mktemp("history") / "history.db"))
    mp.setenv("TWINBENCH_TESTING", "1")
    yield
    mp.undo()


# The compiled stacks (torch.compile; Keras-TF with XLA) spend 10-60 s compiling each of the
# three larger families' probe (forward, SGD and Adam steps). Their compile wrapper is the
# same for every family, and the uncompiled twin of each is checked on all five, so the
# suite checks the compiled ones on two (cnn, bilstm). `twinbench verify` checks all five.
COMPILED_FAMILIES = ("cnn", "bilstm")
COMPILED_STACKS = ("torch-compile", "keras-tensorflow-xla")


def probe_stacks(model: str) -> list[str]:
    from twinbench.stacks import STACKS

    return [s for s in STACKS if s not in COMPILED_STACKS or model in COMPILED_FAMILIES]


@pytest.fixture(scope="session")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """`verify` of every model on the stacks `probe_stacks` names: built from the canonical
    weights, probed, stepped with SGD and Adam (no timing). Two cells at a time, which
    exercises the concurrent path (on 2 cores it saves no time: the probes are CPU-bound)."""
    from twinbench.api import verify

    out = tmp_path_factory.mktemp("probe")
    results = verify(models=list(COMPILED_FAMILIES), out=out / "compiled", probe_jobs=2)
    others = ["textcnn", "transformer", "resnet"]
    rest = verify(models=others, stacks=tuple(probe_stacks(others[0])), out=out / "rest",
                  probe_jobs=2)
    results.cells += rest.cells
    return results


@pytest.fixture(scope="session")
def crash_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path]:
    """A short full run of two stacks where the torch cell is made to crash mid-training."""
    out = tmp_path_factory.mktemp("crash")
    mp = pytest.MonkeyPatch()
    mp.setenv("TWINBENCH_FAULT", "torch:crash@train")
    try:
        # LoadGen on, briefly: the contract test checks its fields
        results = twinbench.run(stacks=("torch", "keras-jax"), out=out, threads=1,
                                **{**QUICK, "loadgen": True}, loadgen_duration_s=0.2,
                                loadgen_server_steps=2)
    finally:
        mp.undo()
    return results, out


@pytest.fixture(scope="session", params=["jax", "tensorflow", "torch"])
def layer_results(request) -> dict[str, float]:
    """layer_twins.py (layer converters and recipe traps) in one child per Keras backend,
    shared by test_layers.py and test_recipe_traps.py: {check: difference}."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    pytest.importorskip(request.param)
    env = {**os.environ, "KERAS_BACKEND": request.param, "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, str(Path(__file__).with_name("layer_twins.py"))],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
