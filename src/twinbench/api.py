"""The Python API that the CLI is a thin layer over: `twinbench.run(...)` and
`twinbench.api.verify(...)`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from twinbench import environment
from twinbench.config import CellJob, RunConfig, available_cpus
from twinbench.data.download import DataError
from twinbench.data.registry import TASKS, load_dataset, resolve_dataset, resolve_tasks
from twinbench.data.registry import TaskInfo
from twinbench.models import resolve_models, spec_module
from twinbench.parity.compare import QUICK_CHECKS, compare, first_failure, load_probe
from twinbench.results import Cell, Results
from twinbench.runner.local import run_cell
from twinbench.stacks import STACKS, missing_modules, resolve_stacks

REFERENCE_STACK = "torch"  # parity reference; falls back to the first stack that ran


class TwinbenchError(ValueError):
    """Bad input: the message is one line that names the valid values."""


@dataclass
class Events:
    """Hooks for a progress display; every one is optional."""

    on_start: Callable[[int, str], None] = lambda total, phase: None
    on_cell_start: Callable[[str, str], None] = lambda task, stack: None
    on_cell_end: Callable[[Cell], None] = lambda cell: None


CellKey = tuple[str, str, str, str]  # (task, dataset, model, stack)


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    cells: list[CellKey]
    out_dir: Path
    run_id: str
    cpus: tuple[int, ...]


def _validated(fn: Callable, names: list[str]) -> list[str]:
    try:
        return fn(names)
    except ValueError as e:
        raise TwinbenchError(str(e)) from None


def task_info(config: RunConfig, task: str) -> TaskInfo:
    """A task's definition: the run's suite's when it has one, else the built-in one."""
    return config.suite.task(task).info() if config.suite is not None else TASKS[task]


def _task_names(config: RunConfig) -> list[str]:
    """The run's task names: built-in tasks and groups, or the suite's tasks."""
    if config.suite is None:
        return _validated(resolve_tasks, list(config.tasks))
    names = list(dict.fromkeys(config.tasks))
    try:
        for name in names:
            config.suite.task(name)
    except ValueError as e:
        raise TwinbenchError(str(e)) from None
    return names


def task_models(config: RunConfig) -> list[tuple[str, str, str]]:
    """(task, dataset, model) for every task, with --dataset and --models applied."""
    out = []
    models = _validated(resolve_models, list(config.models)) if config.models else []
    for task in _task_names(config):
        info = task_info(config, task)
        kind = info.kind
        dataset = _validated(lambda d, t=task, i=info: resolve_dataset(t, d, i), config.dataset)
        for m in models or [info.model]:
            if spec_module(m).KIND != kind:
                fit = [f for f in resolve_models(None) if spec_module(f).KIND == kind]
                raise TwinbenchError(f"model {m!r} does not fit task {task!r} ({kind}); "
                                     f"valid: {', '.join(fit)}")
            out.append((task, dataset, m))
    return out


def plan(config: RunConfig, models: list[str] | None = None) -> Plan:
    """Validate every name and the thread count; decide the cells and the output folder.
    With `models`, the cells are those models on their probe task (for `verify`)."""
    stacks = _validated(resolve_stacks, list(config.stacks))
    if models is not None:
        triples = []
        for m in _validated(resolve_models, models):
            task = spec_module(m).PROBE_TASK
            probe_data = getattr(spec_module(m), "PROBE_DATASET", None)
            triples.append((task, resolve_dataset(task, probe_data), m))
    else:
        triples = task_models(config)
    cpus = available_cpus()
    if config.threads > len(cpus):
        raise TwinbenchError(f"--threads {config.threads} exceeds the {len(cpus)} CPUs "
                             f"this process may use; valid: 1..{len(cpus)}")
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(config.out) if config.out else Path("runs") / run_id
    cells = [(t, d, m, s) for t, d, m in triples for s in stacks]
    return Plan(config, cells, out_dir, run_id, tuple(cpus[: config.threads]))


def skipped_cell(task: str, stack: str, model: str | None = None) -> Cell | None:
    missing = missing_modules(STACKS[stack])
    if not missing:
        return None
    extra = STACKS[stack].extra
    return Cell(task=task, model=model or TASKS[task].model, stack=stack, status="skipped",
                reason=f"{', '.join(missing)} not installed: pip install 'twinbench[{extra}]'")


def prepare_data(p: Plan) -> dict[str, Path]:
    """Load, split and encode each data set once, in the driver: every cell then reads
    the same arrays, and a bad or missing file stops the run before any cell starts."""
    paths: dict[str, Path] = {}
    (p.out_dir / "data").mkdir(parents=True, exist_ok=True)
    for dataset in dict.fromkeys(key[1] for key in p.cells):
        try:
            data = load_dataset(dataset, p.config.seed, p.config.data_dir, p.config.holdout)
        except DataError as e:
            raise TwinbenchError(str(e)) from None
        paths[dataset] = p.out_dir / "data" / f"{dataset}.npz"
        data.save(paths[dataset])
    return paths


def execute_cell(p: Plan, cell: CellKey, data: dict[str, Path], mode: str,
                 level: str = "quick", folder: str = "cells") -> Cell:
    task, dataset, model, stack = cell
    skipped = skipped_cell(task, stack, model)
    if skipped:
        skipped.dataset = dataset
        return skipped
    cell_dir = p.out_dir / folder / f"{task}__{dataset}__{model}__{stack}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    info = task_info(p.config, task)
    run = p.config.model_copy(update={"epochs": p.config.epochs or info.epochs,
                                      "batch_size": p.config.batch_size or info.batch_size})
    job = CellJob(task=task, dataset=dataset, model=model, stack=stack, run=run,
                  data_path=data[dataset], cpus=p.cpus,
                  spawn_wall=time.time(), result_path=cell_dir / "result.json",
                  parity_path=cell_dir / "probe.npz", mode=mode, parity_level=level,
                  target_accuracy=info.target_accuracy, target_source=info.target_source)
    raw = run_cell(job, STACKS[stack], cell_dir, p.config.cell_timeout_s)
    return Cell(task=task, dataset=dataset, model=model, stack=stack, **raw)


def check_parity(cells: list[Cell]) -> None:
    """Compare every probed cell with the reference stack's probe of the same model."""
    for key in {(c.task, c.dataset, c.model) for c in cells}:
        ok = [c for c in cells if (c.task, c.dataset, c.model) == key and c.status == "ok"
              and "probe_path" in c.parity]
        if not ok:
            continue
        ref = next((c for c in ok if c.stack == REFERENCE_STACK), ok[0])
        ref_probe = load_probe(Path(ref.parity["probe_path"]))
        for c in ok:
            checks = {"param_count": {"value": abs(c.params - ref.params), "tolerance": 0,
                                      "pass": c.params == ref.params},
                      **compare(load_probe(Path(c.parity["probe_path"])), ref_probe,
                                getattr(spec_module(c.model), "PARITY_TOLERANCES", None))}
            c.parity.update({"reference": ref.stack, "checks": checks,
                             "pass": all(v["pass"] for v in checks.values()),
                             "failure": first_failure(checks)})


def _execute_all(p: Plan, results: Results, events: Events, data: dict[str, Path],
                 mode: str, level: str, folder: str,
                 after: Callable[[Cell], None] = lambda cell: None) -> None:
    events.on_start(len(p.cells), "parity probes" if mode == "probe" else "timed cells")
    for cell in p.cells:
        events.on_cell_start(f"{cell[0]}/{cell[1]}/{cell[2]}", cell[3])
        results.cells.append(execute_cell(p, cell, data, mode, level, folder))
        after(results.cells[-1])
        results.write(p.out_dir, results_name(folder))
        events.on_cell_end(results.cells[-1])


def results_name(folder: str) -> str:
    return "results.json" if folder == "cells" else f"{folder}.json"


def new_results(p: Plan) -> Results:
    return Results(run_id=p.run_id, environment=environment.capture(),
                   config=p.config.model_dump(mode="json"))


def verify(config: RunConfig | None = None, models: list[str] | None = None,
           events: Events | None = None, planned: Plan | None = None, level: str = "full",
           **overrides: Any) -> Results:
    """Build every twin from the canonical weights and run the parity checks; writes
    `<out>/verify.json`. No timing, no training beyond the parity steps."""
    config = config or RunConfig(**overrides)
    p = planned or plan(config, models=models or [])
    p.out_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(p)
    results = new_results(p)
    _execute_all(p, results, events or Events(), data, "probe", level, "verify")
    check_parity(results.cells)
    results.write(p.out_dir, "verify.json")
    return results


def attach_parity(c: Cell, probes: list[Cell]) -> None:
    """Copy the probe's verdict onto its timed cell; a failed check marks it unverified."""
    key = (c.task, c.dataset, c.model, c.stack)
    probe = next((p for p in probes if (p.task, p.dataset, p.model, p.stack) == key), None)
    if probe is None or c.status != "ok":
        return
    if probe.status != "ok":
        c.parity = {"pass": False, "failure": f"parity probe {probe.status}: {probe.reason}"}
    else:
        c.parity = {**probe.parity, "checks_run": list(QUICK_CHECKS)}
    if not c.parity.get("pass", False):
        c.status, c.reason = "unverified", c.parity["failure"]


def run(config: RunConfig | None = None, events: Events | None = None,
        planned: Plan | None = None, **overrides: Any) -> Results:
    """Run every cell of `config` (or of RunConfig(**overrides)), one process per cell.

    First the forward and gradient parity checks (a quick probe of each twin), then the
    timed cells. results.json is rewritten after every cell: a crash loses nothing done.
    """
    config = config or RunConfig(**overrides)
    events = events or Events()
    p = planned or plan(config)
    p.out_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(p)
    probes = new_results(p)
    _execute_all(p, probes, events, data, "probe", "quick", "verify")
    check_parity(probes.cells)
    probes.write(p.out_dir, "verify.json")
    results = new_results(p)
    _execute_all(p, results, events, data, "full", "quick", "cells",
                 after=lambda cell: attach_parity(cell, probes.cells))
    return results
