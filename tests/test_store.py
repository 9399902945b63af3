"""The SQLite history: migrations, one row per cell, metrics flattened, WAL mode."""

import sqlite3

from twinbench.store.db import MIGRATIONS, SCHEMA_VERSION, Store, flatten_numbers


def test_an_old_database_is_migrated_in_place(tmp_path):
    path = tmp_path / "h.db"
    con = sqlite3.connect(path)
    con.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    con.execute("INSERT INTO runs VALUES ('old', 'then', 'complete', '/x', '{}', NULL, NULL)")
    con.commit()
    con.close()
    store = Store(path)
    assert store.version() == SCHEMA_VERSION == 2
    assert store.run("old")["status"] == "complete"  # kept across the migration
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_put_cell_replaces_and_flattens_metrics(tmp_path):
    store = Store(tmp_path / "h.db")
    store.start_run("r1", tmp_path, {"a": 1}, {"cpu": "x"})
    cell = {"task": "digits", "dataset": "digits", "model": "cnn", "stack": "torch",
            "status": "failed", "reason": "boom", "metrics": {}}
    store.put_cell("r1", "full", 0, cell)
    store.put_cell("r1", "full", 0, {**cell, "status": "ok", "reason": None,
                                      "metrics": {"accuracy": 0.9, "lat": {"p50": 1.5},
                                                  "path": "x", "ok": True}})
    assert [c["status"] for c in store.cells("r1")] == ["ok"]
    names = dict(store.db.execute("SELECT name, value FROM metrics").fetchall())
    assert names == {"accuracy": 0.9, "lat.p50": 1.5}
    assert store.done_keys("r1", "full") == {("digits", "digits", "cnn", "torch", 0)}
    assert store.integrity() == "ok"


def test_flatten_skips_text_bools_and_nan():
    got = dict(flatten_numbers({"a": 1, "b": {"c": 2.5, "d": "x"}, "e": True,
                                "f": float("nan"), "g": [1, 2]}))
    assert got == {"a": 1.0, "b.c": 2.5}


def test_environment_differences_name_what_changed():
    from twinbench.environment import capture, differences

    env = capture()
    assert differences(env, env) == []
    other = {**env, "cores": 64, "packages": {**env["packages"], "numpy": "0.0"}}
    assert differences(env, other) == [f"cores: {env['cores']} vs 64",
                                       f"packages.numpy: {env['packages']['numpy']} vs 0.0"]


# --- database faults never lose a finished cell (issue 18, class 3) ----------------------
# Runs here use a fake cell (no process, no framework: the store is the point) and a busy
# timeout of TIMEOUT_S instead of the real default (store.db.DEFAULT_TIMEOUT_S, 30 s).

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import twinbench  # noqa: E402
from twinbench.api import Events  # noqa: E402
from twinbench.results import Results  # noqa: E402

TIMEOUT_S = 0.2
FAKE = dict(tasks=("digits",), stacks=("torch",), threads=1, repeats=2)
# Holds an exclusive lock on the database given as argv[1] until argv[2] exists.
LOCK_HOLDER = """
import pathlib, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
while not pathlib.Path(sys.argv[2]).exists():
    time.sleep(0.02)
con.execute("COMMIT")
"""


@pytest.fixture
def fake_cells(monkeypatch):
    """Cells that finish at once; `hooks[i]` runs inside the i-th cell (0-based)."""
    import twinbench.runner.local as local

    hooks: dict[int, object] = {}
    calls = []

    def run_cell(job, info, cell_dir, timeout_s, **kw):
        calls.append(job)
        hook = hooks.get(len(calls) - 1)
        if hook:
            hook()
        return {"status": "ok", "reason": None, "wall_s": 0.01}

    monkeypatch.setattr(local, "run_cell", run_cell)
    # parity probes run batched per stack: the same fake, one cell at a time
    monkeypatch.setattr(local, "run_probe_batch", lambda jobs, info, dirs, t, *a, **k: [
        run_cell(j, info, d, t) for j, d in zip(jobs, dirs)])
    monkeypatch.setattr(twinbench.api, "prepare_data", lambda p: {"digits": p.out_dir})
    monkeypatch.setattr(twinbench.api, "check_parity",
                        lambda cells: [c.parity.update({"pass": True}) for c in cells])
    return hooks


def lock(db: Path, release: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db), str(release)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """twinbench's CLI in this process: (exit code, stdout, stderr)."""
    from twinbench.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_two_processes_creating_a_new_db_at_once(tmp_path):
    code = ("import pathlib, sys, time\nfrom twinbench.store.db import Store\n"
            "d = pathlib.Path(sys.argv[1])\nwhile not (d / 'go').exists(): time.sleep(0.001)\n"
            "for i in range(5): Store(d / f'h{i}.db')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.3)  # both started and waiting: released together
    (tmp_path / "go").touch()
    for proc in procs:
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    for i in range(5):
        store = Store(tmp_path / f"h{i}.db")
        assert store.version() == SCHEMA_VERSION and store.integrity() == "ok"


def test_a_lock_that_goes_mid_run_delays_the_writes_only(tmp_path, fake_cells):
    db, release = tmp_path / "h.db", tmp_path / "release"
    store = Store(db, timeout_s=TIMEOUT_S)
    holder = lock(db, release)
    fake_cells[2] = lambda: (release.touch(), holder.wait(timeout=10))  # the last cell
    warnings: list[str] = []
    res = twinbench.run(**FAKE, out=tmp_path / "run", store=store,
                        events=Events(on_warning=warnings.append))
    assert warnings == []
    assert len(store.cells(res.run_id)) == 2 and len(store.cells(res.run_id, "probe")) == 1
    assert store.run(res.run_id)["status"] == "complete"


def test_a_lock_held_past_the_run_leaves_every_cell_in_the_folder(tmp_path, fake_cells,
                                                                  monkeypatch, capsys):
    db, release = tmp_path / "h.db", tmp_path / "release"
    Store(db).close()
    monkeypatch.setenv("TWINBENCH_DB", str(db))
    monkeypatch.setenv("TWINBENCH_DB_TIMEOUT", str(TIMEOUT_S))  # run() opens the store
    holder = lock(db, release)
    warnings: list[str] = []
    try:
        res = twinbench.run(**FAKE, out=tmp_path / "run",
                            events=Events(on_warning=warnings.append))
    finally:
        release.touch()
        holder.wait(timeout=10)
    (line,) = warnings
    assert "database is locked" in line and "3 cells" in line  # 2 timed, 1 probe
    assert line.endswith(f"twinbench import {tmp_path / 'run'} --db {db}")
    folder = Results.read(tmp_path / "run" / "results.json")
    assert [c.repeat for c in folder.cells] == [0, 1]  # written although the store failed
    assert Store(db).run(res.run_id) is None
    code, out, err = cli(capsys, "import", str(tmp_path / "run"), "--db", str(db))
    assert code == 0 and f"imported run {res.run_id} (complete): 2 cells" in out, err
    assert [c["repeat"] for c in Store(db).cells(res.run_id)] == [0, 1]


def test_a_db_corrupted_mid_run_loses_no_cell(tmp_path, fake_cells, capsys):
    db = tmp_path / "h.db"
    store = Store(db, timeout_s=TIMEOUT_S)
    store.start_run("older", tmp_path, {}, {})

    def corrupt() -> None:
        for path in (db, Path(f"{db}-wal")):
            if path.exists():
                path.write_bytes(os.urandom(max(path.stat().st_size, 4096)))

    fake_cells[1] = corrupt
    res = twinbench.run(**FAKE, out=tmp_path / "run", store=store)
    store.close()  # SQLite may not notice until a new connection reads the file
    assert len(Results.read(tmp_path / "run" / "results.json").cells) == 2
    code, _, err = cli(capsys, "history", "--db", str(db))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "move it aside" in err and "twinbench import" in err
    db.rename(tmp_path / "h.db.corrupt")
    code, out, err = cli(capsys, "import", str(tmp_path / "run"), "--db", str(db))
    assert code == 0 and "2 cells, 1 parity probes" in out, err
    assert len(Store(db).cells(res.run_id)) == 2


def test_a_failing_write_is_retried_before_the_next(tmp_path, monkeypatch):
    from twinbench.store.db import Recorder

    store = Store(tmp_path / "h.db")
    real, failures = store.put_cell, [sqlite3.DatabaseError("database disk image is malformed")]

    def put_cell(*args):
        if failures:
            raise failures.pop()
        real(*args)

    monkeypatch.setattr(store, "put_cell", put_cell)
    rec = Recorder(store.path, store)
    rec.start_run("r", tmp_path, {}, {})
    cell = {"task": "t", "model": "m", "stack": "s", "status": "ok"}
    rec.put_cell("r", "full", 0, cell)
    assert rec.unsaved_cells() == 1 and rec.error == "database disk image is malformed"
    rec.put_cell("r", "full", 1, cell)
    assert rec.pending == [] and rec.error is None
    assert [c for c in store.cells("r")] == [cell, cell]


@pytest.mark.parametrize("where", ["under a file", "a directory", "corrupt"])
def test_an_unusable_db_path_is_one_line_before_anything_runs(tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.db").mkdir()
    (tmp_path / "bad.db").write_bytes(os.urandom(8192))
    db = {"under a file": tmp_path / "file" / "h.db", "a directory": tmp_path / "dir.db",
          "corrupt": tmp_path / "bad.db"}[where]
    code, _, err = cli(capsys, "run", "--tasks", "digits", "--stacks", "torch",
                       "--threads", "1", "--out", str(tmp_path / "run"), "--db", str(db))
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"--db {db}: cannot open the history database" in line
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_a_run_that_cannot_open_its_db_still_writes_its_folder(tmp_path, fake_cells,
                                                               monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("TWINBENCH_DB", str(tmp_path / "file" / "h.db"))
    warnings: list[str] = []
    twinbench.run(**FAKE, out=tmp_path / "run", events=Events(on_warning=warnings.append))
    (line,) = warnings
    assert "3 cells" in line and "File exists" in line and "twinbench import" in line
    assert len(Results.read(tmp_path / "run" / "results.json").cells) == 2


@pytest.mark.parametrize("folder, needle", [("missing", "no such run folder"),
                                            ("empty", "holds neither results.json"),
                                            ("bad", "not a twinbench results file")])
def test_import_of_a_bad_folder_is_one_line(tmp_path, capsys, folder, needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text('{"cells": []}')
    code, _, err = cli(capsys, "import", str(tmp_path / folder), "--db", str(tmp_path / "h"))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
