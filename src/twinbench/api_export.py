"""Portability, measured: `twinbench.api_export.export_matrix(...)`.

For every (model, stack) cell: one process trains the twin and exports every format its
stack offers (`twinbench.export.child`); then each artifact is reloaded in each of its
runtimes (Python's, and JavaScript, Java and C++ harnesses in runtimes/ where the format has
one: `twinbench.export.foreign`) in a fresh process (`twinbench.export.reload`) and
compared with the source twin's logits. A harness not installed here is `skipped`. A
format that fails to export or reload is an entry with status `failed`, the first line of
the error and the versions involved; a crash never stops the matrix.
Writes `<out>/export.json` (the Results schema; each cell holds a `portability` list).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from twinbench.errors import TwinbenchError
from twinbench.plan import Events, Plan, plan
from twinbench.results import CellKey
from twinbench.runner.prepare import data_path, new_results, prepare_data, skipped_cell
from twinbench.config import RunConfig
from twinbench.data.registry import TASKS
from twinbench.export import foreign
from twinbench.export.formats import RUNTIMES, Format, resolve_formats, selected
from twinbench.export.jobs import ExportJob, ReloadJob
from twinbench.export.spawn import child_env, spawn
from twinbench.results import Cell, Results
from twinbench.process.progress import CellProgress
from twinbench.stacks import stack_info


def check_formats(config: RunConfig) -> list[str]:
    try:
        return resolve_formats(list(config.export_formats))
    except ValueError as e:
        raise TwinbenchError(str(e)) from None


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _export_failure(fmt: Format, manifest: dict, why: str) -> dict:
    """The entry of a format whose export process died before or while exporting it."""
    at = manifest.get("in_progress")
    if at == fmt.name:
        reason = f"export process died while exporting it: {why}"
    elif at or manifest.get("status") == "exporting":
        reason = f"not attempted: the export process died while exporting {at}: {why}"
    else:
        reason = f"not attempted: the export process failed before exporting: {why}"
    return {"status": "failed", "stage": "export", "reason": reason}


def reload_entry(p: Plan, job: ExportJob, fmt: Format, runtime: str, exported: dict) -> dict:
    """Reload one exported artifact in one runtime, in a fresh process."""
    folder = job.cell_dir / fmt.name
    if runtime != fmt.runtime:  # a harness in another language: its files apart
        folder = folder / runtime
        folder.mkdir(exist_ok=True)
    rjob = ReloadJob(format=fmt.name, runtime=runtime, artifact=Path(exported["artifact"]),
                     input_path=job.cell_dir / "input.npy",
                     source_path=job.cell_dir / "source.npy",
                     input_dtype=exported["input_dtype"], model=job.model,
                     data_path=job.data_path, keras_backend=stack_info(job.stack).keras_backend,
                     run=job.run, cpus=job.cpus, result_path=folder / "reload_result.json")
    job_path = folder / "reload_job.json"
    job_path.write_text(rjob.model_dump_json(indent=2))
    keras_backend = rjob.keras_backend if runtime == "keras" else None
    why, wall, tail = spawn("twinbench.export.reload", job_path,
                            child_env(job.run.threads, job.run.seed, keras_backend),
                            p.config.cell_timeout_s, memory_mb=p.config.cell_memory_mb)
    result = _read(rjob.result_path) if why is None else None
    if result is None:
        return {"status": "failed", "stage": "reload",
                "reason": f"reload {why or 'exited 0 without a result'}", "stderr_tail": tail}
    result["reload_wall_s"] = wall
    return verdict(result, p.config.export_tolerance)


def verdict(result: dict, tolerance: float) -> dict:
    """A reload that ran is `ok` only if its logits are within tolerance, at batch 1 and
    in one batch; otherwise `mismatch` (a NaN included), which is worse than `failed`."""
    if result["status"] == "failed":
        return {**result, "stage": "reload"}
    diffs = [result["max_abs_diff"], result["batch_n"].get("max_abs_diff", 0.0)]
    bad = [d for d in diffs if not d <= tolerance]
    if bad:
        return {**result, "status": "mismatch",
                "reason": f"max abs diff {bad[0]:.2e} > tolerance {tolerance:g}"}
    return result


def entry(p: Plan, job: ExportJob, fmt: Format, runtime: str, manifest: dict,
          why: str | None) -> dict:
    """One (format, runtime) entry: export failure, `skipped` (a harness not installed
    here), or the reload's verdict."""
    head = {"format": fmt.name, "runtime": runtime, "language": RUNTIMES[runtime].language,
            "loads_with": RUNTIMES[runtime].loads_with,
            "tolerance": p.config.export_tolerance}
    exported = manifest.get("formats", {}).get(fmt.name)
    if exported is None:
        return {**head, **_export_failure(fmt, manifest, why or "no result")}
    info = {k: v for k, v in exported.items() if k not in ("status", "reason")}
    if exported["status"] == "failed":
        return {**head, **info, "status": "failed", "stage": "export",
                "reason": exported["reason"]}
    info["artifact"] = str(Path(exported["artifact"]).relative_to(p.out_dir.resolve()))
    missing = foreign.unavailable(runtime) if runtime in foreign.HARNESSES else None
    if missing:
        return {**head, **info, "status": "skipped", "reason": missing}
    reloaded = reload_entry(p, job, fmt, runtime, exported)
    versions = {**info.pop("versions"), **reloaded.pop("runtime_versions", {})}
    return {**head, **info, **reloaded, "versions": versions}


def export_cell(p: Plan, key: CellKey, data: dict[str, Path], formats: list[str],
                on_progress: Callable[[CellProgress], None] = lambda progress: None) -> Cell:
    task, dataset, model, stack = key[:4]  # one export per twin, whatever the repeats
    skipped = skipped_cell(task, stack, model)
    if skipped:
        skipped.dataset = dataset
        return skipped
    cell_dir = (p.out_dir / "export" / f"{task}__{dataset}__{model}__{stack}").resolve()
    cell_dir.mkdir(parents=True, exist_ok=True)
    run = p.config.model_copy(update={"batch_size": p.config.batch_size
                                      or TASKS[task].batch_size})
    job = ExportJob(task=task, dataset=dataset, model=model, stack=stack, run=run,
                    data_path=data_path(data, dataset, model).resolve(), cpus=p.cpus,
                    formats=tuple(formats),
                    cell_dir=cell_dir)
    job_path = cell_dir / "export_job.json"
    job_path.write_text(job.model_dump_json(indent=2))
    why, wall, tail = spawn("twinbench.export.child", job_path,
                            child_env(run.threads, run.seed, stack_info(stack).keras_backend),
                            p.config.cell_timeout_s, on_progress,
                            memory_mb=p.config.cell_memory_mb)
    manifest = _read(cell_dir / "manifest.json") or {}
    extra: dict[str, Any] = {"stderr_tail": tail} if why else {}
    source = manifest.get("source", {})
    return Cell(task=task, dataset=dataset, model=model, stack=stack,
                status="failed" if why else "ok", reason=why and f"export {why}",
                params=manifest.get("params"), wall_s=wall, settings=manifest.get("settings", {}),
                metrics={"accuracy": manifest.get("accuracy"), **source},
                portability=reload_all(p, job, manifest, why, formats, on_progress),
                **extra)


def reload_all(p: Plan, job: ExportJob, manifest: dict, why: str | None, formats: list[str],
               on_progress: Callable[[CellProgress], None]) -> list[dict]:
    """Every (format, runtime) entry (`entry`), announced as it starts."""
    pairs = [(fmt, rt) for fmt in selected(job.stack, formats) for rt in fmt.runtimes]
    out = []
    for k, (fmt, runtime) in enumerate(pairs, 1):
        on_progress(CellProgress("reload", detail=f"{fmt.name} in {runtime}", step=k,
                                 steps=len(pairs), at=time.time()))
        out.append(entry(p, job, fmt, runtime, manifest, why))
    return out


def export_matrix(config: RunConfig | None = None, events: Events | None = None,
                  planned: Plan | None = None, data: dict[str, Path] | None = None,
                  **overrides: Any) -> Results:
    """Export every twin of `config` (its models on their probe task, every stack) to every
    format it offers, reload each artifact in its runtime and compare; `<out>/export.json`."""
    config = config or RunConfig(**overrides)
    formats = check_formats(config)
    p = planned or plan(config, models=list(config.models))
    p.out_dir.mkdir(parents=True, exist_ok=True)
    data = data or prepare_data(p)
    events = events or Events()
    results = new_results(p)
    events.on_start(len(p.probe_cells()), "export and reload")
    for key in p.probe_cells():
        events.on_cell_start(f"{key[0]}/{key[1]}/{key[2]}", key[3])
        shown = lambda pr, k=key: events.on_cell_progress(  # noqa: E731
            f"{k[0]}/{k[1]}/{k[2]}", k[3], pr)
        results.cells.append(export_cell(p, key, data, formats, shown))
        results.write(p.out_dir, "export.json")
        events.on_cell_end(results.cells[-1])
    return results


def attach(results: Results, exported: Results) -> None:
    """`run --export`: copy each twin's portability entries onto its timed cell."""
    by_key = {(c.task, c.dataset, c.model, c.stack): c for c in exported.cells}
    for c in results.cells:
        e = by_key.get((c.task, c.dataset, c.model, c.stack))
        if e is not None:
            c.portability = getattr(e, "portability", None) or []
            if e.status != "ok":
                c.portability_error = e.reason
