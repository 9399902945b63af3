"""Runs an export or reload child in its own fresh process (as `runner.local` runs a cell):
its own session, thread variables set before the interpreter starts, killed with its whole
process group at the time-out, and by the kernel if the driver dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from twinbench.runner.local import (
    _describe_rc,
    _kill_group,
    process_env,
    stderr_tail,
    tied_to_parent,
)


def child_env(threads: int, seed: int, keras_backend: str | None) -> dict[str, str]:
    """The same environment as a cell's (threads, hash seed, Keras backend, no GPU)."""
    return process_env(threads, seed, keras_backend)


def spawn(module: str, job_path: Path, env: dict[str, str], timeout_s: float
          ) -> tuple[str | None, float, str]:
    """Run `python -m module job_path`; logs go beside the job. Returns (why it failed or
    None, wall seconds, the last lines of its stderr)."""
    stem = job_path.with_suffix("")
    err_path = Path(f"{stem}.stderr.txt")
    t0 = time.perf_counter()
    with open(err_path, "wb") as err, open(f"{stem}.stdout.txt", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, str(job_path)],
                                env=tied_to_parent(env),
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # own group: kill takes all
        try:
            rc = proc.wait(timeout=timeout_s)
            reason = None if rc == 0 else f"process exited with {_describe_rc(rc)}"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            reason = f"timed out after {timeout_s:g} s (--cell-timeout)"
    return reason, time.perf_counter() - t0, stderr_tail(err_path)
