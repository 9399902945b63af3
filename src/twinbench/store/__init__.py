"""The results store: an embedded SQLite history of runs, cells and metrics."""

from twinbench.store.db import Store, default_db_path

__all__ = ["Store", "default_db_path"]
