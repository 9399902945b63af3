"""Fault isolation and resume: every fault kind is recorded on its cell with a reason, the
rest of the run completes, the history database stays consistent, and `--resume` finishes
the run without losing or duplicating a cell."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import twinbench
from twinbench.api import resume_plan
from twinbench.config import OptimizerConfig
from twinbench.store import Store

from conftest import QUICK

# Repeat r of the torch cell gets fault FAULTS[r]; repeat 0 is healthy. The hang comes
# mid-training (after imports and the parity checks), the others at the cell's start.
FAULTS = {1: "kill@start", 2: "hang@train", 3: "memory@start", 4: "import@start"}
REASONS = {1: "signal SIGKILL", 2: "timed out after 20 s (--cell-timeout)",
           3: "exceeded --cell-memory-mb 2000", 4: "torch failed to import"}


def cell_rows(db: Path, run_id: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT phase, stack, repeat, status FROM cells WHERE run_id = ?"
                           " ORDER BY phase, repeat", (run_id,)).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory):
    """One run of 5 torch repeats, 4 of them faulty, then the same run resumed without
    faults."""
    out, db = tmp_path_factory.mktemp("faults"), tmp_path_factory.mktemp("db") / "h.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("TWINBENCH_TESTING", "1")  # the switch without which faults are ignored
    mp.setenv("TWINBENCH_FAULT", ",".join(f"torch#{r}:{k}" for r, k in FAULTS.items()))
    store = Store(db)
    try:
        first = twinbench.run(stacks=("torch",), out=out, threads=1, repeats=5,
                              cell_timeout_s=20, cell_memory_mb=2000, store=store, **QUICK)
    finally:
        mp.undo()
    rows_after_faults = cell_rows(db, first.run_id)
    integrity = store.integrity()
    resumed = twinbench.run(planned=resume_plan(store, first.run_id), store=store)
    return first, rows_after_faults, integrity, resumed, store


def test_each_fault_is_recorded_with_its_reason(faulty):
    first = faulty[0]
    by_repeat = {c.repeat: c for c in first.cells}
    assert by_repeat[0].status == "ok"  # the healthy cell completed beside the faults
    for r, needle in REASONS.items():
        assert by_repeat[r].status == "failed", r
        assert needle in by_repeat[r].reason, (r, by_repeat[r].reason)
    assert "injected fault 'hang'" in by_repeat[2].stderr_tail  # the cell's own last words


def test_db_is_consistent_and_holds_every_cell(faulty):
    first, rows, integrity = faulty[:3]
    assert integrity == "ok"
    assert [(p, r, s) for p, _, r, s in rows if p == "full"] == \
        [("full", 0, "ok")] + [("full", r, "failed") for r in FAULTS]


def test_resume_reruns_only_failed_cells_without_duplicates(faulty):
    first, _, _, resumed, store = faulty
    rows = cell_rows(store.path, first.run_id)
    full = [r for r in rows if r[0] == "full"]
    assert len(full) == 5 and {r[2] for r in full} == {0, 1, 2, 3, 4}  # no duplicates
    assert all(r[3] == "ok" for r in full)
    # the healthy cell was not run again: its stored result is unchanged
    assert resumed.cells[0].wall_s == first.cells[0].wall_s
    assert [c.repeat for c in resumed.cells] == [0, 1, 2, 3, 4]
    assert store.integrity() == "ok" and store.run(first.run_id)["status"] == "complete"


def test_a_diverging_loss_stops_early_and_is_kept_on_resume(tmp_path):
    store = Store(tmp_path / "h.db")
    blowup = OptimizerConfig(name="sgd", learning_rate=1e4)
    res = twinbench.run(stacks=("torch",), out=tmp_path / "run", store=store,
                        **{**QUICK, "epochs": 3}, optimizer=blowup)
    (cell,) = res.cells
    assert cell.status == "diverged" and "stopped early" in cell.reason
    assert len(cell.metrics["epochs"]) == 1  # epochs 2 and 3 never ran
    again = twinbench.run(planned=resume_plan(store, res.run_id), store=store)
    assert again.cells[0].wall_s == cell.wall_s  # a result, not a failure: not rerun


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.2)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_driver_interrupt_keeps_finished_cells_and_prints_resume(tmp_path, sig):
    db = tmp_path / "h.db"
    args = [sys.executable, "-m", "twinbench.cli", "run", "--tasks", "digits", "--stacks",
            "torch", "--repeats", "2", "--epochs", "1", "--latency-calls", "5", "--no-loadgen",
            "--threads", "1", "--out", str(tmp_path / "run"), "--db", str(db)]
    env = {**os.environ, "TWINBENCH_TESTING": "1",
           "TWINBENCH_FAULT": "torch#1:hang@train"}  # repeat 1 is "running"
    # As from a terminal: a test run started in the background (`cmd &` without job
    # control) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=_default_sigint)
    hang = tmp_path / "run" / "cells" / "digits__digits__cnn__torch__r1" / "stderr.txt"
    _wait_for(lambda: hang.exists() and "injected fault" in hang.read_text())
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "twinbench run --resume" in lines[0]
    assert "Traceback" not in err
    store = Store(db)
    run_id = lines[0].split("--resume ")[1].split()[0]
    assert store.integrity() == "ok" and store.run(run_id)["status"] == "interrupted"
    assert [(r[2], r[3]) for r in cell_rows(db, run_id) if r[0] == "full"] == [(0, "ok")]
    # the hung cell's process group was killed with the driver
    assert subprocess.run(["pgrep", "-f", str(tmp_path / "run")],
                          capture_output=True).stdout == b""
    if sig == signal.SIGINT:
        return  # resuming an interrupted run is the same after either signal: once is enough
    done = subprocess.run([*args[:3], "run", "--resume", run_id, "--db", str(db)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    full = [r for r in cell_rows(db, run_id) if r[0] == "full"]
    assert sorted(r[2] for r in full) == [0, 1] and all(r[3] == "ok" for r in full)


def test_a_corrupt_data_file_is_named_in_one_line(tmp_path):
    (tmp_path / "TREC_10.label").write_text("NUM:dist How far ?\n")
    (tmp_path / "train_5500.label").write_text("NUM:dist How far ?\n")
    r = subprocess.run([sys.executable, "-m", "twinbench.cli", "run", "--tasks", "text",
                        "--dataset", "trec", "--data-dir", str(tmp_path), "--out",
                        str(tmp_path / "o"), "--db", str(tmp_path / "h.db")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "train_5500.label: sha256" in lines[0]
    assert "does not match the pinned" in lines[0]


# --- the driver's death (issue 18, class 4) ---------------------------------------------
# The driver here is a small script, not `twinbench run`: what is tested is the cell
# process (or the signal handling), and the real run's parity probes would cost seconds.

KILLED_DRIVER = """
import sys
from pathlib import Path
from twinbench.api import plan, submission
from twinbench.config import RunConfig
from twinbench.runner.executor import LocalExecutor
p = plan(RunConfig(tasks=("digits",), stacks=("torch",), threads=1), out_dir=Path(sys.argv[1]))
sub = submission(p, p.cells[0], {"digits": p.out_dir / "unused.npz"}, "full", "quick", "cells")
for _ in LocalExecutor(jobs=int(sys.argv[2])).run([sub], 600):
    pass
"""

# `twinbench run` whose cells (fakes: no framework) never finish.
HUNG_UP_DRIVER = """
import sys, time
import twinbench.api, twinbench.runner.local as local
from twinbench.cli import main
def run_cell(job, info, cell_dir, timeout_s, **kw):
    (cell_dir / "started").touch()
    time.sleep(600)
local.run_cell = run_cell
# parity probes run batched per stack: the same fake, one cell at a time
local.run_probe_batch = lambda jobs, info, dirs, t, *a, **k: [
    run_cell(j, info, d, t) for j, d in zip(jobs, dirs)]
twinbench.api.prepare_data = lambda p: {"digits": p.out_dir}
main(sys.argv[1:])
"""


def _default_signals() -> None:
    """As from a terminal, whatever the test runner inherited (nohup ignores SIGHUP)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _gone(pid: int) -> bool:
    import psutil

    try:  # killed, but its new parent (pid 1 in a container) may not reap it
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("jobs", [1, 2])  # 2: spawned from a worker thread of the driver
def test_sigkill_of_the_driver_kills_its_cell(tmp_path, jobs):
    import psutil

    env = {**os.environ, "TWINBENCH_FAULT": "torch:hang@start"}
    driver = subprocess.Popen([sys.executable, "-c", KILLED_DRIVER, str(tmp_path), str(jobs)],
                              env=env, stderr=subprocess.PIPE)
    stderr = tmp_path / "cells" / "digits__digits__cnn__torch" / "stderr.txt"
    cells: list[psutil.Process] = []
    try:
        _wait_for(lambda: stderr.exists() and "injected fault" in stderr.read_text(), 60)
        cells += psutil.Process(driver.pid).children()
        driver.kill()
        driver.wait(timeout=10)
        _wait_for(lambda: all(_gone(c.pid) for c in cells), 10)
        assert len(cells) == 1
    finally:
        driver.kill()
        for c in cells:  # a failed test leaves no hung cell behind
            try:
                c.kill()
            except psutil.NoSuchProcess:
                pass


def test_sighup_of_the_driver_is_an_interrupt_with_the_resume_hint(tmp_path):
    db = tmp_path / "h.db"
    args = ["run", "--tasks", "digits", "--stacks", "torch", "--threads", "1", "--out",
            str(tmp_path / "run"), "--db", str(db)]
    proc = subprocess.Popen([sys.executable, "-c", HUNG_UP_DRIVER, *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_signals)
    started = tmp_path / "run" / "verify" / "digits__digits__cnn__torch" / "started"
    _wait_for(started.exists, 60)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    run_id = line.split("twinbench run --resume ")[1].split()[0]
    assert Store(db).run(run_id)["status"] == "interrupted"


def test_sighup_stays_ignored_under_nohup():
    from twinbench.api import _signals_as_interrupt

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with _signals_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("entry", ["twinbench.cell.main", "twinbench.export.child",
                                   "twinbench.export.reload", "twinbench.pipelines.child"])
def test_every_child_ties_itself_to_its_driver_first(tmp_path, entry):
    # A driver pid that is not its parent: the child must see at once that its driver is
    # gone and exit, before it reads its job (which does not exist: a traceback if read).
    env = {**os.environ, "TWINBENCH_DIE_WITH_PARENT": str(os.getpid() + 10**7)}
    r = subprocess.run([sys.executable, "-m", entry, str(tmp_path / "job.json")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (1, "")


def test_export_children_are_tied_to_the_driver(tmp_path, monkeypatch):
    from twinbench.export import spawn
    from twinbench.process import spawn as core

    seen = {}

    class Proc:
        pid = 0

        def __init__(self, cmd, env, **kw):
            seen.update(env)

        def poll(self):
            return 0

    monkeypatch.setattr(core.subprocess, "Popen", Proc)
    spawn.spawn("twinbench.export.child", tmp_path / "job.json", {}, 1.0)
    assert seen == {"TWINBENCH_DIE_WITH_PARENT": str(os.getpid())}
