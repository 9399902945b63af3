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


def _inject_fault(stack: str, where: str) -> None:
    """Test hook: TWINBENCH_FAULT="<stack>:<kind>[@<where>]" makes this cell misbehave."""
    spec = os.environ.get("TWINBENCH_FAULT", "")
    target, _, kind = spec.partition(":")
    kind, _, at = kind.partition("@")
    if target != stack or (at or "train") != where:
        return
    print(f"twinbench: injected fault {kind!r} at {where}", file=sys.stderr, flush=True)
    if kind == "crash":
        os.abort()
    if kind == "hang":
        time.sleep(10**6)
    if kind == "exit":
        os._exit(3)
    raise RuntimeError(f"injected fault {kind!r}")


def main(job_path: str) -> int:
    raw = json.loads(Path(job_path).read_text())
    os.sched_setaffinity(0, raw["cpus"])  # before any import that starts a thread pool
    from twinbench.runner import guard
    from twinbench.stacks import STACKS

    info = STACKS[raw["stack"]]
    blocker = guard.install(info.foreign_modules)

    from twinbench.config import CellJob
    from twinbench.runner.measure_cell import measure

    job = CellJob.model_validate(raw)
    result = measure(job, info, fault=lambda where: _inject_fault(job.stack, where))
    result["settings"]["foreign_imports_refused"] = blocker.attempts
    result["settings"]["foreign_modules_loaded"] = guard.loaded(info.foreign_modules)
    tmp = job.result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(job.result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
