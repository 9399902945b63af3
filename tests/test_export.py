"""Portability matrix: export, reload in a fresh process, compare; failures are results;
loaders refuse code in the file (malicious pickle, Keras Lambda)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from twinbench.api_export import attach, export_matrix, verdict
from twinbench.config import RunConfig
from twinbench.export import foreign
from twinbench.export.formats import formats_for, resolve_formats
from twinbench.export.jobs import ReloadJob, first_line
from twinbench.export.spawn import child_env, spawn
from twinbench.report.export_table import export_table
from twinbench.results import Cell, Results
from twinbench.stacks import STACKS

FAST = {"threads": 1, "latency_calls": 5, "latency_warmup": 2, "latency_budget_s": 0.2,
        "throughput_calls": 2, "warmup_steps": 2}


@pytest.fixture(scope="module")
def torch_cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path]:
    """torch cnn, trained one epoch, exported to ONNX (ok), TorchScript (ok) and LiteRT
    (litert-torch cannot be installed beside torch 2.13, so its export fails). The ONNX file
    is also reloaded in JavaScript and Java, the TorchScript one in C++, where installed."""
    out = tmp_path_factory.mktemp("export")
    results = export_matrix(models=("cnn",), stacks=("torch",), out=out,
                            export_formats=("onnx", "torchscript-trace", "litert"), **FAST)
    return results, out


def by_format(cell: Cell) -> dict[str, dict]:
    """Each format's entry in its Python runtime."""
    return {e["format"]: e for e in cell.portability if e["language"] == "Python"}


def by_runtime(cell: Cell) -> dict[str, dict]:
    return {e["runtime"]: e for e in cell.portability}


def test_torch_onnx_reloads_in_onnxruntime_with_the_source_outputs(torch_cnn):
    results, out = torch_cnn
    (cell,) = results.cells
    assert cell.status == "ok" and cell.params == 34_826
    onnx = by_format(cell)["onnx"]
    assert onnx["status"] == "ok" and onnx["runtime"] == "onnxruntime"
    assert onnx["max_abs_diff"] <= 1e-4 and onnx["batch_n"]["max_abs_diff"] <= 1e-4
    assert isinstance(onnx["opset"], int) and "dynamo=True" in onnx["exporter"]
    assert onnx["size_bytes"] == (out / onnx["artifact"]).stat().st_size
    assert onnx["latency_b1_ms"]["p50"] > 0 and onnx["load_s"] > 0
    assert {"torch", "onnxscript", "onnxruntime"} <= set(onnx["versions"])
    assert onnx["frameworks_loaded"] == []  # onnxruntime ran without torch in its process
    # The recorded diff is the real one: recompute it here from the saved files.
    import onnxruntime as ort

    cell_dir = out / "export" / "digits__digits__cnn__torch"
    x, source = np.load(cell_dir / "input.npy"), np.load(cell_dir / "source.npy")
    sess = ort.InferenceSession(str(out / onnx["artifact"]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert np.max(np.abs(got - source)) == pytest.approx(onnx["batch_n"]["max_abs_diff"])
    assert x.shape == (32, 1, 28, 28)  # torch layout, as the source twin saw it


@pytest.mark.skipif(find_spec("litert_torch") is not None, reason="litert-torch installed")
def test_a_failed_export_is_recorded_with_its_reason_and_versions(torch_cnn):
    results, out = torch_cnn
    litert = by_format(results.cells[0])["litert"]
    assert litert["status"] == "failed" and litert["stage"] == "export"
    assert "No module named 'litert_torch'" in litert["reason"]
    assert "requires torch<2.13" in litert["reason"]  # why it is not in the extra
    assert litert["versions"]["torch"] and litert["versions"]["litert-torch"] is None
    stored = Results.read(out / "export.json")
    assert by_format(stored.cells[0])["litert"]["reason"] == litert["reason"]
    table = export_table(stored)
    # the source row; onnx in Python, JavaScript and Java; torchscript in Python and C++;
    # litert (its export failed: one row)
    assert table.row_count == 7


def test_a_crashing_exporter_fails_its_format_and_keeps_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBENCH_EXPORT_FAULT", "torch-state")
    monkeypatch.chdir(tmp_path)  # a relative --out, as the CLI's default runs/<run id>
    results = export_matrix(models=("cnn",), stacks=("torch",), out=Path("rel"), export_epochs=0,
                            export_formats=("torchscript-trace", "torch-state", "litert"),
                            **FAST)
    (cell,) = results.cells
    entries = by_format(cell)
    assert cell.status == "failed" and "SIGABRT" in cell.reason
    assert entries["torchscript-trace"]["status"] == "ok"  # exported before the crash
    assert entries["torchscript-trace"]["max_abs_diff"] <= 1e-4
    assert (tmp_path / "rel" / entries["torchscript-trace"]["artifact"]).is_file()
    assert entries["torch-state"]["reason"].startswith("export process died while exporting")
    assert entries["litert"]["reason"].startswith("not attempted")


def _reload(tmp_path: Path, runtime: str, artifact: Path, model: str = "cnn") -> dict:
    """Run the reload process on one artifact (input and source outputs are dummies)."""
    np.save(tmp_path / "input.npy", np.zeros((2, 1, 28, 28), np.float32))
    np.save(tmp_path / "source.npy", np.zeros((2, 10), np.float32))
    job = ReloadJob(format="x", runtime=runtime, artifact=artifact,
                    input_path=tmp_path / "input.npy", source_path=tmp_path / "source.npy",
                    input_dtype="float32", model=model, data_path=tmp_path / "none.npz",
                    keras_backend="jax" if runtime == "keras" else None,
                    run=RunConfig(**FAST), cpus=(0,), result_path=tmp_path / "result.json")
    job_path = tmp_path / "job.json"
    job_path.write_text(job.model_dump_json())
    why, _, tail = spawn("twinbench.export.reload", job_path,
                         child_env(1, 0, job.keras_backend), 120)
    assert why is None, tail
    return json.loads(job.result_path.read_text())


def test_a_corrupt_artifact_fails_its_reload_with_the_runtime_version(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not a protobuf")
    result = _reload(tmp_path, "onnxruntime", bad)
    assert result["status"] == "failed" and result["failed_at"] == "load"
    assert "ONNXRuntimeError" in result["reason"] and "\n" not in result["reason"]
    assert result["runtime_versions"]["onnxruntime"]


class Touch:
    """A pickle that runs `touch <marker>` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_by_the_torch_state_loader(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "state_dict.pt"
    evil.write_bytes(pickle.dumps(Touch(marker)))
    # Control: a plain unpickler runs the payload (so the refusal below means something).
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(evil)!r}, 'rb'))"],
                   check=True)
    assert marker.exists()
    marker.unlink()
    result = _reload(tmp_path, "torch-state", evil)
    assert result["status"] == "failed" and result["failed_at"] == "load"
    assert "Weights only load failed" in result["reason"]
    assert not marker.exists()


LAMBDA_MODEL = """
import keras, sys
touch = "__import__('pathlib').Path(%r).touch()"
layer = keras.layers.Lambda(eval("lambda x: (" + touch + ", x)[1]"))
model = keras.Sequential([keras.Input((2,)), layer])
model.save(sys.argv[1])
"""


def test_a_keras_file_with_code_is_refused_in_safe_mode(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.keras"
    subprocess.run([sys.executable, "-c", LAMBDA_MODEL % str(marker), str(path)], check=True,
                   env=child_env(1, 0, "jax"), capture_output=True)
    assert marker.exists()  # the lambda really runs code: building the model ran it
    marker.unlink()
    result = _reload(tmp_path, "keras", path)
    assert result["status"] == "failed" and result["failed_at"] == "load"
    assert "Lambda" in result["reason"] and "safe_mode" in result["error"]
    assert not marker.exists()


def test_each_stack_offers_its_frameworks_formats():
    names = {s: [f.name for f in formats_for(STACKS[s])] for s in STACKS}
    assert names["torch"] == names["torch-compile"]
    assert {"onnx", "torch-export", "torch-state", "torchscript-trace"} <= set(names["torch"])
    assert {"keras", "tf-saved-model", "onnx", "litert", "openvino"} <= set(names["keras-jax"])
    assert "torch-export" in names["keras-torch"] and "torch-export" not in names["keras-jax"]
    with pytest.raises(ValueError, match="valid: onnx, onnx-torchscript"):
        resolve_formats(["onnnx"])


def test_the_reason_is_one_line_and_keeps_a_buried_cause():
    e = RuntimeError("Check 'false' failed at x.cpp:151:\nFrontEnd API failed:\nSummary:\n"
                     "-- No conversion rule found for operations: TensorList\nSee docs")
    line = first_line(e)
    assert "\n" not in line and line.startswith("RuntimeError: Check 'false' failed")
    assert line.endswith("-- No conversion rule found for operations: TensorList")
    assert first_line(ValueError("\x1b[96mcoloured\x1b[0m")) == "ValueError: coloured"
    keras = TypeError("Exception encountered when calling TextCNN.call().\n\nbad arange\n\n"
                      "Arguments received by TextCNN.call():\n  ids=...")
    assert first_line(keras).endswith("TextCNN.call(). bad arange")


@pytest.mark.parametrize("b1, batch_n, status", [
    (1e-6, {"max_abs_diff": 2e-6}, "ok"),
    (1e-6, {"error": "static batch"}, "ok"),
    (3e-3, {"max_abs_diff": 1e-6}, "mismatch"),
    (1e-6, {"max_abs_diff": 3e-3}, "mismatch"),
    (float("nan"), {"error": "static batch"}, "mismatch"),
])
def test_outputs_beyond_tolerance_are_a_mismatch_not_ok(b1, batch_n, status):
    result = verdict({"status": "ok", "max_abs_diff": b1, "batch_n": batch_n}, 1e-4)
    assert result["status"] == status
    assert ("tolerance 0.0001" in result.get("reason", "")) == (status == "mismatch")


def test_run_export_attaches_each_twins_entries_to_its_timed_cell():
    key = {"task": "digits", "dataset": "digits", "model": "cnn"}
    timed = Results(run_id="r", environment={}, config={}, cells=[
        Cell(**key, stack="torch", status="ok"), Cell(**key, stack="keras-jax", status="ok")])
    exported = Results(run_id="r", environment={}, config={}, cells=[
        Cell(**key, stack="torch", status="ok", portability=[{"format": "onnx"}]),
        Cell(**key, stack="keras-jax", status="failed", reason="export timed out",
             portability=[])])
    attach(timed, exported)
    assert timed.cells[0].portability == [{"format": "onnx"}]
    assert timed.cells[1].portability_error == "export timed out"
    assert "portability" in timed.model_dump()["cells"][0]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinbench.cli", *args], check=False,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, needle", [
    (["export", "--stacks", "nope"], "valid: torch, torch-compile, keras-tensorflow"),
    (["export", "--formats", "nope"], "valid: onnx, onnx-torchscript, torchscript-trace"),
    (["export", "--models", "nope"], "valid: cnn, bilstm, textcnn, transformer"),
    (["export", "--epochs", "-1"], "--epochs"),
])
def test_bad_export_input_is_one_line_and_exit_2(args, needle, tmp_path):
    r = cli(*args, "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


# Runtimes in other languages (runtimes/, `make setup-runtimes`): one real round trip each,
# on the fixture's artifacts; skipped where the harness is not installed here.
def needs(runtime: str):
    missing = foreign.unavailable(runtime)
    return pytest.mark.skipif(missing is not None, reason=f"{runtime}: {missing}")


@pytest.mark.parametrize("runtime, fmt, language", [
    pytest.param("onnxruntime-node", "onnx", "JavaScript", marks=needs("onnxruntime-node")),
    pytest.param("onnxruntime-java", "onnx", "Java", marks=needs("onnxruntime-java")),
    pytest.param("libtorch", "torchscript-trace", "C++", marks=needs("libtorch")),
])
def test_the_artifact_reloads_in_another_language_with_the_source_outputs(
        torch_cnn, runtime, fmt, language):
    results, out = torch_cnn
    e = by_runtime(results.cells[0])[runtime]
    assert e["format"] == fmt and e["language"] == language and e["status"] == "ok", e
    assert e["max_abs_diff"] <= 1e-4 and e["batch_n"]["max_abs_diff"] <= 1e-4
    lat = e["latency_b1_ms"]
    assert lat["timed_by"] == f"the {language} harness" and 0 < lat["p50"] <= lat["p99"]
    assert lat["calls"] >= 1 and e["load_s"] > 0
    assert e["frameworks_loaded"] == []  # the reload process only ran the harness
    # The recorded diff is the real one: recompute it from the harness's own output.
    cell_dir = out / "export" / "digits__digits__cnn__torch"
    source = np.load(cell_dir / "source.npy")
    got = np.fromfile(cell_dir / fmt / runtime / "batch1.bin", "<f4").reshape(source.shape)
    assert np.max(np.abs(got - source)) == pytest.approx(e["max_abs_diff"])
    assert e["versions"][{"JavaScript": "onnxruntime-node", "Java": "onnxruntime-java",
                          "C++": "libtorch"}[language]]


@pytest.mark.parametrize("runtime, name", [
    pytest.param("onnxruntime-node", "model.onnx", marks=needs("onnxruntime-node")),
    pytest.param("onnxruntime-java", "model.onnx", marks=needs("onnxruntime-java")),
    pytest.param("libtorch", "model.pt", marks=needs("libtorch")),
    pytest.param("libtorch-aoti", "model.pt2", marks=needs("libtorch-aoti")),
])
def test_a_corrupt_artifact_fails_in_each_harness_with_one_line(tmp_path, runtime, name):
    bad = tmp_path / name
    bad.write_bytes(b"this is not a model")
    result = _reload(tmp_path, runtime, bad)
    assert result["status"] == "failed" and result["failed_at"] == "load", result
    reason = result["reason"]
    assert reason and "\n" not in reason and len(reason) <= 400
    assert "Traceback" not in reason and " at " not in reason  # no Python, JS or Java trace
    assert result["runtime_versions"]  # the harness said which runtime refused it


def test_a_harness_not_installed_is_skipped_with_its_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBENCH_RUNTIMES", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # node and java where Debian puts them
    assert "make setup-runtimes" in foreign.unavailable("libtorch")
    (tmp_path / ".setup").mkdir()
    (tmp_path / ".setup" / "java.txt").write_text("Could not transfer artifact: Unknown host\n")
    why = foreign.unavailable("onnxruntime-java")
    installed_java = ("not installed: run `make setup-runtimes` (its last run here failed: "
                      "Could not transfer")
    assert why.startswith((installed_java, "java not found on PATH"))
    assert "tensorflowjs" in foreign.unavailable("tfjs")  # never checked by this version
    monkeypatch.setenv("PATH", str(tmp_path))
    assert foreign.unavailable("onnxruntime-node").startswith("node not found on PATH")
