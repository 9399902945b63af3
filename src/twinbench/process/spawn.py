"""Start and watch one measurement child (a timed cell, a probe, an export or reload
child, a pipeline measurement): its own session and process group, its thread variables
set before its interpreter starts, tied to the driver's life, killed with its whole group
past its time-out or memory limit. The one spawner every measurement uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twinbench.process import progress
from twinbench.process.child import PARENT_ENV

STDERR_TAIL_LINES = 15

# Thread-count variables read by OpenMP, MKL, OpenBLAS, TF and torch at import time.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


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
    point calls `process.child.die_with_parent`, and the kernel kills it with us."""
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


POLL_S = 0.1  # how often the driver checks the child's RSS and exit


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
           tick: Callable[[], None] = lambda: None, what: str = "cell process") -> str | None:
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
                return None if rc == 0 else f"{what} exited with {_describe_rc(rc)}"
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


@dataclass(frozen=True)
class Spawned:
    """How a child ended: why it failed (None: exit 0), its wall time, its stderr's end."""

    reason: str | None
    wall_s: float
    stderr_tail: str


def spawn(module: str, job_path: Path, env: dict[str, str], timeout_s: float,
          memory_mb: float | None = None, stop: threading.Event | None = None,
          on_progress: Callable[[progress.CellProgress], None] | None = None,
          progress_path: Path | None = None, logs: tuple[Path, Path] | None = None,
          what: str = "process", tie: bool = True) -> Spawned:
    """Run `python -m module job_path` tied to this process (unless `tie` is False: the
    Ray worker's own cell), and watch it (`_watch`).
    Logs go to `logs` (stderr, stdout), by default beside the job. `on_progress` gets
    what the child reports in `progress_path` (process/progress.py) as it changes."""
    stem = job_path.with_suffix("")
    err_path, out_path = logs or (Path(f"{stem}.stderr.txt"), Path(f"{stem}.stdout.txt"))
    tick: Callable[[], None] = lambda: None  # noqa: E731
    if on_progress is not None:
        path = progress_path or job_path.parent / progress.FILE
        path.unlink(missing_ok=True)  # an earlier attempt's
        tick = progress.Watcher(path, on_progress).poll
    t0 = time.perf_counter()
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module, str(job_path)],
                                env=tied_to_parent(env) if tie else env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True)  # own group: kill takes all
        reason = _watch(proc, timeout_s, memory_mb, stop, tick, what)
    return Spawned(reason, time.perf_counter() - t0, stderr_tail(err_path))


def _describe_rc(rc: int) -> str:
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"
