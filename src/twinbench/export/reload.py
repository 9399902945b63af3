"""Entry point of one reload process: `python -m twinbench.export.reload JOB.json`.

One artifact, one runtime, a fresh interpreter that may import that runtime only (the
guard refuses other frameworks and records the attempts). A runtime in another language
runs as its harness's own process under this one (`foreign`), which imports no framework.
Records the runtime's import time, the load time, the first call, the max abs diff of the
logits against the source twin's (batch 1, sample by sample, and the whole batch in one
call where the artifact's batch is dynamic) and the batch-1 latency percentiles.
"""

from __future__ import annotations

import sys
import time

from twinbench.process.child import start, write_json_atomic

FRAMEWORKS = ("torch", "tensorflow", "jax", "keras")



def allowed_modules(runtime: str, keras_backend: str | None) -> tuple[str, ...]:
    from twinbench.export.formats import RUNTIMES

    extra = (keras_backend,) if runtime == "keras" and keras_backend else ()
    return (*RUNTIMES[runtime].modules, *extra)


def compare(fn, x, source) -> dict:
    """Logits sample by sample at batch 1 (what the latency times), then in one call."""
    import numpy as np

    from twinbench.export.jobs import first_line

    t0 = time.perf_counter()
    first = fn(x[:1])
    out = {"first_call_ms": (time.perf_counter() - t0) * 1e3}
    ones = np.concatenate([first, *[fn(x[i:i + 1]) for i in range(1, len(x))]])
    out["max_abs_diff"] = float(np.max(np.abs(ones.astype(np.float64) - source)))
    try:
        whole = fn(x)
        out["batch_n"] = {"n": len(x), "max_abs_diff": float(np.max(np.abs(
            whole.astype(np.float64) - source)))}
    except Exception as e:  # noqa: BLE001 (a static batch of 1 is a finding, not a failure)
        out["batch_n"] = {"n": len(x), "error": first_line(e)}
    return out


def measure(job, result: dict) -> None:
    import importlib

    import numpy as np

    from twinbench.export import loaders
    from twinbench.measure.stats import percentiles
    from twinbench.measure.timing import time_calls

    result["failed_at"] = "import"
    t0 = time.perf_counter()
    importlib.import_module(loaders.IMPORTS[job.runtime])
    result["import_s"] = time.perf_counter() - t0
    result["failed_at"] = "load"
    t0 = time.perf_counter()
    fn, declared, result["runtime_settings"] = loaders.LOADERS[job.runtime](job.artifact, job)
    result["load_s"] = time.perf_counter() - t0
    result["failed_at"] = "run"
    dtype = declared or job.input_dtype
    x = np.ascontiguousarray(np.load(job.input_path).astype(dtype))  # ids: lossless cast
    result["input_dtype"] = dtype
    result.update(compare(fn, x, np.load(job.source_path).astype(np.float64)))
    ms = time_calls(lambda: fn(x[:1]), job.run.latency_calls, job.run.latency_warmup,
                    job.run.latency_budget_s)
    result["latency_b1_ms"] = {**percentiles(ms), "calls": len(ms),
                               "budget_hit": len(ms) < job.run.latency_calls}
    del result["failed_at"]


def _refused(raw: dict) -> tuple[str, ...]:
    allowed = allowed_modules(raw["runtime"], raw.get("keras_backend"))
    return tuple(m for m in FRAMEWORKS if m not in allowed)


def main(job_path: str) -> int:
    raw, blocker = start(job_path, _refused)
    from twinbench.export import foreign
    from twinbench.process import guard
    from twinbench.export.formats import RUNTIMES, versions
    from twinbench.export.jobs import ReloadJob, error_text, first_line
    from twinbench.stacks import DISTRIBUTIONS

    job = ReloadJob.model_validate(raw)
    packages = RUNTIMES[job.runtime].packages
    if job.runtime == "keras" and job.keras_backend:
        packages += (DISTRIBUTIONS.get(job.keras_backend, job.keras_backend),)
    result: dict = {"runtime_versions": versions(packages)}
    try:
        (foreign.measure if job.runtime in foreign.HARNESSES else measure)(job, result)
        result["status"] = "ok"
    except foreign.HarnessError as e:  # its own line, already without a trace
        result.update(status="failed", failed_at=e.stage, reason=str(e), error=str(e))
    except Exception as e:  # noqa: BLE001 (a runtime that rejects the artifact is a result)
        result.update(status="failed", reason=first_line(e), error=error_text(e))
    result["foreign_imports_refused"] = list(blocker.attempts)
    result["frameworks_loaded"] = guard.loaded(FRAMEWORKS)
    write_json_atomic(job.result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
