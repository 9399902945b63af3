"""Entry point of one pipeline measurement's own process:
`python -m twinbench.pipelines.child JOB.json`.

As `twinbench.cell.main`: the driver has set the thread variables and KERAS_BACKEND;
here the process pins itself to its CPUs and refuses every framework that neither the
pipeline nor the stack it feeds needs, before anything else is imported.
"""

from __future__ import annotations

import sys

from twinbench.process.child import start, write_json_atomic

FRAMEWORKS = ("torch", "tensorflow", "jax", "keras")


def _refused(raw: dict) -> tuple[str, ...]:
    from twinbench.pipelines import PIPELINES, process_modules
    from twinbench.stacks import stack_info

    stack = stack_info(raw["stack"]) if raw.get("stack") else None
    allowed = process_modules(PIPELINES[raw["pipeline"]], stack)
    return tuple(m for m in FRAMEWORKS if m not in allowed)


def main(job_path: str) -> int:
    raw, blocker = start(job_path, _refused)
    from twinbench.process import guard

    blocked = _refused(raw)
    from twinbench.pipelines.job import PipelineJob
    from twinbench.pipelines.measure import run_job

    job = PipelineJob.model_validate(raw)
    result = run_job(job)
    result["settings"]["foreign_imports_refused"] = blocker.attempts
    result["settings"]["foreign_modules_loaded"] = guard.loaded(blocked)
    write_json_atomic(job.result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
