"""Runs an export or reload child over the one process core (`twinbench.process.spawn`),
as a cell runs: its own session, thread variables set before the interpreter starts,
killed with its whole group at the time-out or past --cell-memory-mb, and by the kernel
if the driver dies."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from twinbench.process import progress
from twinbench.process import spawn as core
from twinbench.process.spawn import process_env


def child_env(threads: int, seed: int, keras_backend: str | None) -> dict[str, str]:
    """The same environment as a cell's (threads, hash seed, Keras backend, no GPU)."""
    return process_env(threads, seed, keras_backend)


def spawn(module: str, job_path: Path, env: dict[str, str], timeout_s: float,
          on_progress: Callable[[progress.CellProgress], None] | None = None,
          memory_mb: float | None = None) -> tuple[str | None, float, str]:
    """Run `python -m module job_path`; logs go beside the job. Returns (why it failed or
    None, wall seconds, the last lines of its stderr). `on_progress`: gets what the child
    reports in progress.json beside the job."""
    done = core.spawn(module, job_path, env, timeout_s, memory_mb, on_progress=on_progress)
    return done.reason, done.wall_s, done.stderr_tail
