"""Runs each cell in its own freshly spawned Python process (timed cells one at a time).

A fresh interpreter per cell (as optimum-benchmark does) means no framework state,
thread pool, compile cache or imported module leaks from one stack into another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from twinbench.config import CellJob
from twinbench.runner import progress
from twinbench.stacks import StackInfo

STDERR_TAIL_LINES = 15
PARENT_ENV = "TWINBENCH_DIE_WITH_PARENT"  # pid the cell process must not outlive

# Thread-count variables read by OpenMP, MKL, OpenBLAS, TF and torch at import time.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cell_env(info: StackInfo, threads: int, seed: int, device: str = "cpu") -> dict[str, str]:
    """The child's environment: set before the interpreter starts, so before any import."""
    return process_env(threads, seed, info.keras_backend, device)


def process_env(threads: int, seed: int, keras_backend: str | None,
                device: str = "cpu") -> dict[str, str]:
    """A measurement process's environment (cells, pipeline measurements). A CPU process
    sees no GPU at all; a CUDA one gets allocators that grow on demand (JAX would otherwise
    preallocate 75% of the GPU, TF all of it), so peaks mean something."""
    env = dict(os.environ)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    env.update({v: str(threads) for v in THREAD_VARS})
    env["PYTHONHASHSEED"] = str(seed)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter stderr; no effect on numerics
    env.pop("KERAS_BACKEND", None)
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    return env


def tied_to_parent(env: dict[str, str]) -> dict[str, str]:
    """`env` naming this process as the one the child must not outlive: the child's entry
    point calls `runner.cell.die_with_parent`, and the kernel kills it with us."""
    return {**env, PARENT_ENV: str(os.getpid())}


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


POLL_S = 0.1  # how often the driver checks the cell's RSS and exit


def group_rss_mb(pid: int) -> float:
    """RSS of the cell process and all its children (compile workers, data loaders)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _watch(proc: subprocess.Popen, timeout_s: float, memory_mb: float | None,
           stop: threading.Event | None = None,
           tick: Callable[[], None] = lambda: None) -> str | None:
    """Wait for the cell; kill it past the timeout or the memory limit, or when `stop` is
    set (the driver was interrupted while this runs in a worker thread). Returns the reason
    it failed, or None when it exited 0. Any exception here (Ctrl-C) kills it too.
    `tick` runs at every poll (the cell's progress display)."""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            tick()
            rc = proc.poll()
            if rc is not None:
                return None if rc == 0 else f"cell process exited with {_describe_rc(rc)}"
            if stop is not None and stop.is_set():
                _kill_group(proc)
                return "interrupted"
            if time.monotonic() > deadline:
                _kill_group(proc)
                return f"timed out after {timeout_s:g} s (--cell-timeout)"
            if memory_mb is not None:
                rss = group_rss_mb(proc.pid)
                if rss > memory_mb:
                    _kill_group(proc)
                    return (f"killed: RSS {rss:.0f} MB exceeded --cell-memory-mb "
                            f"{memory_mb:g}")
            time.sleep(POLL_S)
    except BaseException:
        _kill_group(proc)
        raise


def run_cell(job: CellJob, info: StackInfo | None, cell_dir: Path, timeout_s: float,
             memory_mb: float | None = None, die_with_parent: bool = True,
             entry: str = "twinbench.runner.cell", env: dict[str, str] | None = None,
             stop: threading.Event | None = None,
             on_progress: Callable[[progress.CellProgress], None] | None = None) -> dict:
    """Spawn the cell and wait. Returns the cell's result dict or a `failed` record.
    `entry` and `env`: another measurement's module and environment (pipelines).
    `on_progress`: gets the phase the cell reports (runner/progress.py) as it changes.

    `die_with_parent`: the cell is SIGKILLed if this process dies (a driver killed with
    SIGKILL, a Ray worker on a lost node), so no orphan cell goes on running. PDEATHSIG
    follows the spawning *thread*: a caller from a worker thread keeps it alive until the
    cell has exited (run_cell blocks, so the executors' threads do)."""
    # first_step_s counts from here: stamp it now, not when the driver queued the cell.
    if "spawn_wall" in type(job).model_fields:
        job = job.model_copy(update={"spawn_wall": time.time()})
    job_path = cell_dir / "job.json"
    job_path.write_text(job.model_dump_json(indent=2))
    err_path, out_path = cell_dir / "stderr.txt", cell_dir / "stdout.txt"
    error_path = cell_dir / "error.json"
    progress_path = progress.cell_file(job.result_path)
    for stale in (job.result_path, error_path, progress_path):
        stale.unlink(missing_ok=True)  # a resumed cell must not read an old attempt's
    tick = progress.Watcher(progress_path, on_progress).poll if on_progress else lambda: None
    env = dict(env) if env is not None else cell_env(info, job.run.threads, job.run.seed,
                                                      job.run.device)
    if die_with_parent:
        env = tied_to_parent(env)
    t0 = time.perf_counter()
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", entry, str(job_path)],
            env=env, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True,  # own group: kill takes all
        )
        reason = _watch(proc, timeout_s, memory_mb, stop, tick)
    wall = time.perf_counter() - t0
    if reason is None and job.result_path.exists():
        raw = json.loads(job.result_path.read_text())
        return {**raw, "status": raw.get("status", "ok"), "wall_s": wall}
    if error_path.exists():  # the cell caught its own error and said what it was
        reason = json.loads(error_path.read_text())["reason"]
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
