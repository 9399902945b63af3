"""The gate and run folders: `run` and `export` exit 1 when a cell or artifact is not ok;
an --out folder holding another run is refused; a run's folder is locked while it runs;
a resume rewrites results.json, refuses flags it would ignore and is named with its --db;
empty name lists and misnamed flags are one-line errors. No cell process is started
(each costs 5-30 s): runs are constructed, or stored straight into a history database."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import typer.main
from report_fixtures import cell, results, write_run
from typer.testing import CliRunner

import twinbench.api as api
from twinbench.api import TwinbenchError
from twinbench.cli import app, main
from twinbench.config import RunConfig
from twinbench.results import Results
from twinbench.store import Store

CENTRES = {"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)}
QUICK_ARGS = ["--tasks", "digits", "--stacks", "torch", "--threads", "1"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line_error(res, code: int = 2) -> str:
    assert res.exit_code == code and "Traceback" not in res.output, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    return lines[0]


# --- exit codes of run and export ------------------------------------------------------

def _constructed(status: str = "ok", portability: list | None = None) -> Results:
    res = results({"torch": (1000.0, 1.0)}, raw=False)
    res.cells[0].status = status
    if portability is not None:
        res.cells[0].portability = portability
    return res


@pytest.mark.parametrize("status, portability, code, needle", [
    ("ok", None, 0, None),
    ("failed", None, 1, "1 of 1 cells not ok (failed 1): exit 1"),
    ("skipped", None, 1, "(skipped 1)"),
    ("ok", [{"format": "onnx", "status": "ok"}, {"format": "litert", "status": "mismatch"}],
     1, "1 of 2 exported artifacts not ok (mismatch 1)"),
])
def test_run_exits_1_when_any_cell_or_artifact_is_not_ok(monkeypatch, tmp_path, status,
                                                         portability, code, needle):
    monkeypatch.setattr(api, "run", lambda *a, **k: _constructed(status, portability))
    monkeypatch.setattr("twinbench.cli.run_commands._report_after_run", lambda out_dir: None)
    res = invoke("run", *QUICK_ARGS, "--out", str(tmp_path / "o"), "--db",
                 str(tmp_path / "h.db"))
    assert res.exit_code == code, res.output
    assert needle is None or needle in res.output


def test_export_exits_1_on_a_mismatch_or_failure(monkeypatch, tmp_path):
    monkeypatch.setattr("twinbench.api_export.export_matrix", lambda *a, **k: _constructed(
        portability=[{"format": "onnx", "runtime": "onnxruntime", "status": "failed",
                      "reason": "boom"}]))
    res = invoke("export", "--stacks", "torch", "--models", "cnn", "--formats", "onnx",
                 "--threads", "1", "--out", str(tmp_path))
    assert res.exit_code == 1 and "1 of 1 exported artifacts not ok (failed 1)" in res.output


# --- run folders ---------------------------------------------------------------------

def test_out_folder_of_another_run_is_refused_unless_forced(tmp_path):
    old = write_run(tmp_path / "old", results(CENTRES, raw=False))  # run id "synthetic"
    before = (old / "results.json").read_text()
    for extra in ([], ["--dry-run"]):
        line = one_line_error(invoke("run", *QUICK_ARGS, "--out", str(old), "--db",
                                     str(tmp_path / "h.db"), *extra))
        assert "holds run synthetic" in line and "--force" in line
    assert (old / "results.json").read_text() == before  # nothing written over
    res = invoke("run", *QUICK_ARGS, "--out", str(old), "--force", "--dry-run")
    assert res.exit_code == 0 and res.output.startswith("plan:")
    api.check_folder(old, "synthetic")  # the run's own folder: a resume writes there


def _stored_run(tmp_path, status: str = "ok") -> tuple[Store, str, Path]:
    """A finished one-cell run (digits/cnn/torch), stored as `run` stores it."""
    store, out = Store(tmp_path / "h.db"), tmp_path / "run"
    config = RunConfig(tasks=("digits",), stacks=("torch",), threads=1, loadgen=False)
    store.start_run("r1", out, config.model_dump(mode="json"), {"cpu_model": "x"})
    c = cell("torch", 1000.0, 1.0, np.random.default_rng(0), raw=False, status=status)
    for phase in ("probe", "full"):
        store.put_cell("r1", phase, 0, c.model_dump(mode="json"))
    store.finish_run("r1", "complete")
    return store, "r1", out


def test_a_second_resume_of_a_running_run_is_refused(tmp_path):
    store, run_id, out = _stored_run(tmp_path)
    with api.run_folder(out, run_id):
        with pytest.raises(TwinbenchError, match="run r1 is running there now"):
            with api.run_folder(out, run_id):
                pass
        line = one_line_error(invoke("run", "--resume", run_id, "--db", str(store.path)))
        assert "is running there now" in line
    assert store.run(run_id)["status"] == "complete"  # the refused resume wrote nothing
    with api.run_folder(out, run_id):  # released with the first
        pass


def test_out_folder_is_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store(tmp_path / "h.db")
    store.start_run("r1", Path("runs/r1"), {}, {})
    assert store.run("r1")["out_dir"] == str(tmp_path / "runs" / "r1")


def test_resume_of_a_finished_run_rewrites_a_deleted_results_json(tmp_path):
    store, run_id, out = _stored_run(tmp_path)
    res = api.run(planned=api.resume_plan(store, run_id), store=store)  # runs no cell
    assert [c.status for c in res.cells] == ["ok"]
    assert [c.status for c in Results.read(out / "results.json").cells] == ["ok"]


def test_show_export_rebuilds_results_json_from_the_history(tmp_path):
    store, run_id, out = _stored_run(tmp_path, status="failed")
    res = invoke("show", run_id, "--db", str(store.path), "--export", str(out))
    assert res.exit_code == 0, res.output
    rebuilt = Results.read(out / "results.json")
    assert rebuilt.run_id == run_id and [c.status for c in rebuilt.cells] == ["failed"]
    assert Results.read(out / "verify.json").cells[0].stack == "torch"
    other = write_run(tmp_path / "other", results(CENTRES, raw=False))
    line = one_line_error(invoke("show", run_id, "--db", str(store.path), "--export",
                                 str(other)))
    assert "holds run synthetic" in line and "--force" not in line


def test_resume_refuses_the_flags_it_would_ignore(tmp_path):
    store, run_id, _ = _stored_run(tmp_path)
    line = one_line_error(invoke("run", "--resume", run_id, "--db", str(store.path),
                                 "--epochs", "3", "--no-loadgen"))
    assert "drop --epochs, --loadgen/--no-loadgen" in line
    res = invoke("run", "--resume", run_id, "--db", str(store.path), "--dry-run")
    assert res.exit_code == 0 and res.output.startswith("plan: 1 timed cells")


def test_resume_hint_names_the_db_unless_it_is_the_builtin_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    builtin = Store(tmp_path / "xdg" / "twinbench" / "history.db")
    assert api.resume_command("r1", builtin.path) == "twinbench run --resume r1"
    other = Store(tmp_path / "my history.db")
    assert api.resume_command("r1", other.path) == \
        f"twinbench run --resume r1 --db '{tmp_path / 'my history.db'}'"


# --- one-line errors: empty name lists, option names ------------------------------------

def call(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code or 0, capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["run", "--stacks", "", "--dry-run"], ["run", "--stacks", ",", "--dry-run"],
    ["run", "--tasks", " , ", "--dry-run"], ["run", "--models", "", "--dry-run"],
    ["latency", "--stacks", ","], ["verify", "--models", ""], ["export", "--formats", ","],
    ["pipelines", "--pipelines", ""], ["verify", "--recipes", ","],
])
def test_an_empty_name_list_is_an_error_not_all(args, capsys, tmp_path):
    code, err = call([*args, "--out", str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "names nothing" in err


def _options(command: str) -> set[str]:
    click_cmd = typer.main.get_command(app).commands[command]
    return {o for p in click_cmd.params for o in [*p.opts, *p.secondary_opts]}


@pytest.mark.parametrize("args, flag", [
    (["run", "--cell-timeout", "0", "--dry-run"], "--cell-timeout"),
    (["run", "--latency-budget", "0", "--dry-run"], "--latency-budget"),
    (["latency", "--duration", "0"], "--duration"),
    (["latency", "--server-steps", "0"], "--server-steps"),
    (["verify", "--jobs", "0"], "--jobs"),
    (["verify", "--cell-timeout", "-1"], "--cell-timeout"),
    (["export", "--tolerance", "0"], "--tolerance"),
    (["export", "--epochs", "-1"], "--epochs"),
    (["pipelines", "--cell-timeout", "0"], "--cell-timeout"),
    (["verify", "--recipes", "he"], "--recipes"),
    (["run", "--recipe", "he", "--dry-run"], "--recipe"),
])
def test_validation_errors_name_the_real_option(args, flag, capsys, tmp_path):
    code, err = call([*args, "--out", str(tmp_path)], capsys)
    assert code == 2 and err.startswith(f"error: {flag}:"), err
    named = set(re.findall(r"--[a-z][a-z0-9-]*", err))
    assert named <= _options(args[0]), named - _options(args[0])
