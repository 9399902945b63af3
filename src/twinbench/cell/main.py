"""Entry point of one cell's own process: `python -m twinbench.cell.main JOB.json`.

Order matters. The driver has already set KERAS_BACKEND and the thread variables in the
environment; here the process dies with its driver, pins itself to its CPUs and installs
the import guard (`process.child.start`) *before* numpy or any framework is imported.
Only stdlib (and twinbench's stdlib-only process core) is imported at module level.
"""

from __future__ import annotations

import sys

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
    if raw["mode"] == "full":
        inject_fault(raw, "start")
    from twinbench.cell.measure import measure
    from twinbench.config import CellJob
    from twinbench.process import guard
    from twinbench.stacks import stack_info

    info, job = stack_info(raw["stack"]), CellJob.model_validate(raw)
    try:
        result = measure(job, info, fault=lambda where: inject_fault(raw, where))
    except Exception as e:  # the driver records the reason; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        write_json_atomic(job.result_path.with_name("error.json"), {"reason": _reason(e, info)})
        return 1
    result["settings"]["foreign_imports_refused"] = blocker.attempts
    result["settings"]["foreign_modules_loaded"] = guard.loaded(info.foreign_modules)
    write_json_atomic(job.result_path, result)
    return 0


def _reason(e: BaseException, info) -> str:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    if isinstance(e, ImportError):
        return f"{info.framework} failed to import: {type(e).__name__}: {first}"
    return f"{type(e).__name__}: {first}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
