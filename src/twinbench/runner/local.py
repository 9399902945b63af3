"""Runs each cell in its own freshly spawned Python process (timed cells one at a time),
over the one process core (`twinbench.process.spawn`)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

from twinbench.config import CellJob
from twinbench.process import progress
from twinbench.process.spawn import process_env, spawn
from twinbench.stacks import StackInfo

CELL_ENTRY = "twinbench.cell.main"  # `python -m twinbench.cell.main JOB.json`


def run_cell(job: CellJob, info: StackInfo | None, cell_dir: Path, timeout_s: float,
             memory_mb: float | None = None, die_with_parent: bool = True,
             entry: str = CELL_ENTRY, env: dict[str, str] | None = None,
             stop: threading.Event | None = None,
             on_progress: Callable[[progress.CellProgress], None] | None = None) -> dict:
    """Spawn the cell (`process.spawn`) and wait. Returns the cell's result dict or a
    `failed` record. `entry` and `env`: another measurement's module and environment
    (pipelines). `on_progress`: gets the phase the cell reports as it changes.

    The cell is SIGKILLed if this process dies (a driver killed with SIGKILL, a Ray worker
    on a lost node), so no orphan cell goes on running. PDEATHSIG follows the spawning
    *thread*: a caller from a worker thread keeps it alive until the cell has exited
    (run_cell blocks, so the executors' threads do)."""
    # first_step_s counts from here: stamp it now, not when the driver queued the cell.
    if "spawn_wall" in type(job).model_fields:
        job = job.model_copy(update={"spawn_wall": time.time()})
    job_path = cell_dir / "job.json"
    job_path.write_text(job.model_dump_json(indent=2))
    err_path, error_path = cell_dir / "stderr.txt", cell_dir / "error.json"
    progress_path = progress.cell_file(job.result_path)
    for stale in (job.result_path, error_path, progress_path):
        stale.unlink(missing_ok=True)  # a resumed cell must not read an old attempt's
    env = dict(env) if env is not None else cell_env(info, job.run.threads, job.run.seed,
                                                      job.run.device)
    done = spawn(entry, job_path, env, timeout_s, memory_mb, stop, on_progress,
                 progress_path, (err_path, cell_dir / "stdout.txt"), what="cell process",
                 tie=die_with_parent)
    reason = done.reason
    if reason is None and job.result_path.exists():
        raw = json.loads(job.result_path.read_text())
        return {**raw, "status": raw.get("status", "ok"), "wall_s": done.wall_s}
    if error_path.exists():  # the cell caught its own error and said what it was
        reason = json.loads(error_path.read_text())["reason"]
    reason = reason or "cell process exited 0 without writing a result"
    return {"status": "failed", "reason": reason, "wall_s": done.wall_s,
            "stderr_tail": done.stderr_tail}


def cell_env(info: StackInfo, threads: int, seed: int, device: str = "cpu") -> dict[str, str]:
    """The cell's environment: set before the interpreter starts, so before any import.
    The stack option onednn sets TF_ENABLE_ONEDNN_OPTS, which TensorFlow reads at import."""
    env = process_env(threads, seed, info.keras_backend, device)
    if info.option("onednn") is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = info.option("onednn")
    return env


def run_probe_batch(jobs: list[CellJob], info: StackInfo, cell_dirs: list[Path],
                    timeout_s: float, memory_mb: float | None = None,
                    stop: threading.Event | None = None) -> list[dict]:
    """Several parity probes of one stack in one process, one after another: the framework
    is imported once instead of once per model family. Probes are untimed, so nothing they
    check depends on a fresh process; the process clears the framework's session between
    them. Returns one result (or `failed` record) per job, in order; a probe the process
    never reached (it crashed on an earlier one) fails with the process's reason."""
    paths = []
    for job, cell_dir in zip(jobs, cell_dirs):
        (cell_dir / "job.json").write_text(job.model_dump_json(indent=2))
        for stale in (job.result_path, cell_dir / "error.json"):
            stale.unlink(missing_ok=True)
        paths.append(str(cell_dir / "job.json"))
    folder = cell_dirs[0].parent
    name = f"probes__{info.name}__t{jobs[0].run.threads}"  # one per stack and thread count
    batch = folder / f"{name}.json"
    batch.write_text(json.dumps({"batch": paths, "stack": info.name, "mode": "probe",
                                 "cpus": list(jobs[0].cpus)}))
    env = cell_env(info, jobs[0].run.threads, jobs[0].run.seed, jobs[0].run.device)
    logs = (folder / f"{name}.stderr.txt", folder / f"{name}.stdout.txt")
    done = spawn(CELL_ENTRY, batch, env, timeout_s * len(jobs), memory_mb, stop, logs=logs,
                 what="probe process")
    return [_batch_result(job, cell_dir, done) for job, cell_dir in zip(jobs, cell_dirs)]


def _batch_result(job: CellJob, cell_dir: Path, done) -> dict:
    if job.result_path.exists():
        raw = json.loads(job.result_path.read_text())
        return {**raw, "status": raw.get("status", "ok")}
    if (cell_dir / "error.json").exists():
        reason = json.loads((cell_dir / "error.json").read_text())["reason"]
    else:
        reason = done.reason or "probe process exited 0 without writing this result"
    return {"status": "failed", "reason": reason, "wall_s": done.wall_s,
            "stderr_tail": done.stderr_tail}
