"""Entry point of one cell's own process: `python -m twinbench.cell.main JOB.json`.

Order matters. The driver has already set KERAS_BACKEND and the thread variables in the
environment; here the process dies with its driver, pins itself to its CPUs and installs
the import guard (`process.child.start`) *before* numpy or any framework is imported.
Only stdlib (and twinbench's stdlib-only process core) is imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from twinbench.process.child import faults, inject_fault, start, write_json_atomic


def _refused(raw: dict) -> tuple[str, ...]:
    """The frameworks this cell's process must not import: the other stacks' (and, for the
    fault test `import`, its own, as a framework that fails to import)."""
    from twinbench.stacks import stack_info

    info = stack_info(raw["stack"])
    if raw["mode"] == "full" and "import" in faults(raw, "start"):
        return info.foreign_modules + info.modules
    return info.foreign_modules


def main(job_path: str) -> int:
    raw, blocker = start(job_path, _refused)
    if "batch" in raw:  # several parity probes of one stack (runner.local.run_probe_batch)
        return max(_one(json.loads(Path(p).read_text()), blocker, k > 0)
                   for k, p in enumerate(raw["batch"]))
    if raw["mode"] == "full":
        inject_fault(raw, "start")
    return _one(raw, blocker)


def _one(raw: dict, blocker, fresh_session: bool = False) -> int:
    """Measure one cell and write its result (or its error) beside its job."""
    import time

    from twinbench.cell.measure import measure
    from twinbench.config import CellJob
    from twinbench.process import guard
    from twinbench.stacks import stack_info

    if fresh_session:
        _clear_sessions()
    info, job = stack_info(raw["stack"]), CellJob.model_validate(raw)
    t0 = time.perf_counter()
    try:
        result = measure(job, info, fault=lambda where: inject_fault(raw, where))
    except Exception as e:  # the driver records the reason; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        write_json_atomic(job.result_path.with_name("error.json"), {"reason": _reason(e, info)})
        return 1
    result["settings"]["foreign_imports_refused"] = blocker.attempts
    result["settings"]["foreign_modules_loaded"] = guard.loaded(info.foreign_modules)
    result["wall_s"] = time.perf_counter() - t0
    write_json_atomic(job.result_path, result)
    return 0


def _clear_sessions() -> None:
    """Between two probes in one process: Keras's global state (name uniquing, graphs) and
    torch.compile's caches start afresh, as in a new process."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    if "torch._dynamo" in sys.modules:
        sys.modules["torch._dynamo"].reset()


def _reason(e: BaseException, info) -> str:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    if isinstance(e, ImportError):
        return f"{info.framework} failed to import: {type(e).__name__}: {first}"
    return f"{type(e).__name__}: {first}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
