"""SQLite history of every run (stdlib sqlite3, WAL mode, one transaction per cell).

results.json stays the export format and is written first; the database is what
`--resume`, `history` and `show` read. A run writes it through a `Recorder`, which never
raises: a write that fails (a lock held past the busy timeout, a corrupt or read-only
file) waits and is retried, and what never got in is imported from the run folder later
(`twinbench import RUN_FOLDER`). The schema is versioned with `PRAGMA user_version`; each entry of
MIGRATIONS moves a database one version up, so an old history file is upgraded in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Statuses that are results: a resumed run keeps them. Only `failed` cells run again.
FINAL = ("ok", "unverified", "skipped", "diverged")

MIGRATIONS: list[str] = [
    # v1: runs, environments, cells, metrics
    """
    CREATE TABLE environments (
        id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, created TEXT NOT NULL, status TEXT NOT NULL,
        out_dir TEXT NOT NULL, config TEXT NOT NULL,
        environment_id INTEGER REFERENCES environments(id), finished TEXT);
    CREATE TABLE cells (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        phase TEXT NOT NULL, task TEXT NOT NULL, dataset TEXT NOT NULL, model TEXT NOT NULL,
        stack TEXT NOT NULL, repeat INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT,
        wall_s REAL, data TEXT NOT NULL, stored TEXT NOT NULL,
        UNIQUE (run_id, phase, task, dataset, model, stack, repeat));
    CREATE TABLE metrics (
        cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
        name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (cell_id, name));
    """,
    # v2: look-ups by stack across runs (history queries, compare)
    "CREATE INDEX cells_by_stack ON cells (task, model, stack, status);",
]
SCHEMA_VERSION = len(MIGRATIONS)

TIMEOUT_ENV = "TWINBENCH_DB_TIMEOUT"
# How long a write waits for another process's lock before it fails (and is retried
# later): `history` or a second run holds it for milliseconds, so 30 s means a stuck one.
DEFAULT_TIMEOUT_S = 30.0
# A write retried between cells while the history is known to be failing waits this long
# at most: a long lock must not add the whole busy timeout to every cell of the run.
RETRY_TIMEOUT_S = 0.5


def default_db_path() -> Path:
    """$TWINBENCH_DB, else $XDG_DATA_HOME/twinbench/history.db (~/.local/share/...)."""
    if os.environ.get("TWINBENCH_DB"):
        return Path(os.environ["TWINBENCH_DB"])
    return builtin_db_path()


def builtin_db_path() -> Path:
    """The history when $TWINBENCH_DB is not set: $XDG_DATA_HOME/twinbench/history.db."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "twinbench" / "history.db"


def busy_timeout_s() -> float:
    """$TWINBENCH_DB_TIMEOUT (seconds), else DEFAULT_TIMEOUT_S."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds >= 0, not {raw!r}")
    return value


def one_line(e: BaseException) -> str:
    """An sqlite3 or OS error as a short phrase for a one-line message."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return " ".join(str(e).split()) or type(e).__name__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def flatten_numbers(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """Dotted names of every finite number in a nested dict (lists and strings skipped)."""
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from flatten_numbers(v, name + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
            yield name, float(v)


def _cell_key(cell: dict) -> tuple[str, str, str, str]:
    return cell["task"], cell.get("dataset") or "", cell["model"], cell["stack"]


class Store:
    """The history database. `timeout_s`: how long a statement waits for another
    process's lock [default: busy_timeout_s()]."""

    def __init__(self, path: Path | str, timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.timeout_s = busy_timeout_s() if timeout_s is None else timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            self.db.row_factory = sqlite3.Row
            self._journal_wal()
            self.db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except BaseException:
            self.db.close()  # a corrupt or locked file: no connection left open on it
            raise

    def _journal_wal(self) -> None:
        """WAL mode, waiting for another process that creates or opens the same new file
        at that moment: switching the journal mode needs an exclusive lock, and SQLite
        answers "database is locked" at once there instead of calling its busy handler
        (measured: two processes creating one new history under load)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Statements inside wait at most `seconds` for a lock (not the busy timeout)."""
        self.db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")

    def close(self) -> None:
        self.db.close()

    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        while (v := self.version()) < SCHEMA_VERSION:
            # executescript() would COMMIT on its own: run each statement inside our
            # transaction so that a migration is applied whole or not at all.
            with self.transaction():
                # Read again under the write lock: two processes creating a new database
                # both saw version 0, and the one that waited must not migrate again.
                if self.version() != v:
                    continue
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {v + 1}")
        if v > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"{self.path}: schema version {v} is newer than this "
                                        f"twinbench understands ({SCHEMA_VERSION})")

    def transaction(self) -> "_Tx":
        return _Tx(self.db)

    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    # --- runs -----------------------------------------------------------------------
    def start_run(self, run_id: str, out_dir: Path, config: dict, environment: dict) -> None:
        """Record a new run (or re-open it on --resume, keeping its stored cells)."""
        fp = json.dumps(environment, sort_keys=True)
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO environments (fingerprint, data) "
                            "VALUES (?, ?)", (fp, fp))
            env_id = self.db.execute("SELECT id FROM environments WHERE fingerprint = ?",
                                     (fp,)).fetchone()[0]
            self.db.execute(
                "INSERT INTO runs (run_id, created, status, out_dir, config, environment_id) "
                "VALUES (?, ?, 'running', ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                "status = 'running', finished = NULL",
                # absolute: a resume from another directory must find the same folder
                (run_id, _now(), str(Path(out_dir).absolute()), json.dumps(config), env_id))

    def finish_run(self, run_id: str, status: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET status = ?, finished = ? WHERE run_id = ?",
                            (status, _now(), run_id))

    def run(self, run_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()

    def runs(self, limit: int = 50) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT r.*, (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.run_id AND "
            "c.phase = 'full') AS n_cells, (SELECT COUNT(*) FROM cells c WHERE "
            "c.run_id = r.run_id AND c.phase = 'full' AND c.status = 'failed') AS n_failed "
            "FROM runs r ORDER BY created DESC, run_id DESC LIMIT ?", (limit,)).fetchall()

    def environment(self, run_id: str) -> dict:
        row = self.db.execute("SELECT e.data FROM runs r JOIN environments e ON "
                              "e.id = r.environment_id WHERE r.run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    # --- cells ----------------------------------------------------------------------
    def put_cell(self, run_id: str, phase: str, repeat: int, cell: dict) -> None:
        """Insert or replace one cell and its metrics in a single transaction."""
        key = (run_id, phase, *_cell_key(cell), repeat)
        with self.transaction():
            self.db.execute(
                "INSERT INTO cells (run_id, phase, task, dataset, model, stack, repeat, status,"
                " reason, wall_s, data, stored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id, phase, task, dataset, model, stack, repeat) DO UPDATE SET "
                "status = excluded.status, reason = excluded.reason, wall_s = excluded.wall_s,"
                " data = excluded.data, stored = excluded.stored",
                (*key, cell["status"], cell.get("reason"), cell.get("wall_s"),
                 json.dumps(cell), _now()))
            cell_id = self.db.execute(
                "SELECT id FROM cells WHERE run_id = ? AND phase = ? AND task = ? AND "
                "dataset = ? AND model = ? AND stack = ? AND repeat = ?", key).fetchone()[0]
            self.db.execute("DELETE FROM metrics WHERE cell_id = ?", (cell_id,))
            self.db.executemany("INSERT INTO metrics (cell_id, name, value) VALUES (?, ?, ?)",
                                [(cell_id, n, v) for n, v in
                                 flatten_numbers(cell.get("metrics") or {})])

    def cells(self, run_id: str, phase: str = "full") -> list[dict]:
        rows = self.db.execute("SELECT data FROM cells WHERE run_id = ? AND phase = ? "
                               "ORDER BY id", (run_id, phase)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def cell_walls(self) -> list[dict]:
        """Every ok cell's wall time with what it depends on most (for estimates): phase,
        task, data set, model, stack, epochs, batch size, threads."""
        rows = self.db.execute(
            "SELECT phase, task, dataset, model, stack, wall_s, "
            "json_extract(data, '$.settings.epochs'), "
            "json_extract(data, '$.settings.batch_size'), "
            "json_extract(data, '$.settings.threads') FROM cells "
            "WHERE status = 'ok' AND wall_s IS NOT NULL").fetchall()
        keys = ("phase", "task", "dataset", "model", "stack", "wall_s", "epochs",
                "batch_size", "threads")
        return [dict(zip(keys, r)) for r in rows]

    def done_keys(self, run_id: str, phase: str) -> set[tuple]:
        """(task, dataset, model, stack, repeat) of the cells a resume must not rerun."""
        marks = ",".join("?" * len(FINAL))
        rows = self.db.execute(
            f"SELECT task, dataset, model, stack, repeat FROM cells WHERE run_id = ? AND "
            f"phase = ? AND status IN ({marks})", (run_id, phase, *FINAL)).fetchall()
        return {tuple(r) for r in rows}


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (Ctrl-C included). A
    failed COMMIT rolls back too, so the connection is never left inside a transaction
    (the retried write would fail with "cannot start a transaction within a
    transaction")."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the error that got us here is the one to report


@dataclass
class Recorder:
    """One run's writes to the history, in order, never raising for a database fault.

    A write that fails (locked past the busy timeout, a corrupt or read-only file, a path
    that cannot be opened) stays pending; every later write retries the pending ones first
    (waiting RETRY_TIMEOUT_S, not the busy timeout, while the fault lasts), and `flush()`
    retries once more with the full timeout at the run's end. The run folder is written
    before each write, so what is still pending then can be imported from it."""

    path: Path
    store: Store | None = None
    pending: list[tuple[str, tuple]] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def open(cls, path: Path | str) -> Recorder:
        rec = cls(Path(path))
        rec.flush()  # opens the store; a failure is kept in `error`
        return rec

    def start_run(self, run_id: str, out_dir: Path, config: dict, environment: dict) -> None:
        self._write("start_run", run_id, out_dir, config, environment)

    def put_cell(self, run_id: str, phase: str, repeat: int, cell: dict) -> None:
        self._write("put_cell", run_id, phase, repeat, cell)

    def finish_run(self, run_id: str, status: str) -> None:
        self._write("finish_run", run_id, status)

    def unsaved_cells(self) -> int:
        """Cells (timed and parity probes) with a write pending; a probe is written twice
        (its result, then its verdict) but counts once."""
        return len({(phase, *_cell_key(cell), repeat)
                    for op, (run_id, phase, repeat, cell) in
                    ((op, args) for op, args in self.pending if op == "put_cell")})

    def _write(self, op: str, *args: object) -> None:
        self.pending.append((op, args))
        self.flush(wait=self.error is None)

    def _open(self, wait: bool) -> Store:
        """The store, opened waiting for a lock (a new database another process creates)
        as long as `flush` would; its later writes get the busy timeout."""
        full = busy_timeout_s()
        store = Store(self.path, timeout_s=full if wait else min(full, RETRY_TIMEOUT_S))
        store.timeout_s = full
        return store

    def flush(self, wait: bool = True) -> bool:
        """Apply the pending writes in order, stopping at the first that fails. `wait`:
        the busy timeout applies, else RETRY_TIMEOUT_S. True when none is left."""
        try:
            store = self.store = self.store or self._open(wait)  # again, if it failed
            timeout = store.timeout_s if wait else min(store.timeout_s, RETRY_TIMEOUT_S)
            with store.waiting_at_most(timeout):
                while self.pending:
                    op, args = self.pending[0]
                    getattr(store, op)(*args)
                    self.pending.pop(0)  # only once it is committed
        except (sqlite3.Error, OSError) as e:
            self.error = one_line(e)
            return False
        self.error = None
        return True
