"""Runs each cell in its own freshly spawned Python process, one at a time.

A fresh interpreter per cell (as optimum-benchmark does) means no framework state,
thread pool, compile cache or imported module leaks from one stack into another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from twinbench.config import CellJob
from twinbench.stacks import StackInfo

STDERR_TAIL_LINES = 15

# Thread-count variables read by OpenMP, MKL, OpenBLAS, TF and torch at import time.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cell_env(info: StackInfo, threads: int, seed: int) -> dict[str, str]:
    """The child's environment: set before the interpreter starts, so before any import."""
    return process_env(threads, seed, info.keras_backend)


def process_env(threads: int, seed: int, keras_backend: str | None) -> dict[str, str]:
    """A measurement process's environment (cells, pipeline measurements)."""
    env = dict(os.environ)
    env.update({v: str(threads) for v in THREAD_VARS})
    env["PYTHONHASHSEED"] = str(seed)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter stderr; no effect on numerics
    env.pop("KERAS_BACKEND", None)
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    return env


def stderr_tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_cell(job: CellJob, info: StackInfo | None, cell_dir: Path, timeout_s: float,
             entry: str = "twinbench.runner.cell", env: dict[str, str] | None = None) -> dict:
    """Spawn the cell and wait. Returns the cell's result dict or a `failed` record.
    `entry` and `env`: another measurement's module and environment (pipelines)."""
    job_path = cell_dir / "job.json"
    job_path.write_text(job.model_dump_json(indent=2))
    err_path, out_path = cell_dir / "stderr.txt", cell_dir / "stdout.txt"
    t0 = time.perf_counter()
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", entry, str(job_path)],
            env=env or cell_env(info, job.run.threads, job.run.seed), stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True,  # own group: kill takes all
        )
        try:
            rc = proc.wait(timeout=timeout_s)
            reason = None if rc == 0 else f"cell process exited with {_describe_rc(rc)}"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            reason = f"timed out after {timeout_s:g} s (--cell-timeout)"
    wall = time.perf_counter() - t0
    if reason is None and job.result_path.exists():
        return {**json.loads(job.result_path.read_text()), "status": "ok", "wall_s": wall}
    reason = reason or "cell process exited 0 without writing a result"
    return {"status": "failed", "reason": reason, "wall_s": wall,
            "stderr_tail": stderr_tail(err_path)}


def _describe_rc(rc: int) -> str:
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"
