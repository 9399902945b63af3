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
