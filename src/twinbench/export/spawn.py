"""Runs an export or reload child in its own fresh process (as `runner.local` runs a cell):
its own session, thread variables set before the interpreter starts, killed with its whole
process group at the time-out, and by the kernel if the driver dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from twinbench.runner import progress
from twinbench.runner.local import (
    POLL_S,
    _describe_rc,
    _kill_group,
    process_env,
    stderr_tail,
    tied_to_parent,
)


def child_env(threads: int, seed: int, keras_backend: str | None) -> dict[str, str]:
    """The same environment as a cell's (threads, hash seed, Keras backend, no GPU)."""
    return process_env(threads, seed, keras_backend)


def spawn(module: str, job_path: Path, env: dict[str, str], timeout_s: float,
          on_progress: Callable[[progress.CellProgress], None] | None = None,
          ) -> tuple[str | None, float, str]:
    """Run `python -m module job_path`; logs go beside the job. Returns (why it failed or
    None, wall seconds, the last lines of its stderr). `on_progress`: gets what the child
    reports in progress.json beside the job (runner/progress.py)."""
    tick = lambda: None  # noqa: E731
    if on_progress is not None:
        (job_path.parent / progress.FILE).unlink(missing_ok=True)  # an earlier attempt's
        tick = progress.Watcher(job_path.parent / progress.FILE, on_progress).poll
    stem = job_path.with_suffix("")
    err_path = Path(f"{stem}.stderr.txt")
    t0 = time.perf_counter()
    with open(err_path, "wb") as err, open(f"{stem}.stdout.txt", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, str(job_path)],
                                env=tied_to_parent(env),
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # own group: kill takes all
        try:
            rc = _wait(proc, timeout_s, tick)
            reason = None if rc == 0 else f"process exited with {_describe_rc(rc)}"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            reason = f"timed out after {timeout_s:g} s (--cell-timeout)"
    return reason, time.perf_counter() - t0, stderr_tail(err_path)


def _wait(proc: subprocess.Popen, timeout_s: float, tick: Callable[[], None]) -> int:
    """proc.wait(timeout_s), calling `tick` every POLL_S meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return proc.wait(timeout=min(POLL_S, max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            tick()
