"""`twinbench.run(...)`: the Python API that the CLI is a thin layer over."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from twinbench import environment
from twinbench.config import CellJob, RunConfig, available_cpus
from twinbench.data.registry import TASKS, resolve_tasks
from twinbench.parity.compare import compare, load_probe
from twinbench.results import Cell, Results
from twinbench.runner.local import run_cell
from twinbench.stacks import STACKS, missing_modules, resolve_stacks

REFERENCE_STACK = "torch"  # parity reference; falls back to the first stack that ran


class TwinbenchError(ValueError):
    """Bad input: the message is one line that names the valid values."""


@dataclass
class Events:
    """Hooks for a progress display; every one is optional."""

    on_start: Callable[[int], None] = lambda total: None
    on_cell_start: Callable[[str, str], None] = lambda task, stack: None
    on_cell_end: Callable[[Cell], None] = lambda cell: None


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    tasks: list[str]
    stacks: list[str]
    out_dir: Path
    run_id: str
    cpus: tuple[int, ...] = field(default_factory=tuple)


def plan(config: RunConfig) -> Plan:
    try:
        tasks = resolve_tasks(list(config.tasks))
        stacks = resolve_stacks(list(config.stacks))
    except ValueError as e:
        raise TwinbenchError(str(e)) from None
    cpus = available_cpus()
    if config.threads > len(cpus):
        raise TwinbenchError(f"--threads {config.threads} exceeds the {len(cpus)} CPUs "
                             f"this process may use; valid: 1..{len(cpus)}")
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(config.out) if config.out else Path("runs") / run_id
    return Plan(config, tasks, stacks, out_dir, run_id, tuple(cpus[: config.threads]))


def skipped_cell(task: str, stack: str) -> Cell | None:
    missing = missing_modules(STACKS[stack])
    if not missing:
        return None
    extra = STACKS[stack].extra
    return Cell(task=task, model=TASKS[task].model, stack=stack, status="skipped",
                reason=f"{', '.join(missing)} not installed: pip install 'twinbench[{extra}]'")


def execute_cell(p: Plan, task: str, stack: str, mode: str = "full") -> Cell:
    cell_dir = p.out_dir / "cells" / f"{task}__{stack}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    job = CellJob(task=task, model=TASKS[task].model, stack=stack, run=p.config,
                  cpus=p.cpus, spawn_wall=time.time(), result_path=cell_dir / "result.json",
                  parity_path=cell_dir / "probe.npz", mode=mode)
    raw = run_cell(job, STACKS[stack], cell_dir, p.config.cell_timeout_s)
    return Cell(task=task, model=job.model, stack=stack, **raw)


def check_parity(results: Results, out_dir: Path) -> None:
    """Compare every ok cell's probe with the reference stack's, per task."""
    for task in {c.task for c in results.cells}:
        ok = [c for c in results.cells if c.task == task and c.status == "ok"
              and "probe_path" in c.parity]
        if len(ok) < 2:
            continue
        ref = next((c for c in ok if c.stack == REFERENCE_STACK), ok[0])
        ref_probe = load_probe(Path(ref.parity["probe_path"]))
        for c in ok:
            checks = compare(load_probe(Path(c.parity["probe_path"])), ref_probe)
            c.parity.update({"reference": ref.stack, "checks": checks,
                             "pass": all(v["pass"] for v in checks.values())})


def run(config: RunConfig | None = None, events: Events | None = None,
        mode: str = "full", planned: Plan | None = None, **overrides: Any) -> Results:
    """Run the cells of `config` (or of RunConfig(**overrides)); one process per cell.
    mode="probe" only builds each twin and records its parity probe (fast).

    results.json is rewritten after every cell, so a crash never loses finished cells.
    """
    config = config or RunConfig(**overrides)
    events = events or Events()
    p = planned or plan(config)
    p.out_dir.mkdir(parents=True, exist_ok=True)
    results = Results(run_id=p.run_id, environment=environment.capture(),
                      config=config.model_dump(mode="json"))
    cells = [(t, s) for t in p.tasks for s in p.stacks]
    events.on_start(len(cells))
    for task, stack in cells:
        events.on_cell_start(task, stack)
        cell = skipped_cell(task, stack) or execute_cell(p, task, stack, mode)
        results.cells.append(cell)
        results.write(p.out_dir)
        events.on_cell_end(cell)
    check_parity(results, p.out_dir)
    results.write(p.out_dir)
    return results
