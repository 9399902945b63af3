"""SQLite history of every run (stdlib sqlite3, WAL mode, one transaction per cell).

results.json stays the export format; the database is what `--resume`, `history` and
`show` read. The schema is versioned with `PRAGMA user_version`; each entry of
MIGRATIONS moves a database one version up, so an old history file is upgraded in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
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


def default_db_path() -> Path:
    """$TWINBENCH_DB, else $XDG_DATA_HOME/twinbench/history.db (~/.local/share/...)."""
    if os.environ.get("TWINBENCH_DB"):
        return Path(os.environ["TWINBENCH_DB"])
    return builtin_db_path()


def builtin_db_path() -> Path:
    """The history when $TWINBENCH_DB is not set: $XDG_DATA_HOME/twinbench/history.db."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "twinbench" / "history.db"


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


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        v = self.version()
        if v > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"{self.path}: schema version {v} is newer than this "
                                        f"twinbench understands ({SCHEMA_VERSION})")
        for i in range(v, SCHEMA_VERSION):
            # executescript() would COMMIT on its own: run each statement inside our
            # transaction so that a migration is applied whole or not at all.
            with self.transaction():
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {i + 1}")

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
        key = (run_id, phase, cell["task"], cell.get("dataset") or "", cell["model"],
               cell["stack"], repeat)
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

    def done_keys(self, run_id: str, phase: str) -> set[tuple]:
        """(task, dataset, model, stack, repeat) of the cells a resume must not rerun."""
        marks = ",".join("?" * len(FINAL))
        rows = self.db.execute(
            f"SELECT task, dataset, model, stack, repeat FROM cells WHERE run_id = ? AND "
            f"phase = ? AND status IN ({marks})", (run_id, phase, *FINAL)).fetchall()
        return {tuple(r) for r in rows}


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (Ctrl-C included)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
