"""The per-cell process runner: crashes, time-outs and missing frameworks never stop a run."""

import subprocess
import sys

import pytest

import twinbench
from twinbench.api import skipped_cell
from twinbench.results import Results

from conftest import QUICK


def test_a_crashing_cell_is_failed_and_the_others_complete(crash_run):
    results, out = crash_run
    torch_cell, jax_cell = results.cells
    assert torch_cell.status == "failed"
    assert "SIGABRT" in torch_cell.reason
    assert "injected fault 'crash'" in torch_cell.stderr_tail
    assert jax_cell.status == "ok" and jax_cell.params == 34_826
    stored = Results.read(out / "results.json")
    assert [c.status for c in stored.cells] == ["failed", "ok"]
    assert stored.cells[1].parity["pass"] is True  # quick checks ran before timing
    assert stored.cells[1].parity["checks_run"][0] == "forward_max_abs"


def test_full_cell_reports_every_contract_metric(crash_run):
    cell = crash_run[0].cells[1]
    m = cell.metrics
    assert 0.0 <= m["accuracy"] <= 1.0
    assert set(m["train_samples_per_s"]) >= {"median", "iqr"}
    assert m["first_step_s"] > m["first_step_from_build_s"] > 0
    assert m["first_step_s"] < cell.wall_s  # counted from this cell's own spawn
    # ... less the matmul-peak reading at the cell's start, which is not start-up
    assert m["flops"]["start_reading_s"] > 0
    assert m["first_step_s"] + m["flops"]["start_reading_s"] < cell.wall_s
    assert cell.node["hardware_id"] and cell.node["cpu_model"]  # grouping by hardware
    # where the cell's time went, phase by phase, in the order the cell ran them
    phases = m["phase_s"]
    assert list(phases) == ["start", "import", "build", "train", "latency", "throughput",
                            "loadgen"]
    assert all(v >= 0 for v in phases.values()) and phases["train"] > 0
    assert sum(phases.values()) <= cell.wall_s
    assert set(m["latency_b1_ms"]) >= {"p50", "p90", "p99", "path"}
    paths = m["latency_b1_by_path"]
    assert set(paths) == {"predict", "__call__", "predict_on_batch", "compiled"}
    assert [k for k, v in paths.items() if v["idiomatic"]] == ["predict"]
    fastest = m["latency_b1_ms"]["path"]
    assert m["latency_b1_ms"]["p50"] == min(v["p50"] for v in paths.values() if "p50" in v)
    assert paths[fastest]["p50"] == m["latency_b1_ms"]["p50"]
    assert m["infer_samples_per_s_b256"] > 0 and m["peak_rss_mb"] > 0
    assert cell.settings["affinity"] == [0] and cell.settings["threads"] == 1
    assert len(m["epochs"]) == 1
    lg = m["loadgen"]  # MLPerf LoadGen phase, with LoadGen's own verdicts
    assert lg["single_stream"]["p90_ms"] > 0 and lg["single_stream"]["verdict"] in ("VALID",
                                                                                   "INVALID")
    assert lg["server"]["bound_ms"] == 10.0 and len(lg["server"]["bisection"]) == 2
    assert lg["offline"]["samples_per_s"] > 0
    # the query is sized from twice the measured b256 pilot (a slower pilot ends it early)
    assert lg["offline"]["expected_qps_hint"] == pytest.approx(2 * m["infer_samples_per_s_b256"])
    # by hand: conv1 2*26*26*9*1*32 = 389,376; conv2 2*11*11*9*32*64 = 4,460,544;
    # dense 2*1600*10 = 32,000
    assert m["flops"]["forward_per_sample"] == 4_881_920
    assert 0 < m["flops"]["train_pct_peak"] and m["flops"]["peak_gflops_s"] > 0
    # two peak readings (cell start, after the timed work), the higher kept
    readings = m["flops"]["peak_readings_gflops_s"]
    assert len(readings) == 2 and m["flops"]["peak_gflops_s"] == max(readings)
    assert len(m["samples"]["train_samples_per_s"]) == m["train_samples_per_s"]["n"]


# A cell that hangs mid-training is killed at --cell-timeout: tests/test_faults.py.


def test_missing_framework_is_skipped_with_the_pip_extra(monkeypatch):
    monkeypatch.setattr("twinbench.runner.prepare.missing_modules", lambda info: ["tensorflow"])
    cell = skipped_cell("digits", "keras-tensorflow")
    assert cell.status == "skipped"
    assert "pip install 'twinbench[tensorflow]'" in cell.reason


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinbench.cli", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, needle", [
    (["run", "--stacks", "nope"], "valid: torch, torch-compile, keras-tensorflow"),
    (["run", "--tasks", "nope"], "valid: digits"),
    (["run", "--epochs", "0"], "--epochs"),
    (["run", "--tasks", "text", "--dataset", "nope"], "valid: digits, synthetic-sentiment, sms"),
    (["run", "--tasks", "text", "--models", "nope"], "valid: cnn, bilstm, textcnn, transformer"),
    (["run", "--tasks", "digits", "--models", "bilstm"], "valid: cnn"),
    (["run", "--tasks", "text", "--dataset", "digits"], "does not fit task 'text'"),
    (["verify", "--models", "nope"], "valid: cnn, bilstm"),
    (["run", "--holdout", "1.5"], "--holdout"),
    (["run", "--tasks", "[/x]"], "unknown task '[/x]'"),  # text, never rich markup
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    r = cli(*args, "--out", str(tmp_path))
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_corrupt_data_file_stops_the_run_naming_the_file(tmp_path):
    data = tmp_path / "trec"
    data.mkdir()
    (data / "train_5500.label").write_text("NUM:dist How far ?\n")
    (data / "TREC_10.label").write_text("NUM:dist How far ?\n")
    r = cli("run", "--tasks", "text", "--dataset", "trec", "--data-dir", str(data),
            "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "train_5500.label: sha256" in r.stderr and "does not match" in r.stderr
    assert not (tmp_path / "out" / "cells").exists()  # no cell ran on partial data


def test_console_table_is_built_from_the_results(crash_run):
    from rich.console import Console

    from twinbench.report.console import summary_table

    console = Console(width=400, record=True)
    console.print(summary_table(crash_run[0]))
    text = console.export_text()
    m = crash_run[0].cells[1].metrics
    assert f"{m['accuracy']:.3f}" in text and f"{m['latency_b1_ms']['p50']:.2f}" in text
    assert "SIGABRT" in text


def test_stacks_command_lists_all_six_with_versions():
    r = cli("stacks")
    assert r.returncode == 0
    for name in ("torch-compile", "keras-tensorflow-xla", "keras-jax", "keras-torch"):
        assert name in r.stdout
    assert "installed" in r.stdout


def test_results_to_dataframe_flattens_metrics(crash_run):
    pytest.importorskip("pandas")
    df = crash_run[0].to_dataframe()
    assert list(df["stack"]) == ["torch", "keras-jax"]
    assert df.loc[1, "latency_b1_ms.p50"] > 0 and df.loc[1, "params"] == 34_826


def test_device_cuda_without_a_gpu_fails_with_the_reason(tmp_path):
    results = twinbench.run(stacks=("torch",), out=tmp_path, device="cuda", **QUICK)
    (cell,) = results.cells
    assert cell.status == "failed" and "--device cuda: torch sees no CUDA device" in cell.reason
