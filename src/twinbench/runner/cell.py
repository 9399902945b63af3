"""Entry point of one cell's own process: `python -m twinbench.runner.cell JOB.json`.

Order matters. The driver has already set KERAS_BACKEND and the thread variables in the
environment; here the process pins itself to its CPUs and installs the import guard
*before* numpy or any framework is imported. Only stdlib is imported at module level.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


TESTING_ENV = "TWINBENCH_TESTING"
# Variables that change what a run does, for the tests only; the environment capture
# records any that is set (twinbench.environment).
TEST_HOOKS = (TESTING_ENV, "TWINBENCH_FAULT", "TWINBENCH_EXPORT_FAULT", "TWINBENCH_FIXTURES")


def testing_hook(name: str) -> str:
    """The value of the fault-injection variable `name`, or "" unless TWINBENCH_TESTING=1
    is set too: a TWINBENCH_FAULT left in a shell must never crash a real run's cells."""
    return os.environ.get(name, "") if os.environ.get(TESTING_ENV) == "1" else ""


def _faults(raw: dict, where: str) -> list[str]:
    """Test hook. TWINBENCH_FAULT is a comma-separated list of `<target>:<kind>[@<where>]`
    where target is a stack name, or `<stack>#<repeat>` for one repeat of it, and where is
    train (default, after build), probe, or start (a full cell, before any import). Acts
    only with TWINBENCH_TESTING=1 (see testing_hook)."""
    kinds = []
    for spec in filter(None, testing_hook("TWINBENCH_FAULT").split(",")):
        target, _, kind = spec.partition(":")
        kind, _, at = kind.partition("@")
        if target in (raw["stack"], f"{raw['stack']}#{raw.get('repeat', 0)}") and \
                (at or "train") == where:
            kinds.append(kind)
    return kinds


def _inject_fault(raw: dict, where: str) -> None:
    for kind in _faults(raw, where):
        if kind == "import":
            continue  # handled by the import guard in main()
        print(f"twinbench: injected fault {kind!r} at {where}", file=sys.stderr, flush=True)
        if kind == "crash":
            os.abort()
        if kind == "hang":
            time.sleep(10**6)
        if kind == "exit":
            os._exit(3)
        if kind == "kill":  # as the OOM killer or a user's kill -9 would
            os.kill(os.getpid(), 9)
        if kind == "memory":  # grow RSS until the driver's --cell-memory-mb watch kills us
            hog = []
            while True:
                hog.append(b"\x01" * (50 * 2**20))  # written bytes: real RSS, not calloc
                time.sleep(0.05)
        raise RuntimeError(f"injected fault {kind!r}")


def die_with_parent() -> None:
    """Linux: with TWINBENCH_DIE_WITH_PARENT=<pid> (set by `runner.local.tied_to_parent`),
    the kernel SIGKILLs this process when its parent dies. A driver killed with SIGKILL,
    or a Ray worker lost with its node, then leaves no child running alone, which would
    disturb the next measurement on the machine. Called first by every child entry point
    (cells, export, reload, pipeline measurements); stdlib only."""
    parent = os.environ.get("TWINBENCH_DIE_WITH_PARENT")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(1)


def main(job_path: str) -> int:
    die_with_parent()
    raw = json.loads(Path(job_path).read_text())
    os.sched_setaffinity(0, raw["cpus"])  # before any import that starts a thread pool
    from twinbench.runner import guard
    from twinbench.stacks import stack_info

    info = stack_info(raw["stack"])
    refused = info.foreign_modules
    if raw["mode"] == "full" and "import" in _faults(raw, "start"):
        refused = refused + info.modules  # a framework that fails to import
    if raw["mode"] == "full":
        _inject_fault(raw, "start")
    blocker = guard.install(refused)

    from twinbench.config import CellJob
    from twinbench.runner.measure_cell import measure

    job = CellJob.model_validate(raw)
    try:
        result = measure(job, info, fault=lambda where: _inject_fault(raw, where))
    except Exception as e:  # the driver records the reason; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        write_json_atomic(job.result_path.with_name("error.json"), {"reason": _reason(e, info)})
        return 1
    result["settings"]["foreign_imports_refused"] = blocker.attempts
    result["settings"]["foreign_modules_loaded"] = guard.loaded(info.foreign_modules)
    write_json_atomic(job.result_path, result)
    return 0


def write_json_atomic(path: Path, obj: dict) -> None:
    """Temp file, then rename: a reader never sees half a file. Shared by every child
    process (cells, export, reload, pipelines); stdlib only, so safe before any import."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)


def _reason(e: BaseException, info) -> str:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    if isinstance(e, ImportError):
        return f"{info.framework} failed to import: {type(e).__name__}: {first}"
    return f"{type(e).__name__}: {first}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
