"""The Python API that the CLI is a thin layer over: `twinbench.run(...)` and
`twinbench.api.verify(...)`."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from twinbench import environment
from twinbench.byo import plan as byo_plan
from twinbench.config import CellJob, RunConfig, available_cpus
from twinbench.data.download import DataError
from twinbench.data.registry import TASKS, load_dataset, resolve_dataset, resolve_tasks
from twinbench.data.registry import TaskInfo
from twinbench.models import resolve_models, spec_module
from twinbench.parity.compare import QUICK_CHECKS, compare, first_failure, load_probe
from twinbench.results import Cell, Results
from twinbench.runner.executor import CellKey, Executor, LocalExecutor, Submission
from twinbench.runner.progress import CellProgress
from twinbench.stacks import missing_modules, resolve_stacks, stack_info
from twinbench.store.db import FINAL, Recorder, Store, default_db_path, one_line

REFERENCE_STACK = "torch"  # parity reference; falls back to the first stack that ran


class TwinbenchError(ValueError):
    """Bad input: the message is one line that names the valid values."""


@dataclass
class Events:
    """Hooks for a progress display; every one is optional."""

    on_start: Callable[[int, str], None] = lambda total, phase: None
    on_cell_start: Callable[[str, str], None] = lambda task, stack: None
    on_cell_end: Callable[[Cell], None] = lambda cell: None
    on_warning: Callable[[str], None] = lambda message: None
    # The running cell's phase (train epoch k/n with an ETA, latency, LoadGen...), as the
    # cell reports it; repeated about once a second so a shown ETA counts down.
    on_cell_progress: Callable[[str, str, CellProgress], None] = \
        lambda task, stack, progress: None


class Interrupted(RuntimeError):
    """Ctrl-C, SIGTERM or SIGHUP stopped the run; what finished is in the run folder (and
    the store). The message says how to resume (and import, if the store failed)."""


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    cells: list[CellKey]  # in execution order: repeats outermost, stacks rotated
    out_dir: Path
    run_id: str
    cpus: tuple[int, ...]

    def probe_cells(self) -> list[CellKey]:
        """One parity probe per twin: the first repeat's cells."""
        return [c for c in self.cells if c[4] == 0]


def _validated(fn: Callable, names: list[str]) -> list[str]:
    try:
        return fn(names)
    except ValueError as e:
        raise TwinbenchError(str(e)) from None


def task_info(config: RunConfig, task: str) -> TaskInfo:
    """A task's definition: the run's suite's when it has one, else the built-in one."""
    if config.data is not None and task == byo_plan.CUSTOM_TASK:
        return byo_plan.task_info(config)  # --data: the user's own
    return config.suite.task(task).info() if config.suite is not None else TASKS[task]


@contextmanager
def _byo_input() -> Iterator[None]:
    """A bad --model or --data is bad input: the same one-line TwinbenchError."""
    try:
        yield
    except byo_plan.ByoError as e:
        raise TwinbenchError(str(e)) from None


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
    """(task, dataset, model) for every task, with --dataset and --models applied; with
    --model / --data, the user's model and data (twinbench.byo.plan)."""
    if config.model or config.data:
        with _byo_input():
            return byo_plan.task_models(config, _builtin_task_models)
    return _builtin_task_models(config)


def _builtin_task_models(config: RunConfig) -> list[tuple[str, str, str]]:
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


def rotated(stacks: list[str], repeat: int) -> list[str]:
    """Repeat r starts at the r-th stack, so slow drift (thermal, background load) does
    not always fall on the same stack."""
    k = repeat % len(stacks) if stacks else 0
    return stacks[k:] + stacks[:k]


def plan(config: RunConfig, models: list[str] | None = None, run_id: str | None = None,
         out_dir: Path | None = None) -> Plan:
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
    if config.executor == "ray" and config.ray_address:
        from twinbench.runner.ray_executor import check_address_form

        check_address_form(config.ray_address)
    # On Ray each node checks --threads against its own CPUs (the driver's say nothing).
    if config.executor == "local" and config.threads > len(cpus):
        raise TwinbenchError(f"--threads {config.threads} exceeds the {len(cpus)} CPUs "
                             f"this process may use; valid: 1..{len(cpus)}")
    # Second resolution plus a random suffix: two runs started in the same second (tests,
    # scripts) must never share an id, or the store would merge them.
    run_id = run_id or (datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-")
                        + secrets.token_hex(2))
    out_dir = out_dir or (Path(config.out) if config.out else Path("runs") / run_id)
    cells = [(t, d, m, s, r) for r in range(config.repeats) for t, d, m in triples
             for s in rotated(stacks, r)]
    return Plan(config, cells, out_dir, run_id, tuple(cpus[: config.threads]))


def skipped_cell(task: str, stack: str, model: str | None = None) -> Cell | None:
    missing = missing_modules(stack_info(stack))
    if not missing:
        return None
    extra = stack_info(stack).extra
    return Cell(task=task, model=model or TASKS[task].model, stack=stack, status="skipped",
                reason=f"{', '.join(missing)} not installed: pip install 'twinbench[{extra}]'")


def prepare_data(p: Plan) -> dict[str, Path]:
    """Load, split and encode each data set once, in the driver: every cell then reads
    the same arrays, and a bad or missing file stops the run before any cell starts."""
    paths: dict[str, Path] = {}
    (p.out_dir / "data").mkdir(parents=True, exist_ok=True)
    for dataset in dict.fromkeys(key[1] for key in p.cells):
        try:
            with _byo_input():
                data = (byo_plan.load_data(p.config) if p.config.data is not None else
                        load_dataset(dataset, p.config.seed, p.config.data_dir,
                                     p.config.holdout))
        except DataError as e:
            raise TwinbenchError(str(e)) from None
        paths[dataset] = p.out_dir / "data" / f"{dataset}.npz"
        data.save(paths[dataset])
    with _byo_input():  # the user's model, read on each data set in its own process
        byo_plan.inspect_models(p, paths)
    return paths


def submission(p: Plan, cell: CellKey, data: dict[str, Path], mode: str, level: str,
               folder: str) -> Submission:
    task, dataset, model, stack, repeat = cell
    suffix = f"__r{repeat}" if repeat else ""
    cell_dir = p.out_dir / folder / f"{task}__{dataset}__{model}__{stack}{suffix}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    info = task_info(p.config, task)
    # Each repeat is an independent replicate: its own seed for weights and batch order
    # (the data split stays the run's).
    run = p.config.model_copy(update={"epochs": p.config.epochs or info.epochs,
                                      "batch_size": p.config.batch_size or info.batch_size,
                                      "seed": p.config.seed + repeat})
    byo = byo_plan.is_byo(p.config, model)  # a user's model: every parity check, always
    job = CellJob(task=task, dataset=dataset, model=model, stack=stack, run=run,
                  data_path=data[dataset].resolve(), cpus=p.cpus, spawn_wall=time.time(),
                  result_path=(cell_dir / "result.json").resolve(),
                  parity_path=(cell_dir / "probe.npz").resolve(), repeat=repeat, mode=mode,
                  parity_level="full" if byo else level,
                  byo=byo_plan.record_dir(p.out_dir, model, dataset).resolve() if byo else None,
                  # --target-accuracy overrides the task's (suite) target
                  target_accuracy=p.config.target_accuracy or info.target_accuracy,
                  target_source=("--target-accuracy" if p.config.target_accuracy
                                 else info.target_source))
    return Submission(cell, job, stack_info(stack), cell_dir)


def _no_twin(p: Plan, key: CellKey) -> Cell | None:
    """A user's model with no twin in this stack's framework: skipped, with the reason."""
    why = byo_plan.skip_reason(p, key, stack_info(key[3]).framework)
    if why is None:
        return None
    return Cell(task=key[0], model=key[2], stack=key[3], status="skipped", reason=why)


def make_executor(config: RunConfig, mode: str = "full") -> Executor:
    """Timed cells ("full") run one at a time; parity probes `config.probe_jobs` at once."""
    if config.executor == "ray":
        from twinbench.runner.ray_executor import RayExecutor

        return RayExecutor(config.ray_address, memory_mb=config.cell_memory_mb)
    jobs = config.probe_jobs if mode == "probe" else 1
    return LocalExecutor(memory_mb=config.cell_memory_mb, jobs=jobs)


def to_cell(key: CellKey, raw: dict) -> Cell:
    task, dataset, model, stack, repeat = key
    return Cell(task=task, dataset=dataset, model=model, stack=stack, repeat=repeat, **raw)


def _tolerances(c: Cell) -> dict | None:
    """A family's own PARITY_TOLERANCES; a user's model's are in its settings (the cell
    read them from its inspection, see twinbench.byo.plan.parity_tolerances)."""
    from twinbench.models import families

    if c.model in families():
        return getattr(spec_module(c.model), "PARITY_TOLERANCES", None)
    return (c.settings.get("byo") or {}).get("parity_tolerances")


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
                                _tolerances(c))}
            c.parity.update({"reference": ref.stack, "checks": checks,
                             "pass": all(v["pass"] for v in checks.values()),
                             "failure": first_failure(checks)})


def _execute_all(p: Plan, keys: list[CellKey], events: Events, data: dict[str, Path],
                 mode: str, level: str, folder: str, done: dict[CellKey, Cell],
                 on_cell: Callable[[Cell], None]) -> dict[CellKey, Cell]:
    """Run the cells of `keys` not in `done` (stored by an earlier attempt); every finished
    cell goes to `on_cell` (store, results.json) before the next one starts."""
    todo = [k for k in keys if k not in done]
    events.on_start(len(todo), "parity probes" if mode == "probe" else "timed cells")
    cells = dict(done)
    subs = []
    for key in todo:
        skipped = skipped_cell(key[0], key[3], key[2]) or _no_twin(p, key)
        if skipped:
            skipped.dataset, skipped.repeat = key[1], key[4]
            cells[key] = skipped
            on_cell(skipped)
            events.on_cell_end(skipped)
        else:
            subs.append(submission(p, key, data, mode, level, folder))
    executor = make_executor(p.config, mode)
    try:
        announce = lambda sub: events.on_cell_start("/".join(sub.key[:3]), sub.key[3])  # noqa: E731
        progress = lambda sub, pr: events.on_cell_progress(  # noqa: E731
            "/".join(sub.key[:3]), sub.key[3], pr)
        for sub, raw in executor.run(subs, p.config.cell_timeout_s, announce,
                                     on_progress=progress):
            cells[sub.key] = to_cell(sub.key, raw)
            on_cell(cells[sub.key])
            events.on_cell_end(cells[sub.key])
    finally:
        executor.close()
    return {k: cells[k] for k in keys if k in cells}


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
    cells = _execute_all(p, p.probe_cells(), events or Events(), data, "probe", level,
                         "verify", {}, lambda c: None)
    results.cells = list(cells.values())
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
        full = probe.parity.get("parity_level") == "full"  # a user's model: every check
        c.parity = {**probe.parity, "checks_run": list(probe.parity.get("checks", {}))
                    if full else list(QUICK_CHECKS)}
    if not c.parity.get("pass", False):
        c.status, c.reason = "unverified", c.parity["failure"]


def cell_key(c: Cell | dict) -> CellKey:
    d = c if isinstance(c, dict) else c.model_dump()
    return (d["task"], d.get("dataset") or "", d["model"], d["stack"], d.get("repeat", 0))


def _phase(p: Plan, history: Recorder, events: Events, data: dict[str, Path], phase: str,
           results: Results, done: dict[CellKey, Cell],
           after: Callable[[Cell], None] = lambda c: None) -> list[Cell]:
    """One phase ("probe" or "full") of a run, resumable: the `done` cells (stored by an
    earlier attempt) are kept, the rest run. Each finished cell is written to the run
    folder, then to the history, before the next cell starts: the folder first, so a
    history that fails (locked, corrupt) never costs a measured cell."""
    keys = p.probe_cells() if phase == "probe" else p.cells
    folder = "verify" if phase == "probe" else "cells"
    current = dict(done)

    def on_cell(c: Cell) -> None:
        after(c)
        current[cell_key(c)] = c
        results.cells = [current[k] for k in keys if k in current]
        results.write(p.out_dir, results_name(folder))
        history.put_cell(p.run_id, phase, c.repeat, c.model_dump(mode="json"))

    results.cells = [current[k] for k in keys if k in current]
    cells = _execute_all(p, keys, events, data, phase if phase == "probe" else "full",
                         "quick", folder, done, on_cell)
    return list(cells.values())


def _stored_cells(p: Plan, history: Recorder) -> dict[str, dict[CellKey, Cell]]:
    """Per phase, the cells an earlier attempt of this run stored as results (read once,
    before any cell runs). A timed cell marked unverified only because its probe failed
    is run again: the resumed probe may pass, and the verdict must come from a probe of
    this attempt."""
    phases: dict[str, dict[CellKey, Cell]] = {"probe": {}, "full": {}}
    if history.store is None:
        return phases
    for phase, done in phases.items():
        for c in history.store.cells(p.run_id, phase):
            if c["status"] in FINAL and not (c.get("reason") or "").startswith("parity probe"):
                done[cell_key(c)] = Cell.model_validate(c)
    return phases


# Signals that stop a run the way Ctrl-C does. SIGHUP: the terminal or SSH session went
# away (the driver must not be left half-dead with its cell running); under `nohup` it is
# ignored and stays ignored.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the run the way Ctrl-C does (KeyboardInterrupt): the
    running cell is killed, finished cells stay stored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig, was in previous.items():
        if was is not signal.SIG_IGN:
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, was in previous.items():
            signal.signal(sig, was)


def _warn_unsaved(p: Plan, history: Recorder, events: Events) -> None:
    """One line when writes to the history are still pending: what is missing and how to
    import it from the run folder."""
    if history.pending:
        events.on_warning(
            f"the history {history.path} was not updated ({history.error}): "
            f"{history.unsaved_cells()} cells of run {p.run_id} are only in {p.out_dir}; "
            f"import them with: {_import_command(p, history)}")


def _import_command(p: Plan, history: Recorder) -> str:
    """Quoted: run folders and database paths may hold spaces or brackets."""
    return f"twinbench import {shlex.quote(str(p.out_dir))} --db {shlex.quote(str(history.path))}"


def _interrupted(p: Plan, history: Recorder, results: Results) -> Interrupted:
    n = len(results.cells)
    if not history.pending:
        return Interrupted(f"interrupted: {n} finished cells are stored; resume with: "
                           f"twinbench run --resume {p.run_id}")
    return Interrupted(f"interrupted: {n} finished cells are in {p.out_dir}, not all in the "
                       f"history {history.path} ({history.error}); import them with: "
                       f"{_import_command(p, history)}, then resume with: twinbench run "
                       f"--resume {p.run_id} --db {shlex.quote(str(history.path))}")


def _environment_warnings(p: Plan, history: Recorder, results: Results,
                          events: Events) -> None:
    """On a resume, the machine may have changed since the run's start."""
    if history.store is None or history.store.run(p.run_id) is None:
        return
    diffs = environment.differences(history.store.environment(p.run_id),
                                    results.environment)
    if diffs:
        results.warnings = [f"environment differs from the run's start: {d}" for d in diffs]
        for w in results.warnings:
            events.on_warning(w)


def _run_phases(p: Plan, history: Recorder, events: Events, data: dict[str, Path],
                results: Results, done: dict[str, dict[CellKey, Cell]]) -> None:
    """The parity probes, the timed cells, then (--export) the export matrix."""
    probes = new_results(p)
    probe_cells = _phase(p, history, events, data, "probe", probes, done["probe"])
    check_parity(probe_cells)
    probes.cells = probe_cells
    probes.write(p.out_dir, "verify.json")
    for c in probe_cells:  # store the verdicts too
        history.put_cell(p.run_id, "probe", c.repeat, c.model_dump(mode="json"))
    _phase(p, history, events, data, "full", results, done["full"],
           after=lambda cell: attach_parity(cell, probe_cells))
    if p.config.export:  # portability: each twin exported and reloaded (export.json)
        from twinbench.api_export import attach, export_matrix

        attach(results, export_matrix(p.config, events, planned=p, data=data))
        results.write(p.out_dir)


def run(config: RunConfig | None = None, events: Events | None = None,
        planned: Plan | None = None, store: Store | None = None,
        **overrides: Any) -> Results:
    """Run every cell of `config` (or of RunConfig(**overrides)), one process per cell.

    First the forward and gradient parity checks (a quick probe of each twin), then the
    timed cells. Every finished cell is written to results.json, then committed to the
    SQLite store: a crash or Ctrl-C (SIGTERM, SIGHUP) loses nothing done, and
    `run --resume RUN_ID` (a Plan with the same run id) runs only what is missing or
    failed. A store that fails (locked, corrupt, read-only) never stops the run: its
    writes are retried, and what is still missing at the end is named in one warning
    (events.on_warning) with the `twinbench import` command that adds it.
    """
    run_id, overrides = _user_inputs(config, planned, overrides)
    config = config or RunConfig(**overrides)
    events = events or Events()
    p = planned or plan(config, run_id=run_id)
    if config.export and config.model:
        raise TwinbenchError("--export with --model: exporting your own model's twins is "
                             "not supported yet; run without --export")
    if config.export:  # validate the formats before anything starts
        from twinbench.api_export import check_formats

        check_formats(config)
    p.out_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(p)
    history = Recorder(store.path, store) if store is not None else \
        Recorder.open(default_db_path())
    results = new_results(p)
    try:  # reads, before any cell runs: a failure here loses nothing
        _environment_warnings(p, history, results, events)
        done = _stored_cells(p, history)
    except sqlite3.Error as e:
        raise TwinbenchError(f"the history {history.path} cannot be read ({one_line(e)})") \
            from None
    history.start_run(p.run_id, p.out_dir, results.config, results.environment)
    try:
        with _signals_as_interrupt():
            _run_phases(p, history, events, data, results, done)
    except TwinbenchError:  # e.g. the Ray cluster cannot be reached
        history.finish_run(p.run_id, "failed")
        _warn_unsaved(p, history, events)
        raise
    except KeyboardInterrupt:
        history.finish_run(p.run_id, "interrupted")
        raise _interrupted(p, history, results) from None
    failed = sum(c.status == "failed" for c in results.cells)
    history.finish_run(p.run_id, "complete" if not failed else f"complete, {failed} failed")
    history.flush()  # the last try, with the full busy timeout
    _warn_unsaved(p, history, events)
    return results


def _user_inputs(config: RunConfig | None, planned: Plan | None, overrides: dict
                 ) -> tuple[str | None, dict]:
    """run(model=..., data=...): live objects become files in the run's folder (its id
    chosen here); never a run started by a cell importing the user's model file."""
    from twinbench.runner.local import PARENT_ENV

    if os.environ.get(PARENT_ENV) and (config or overrides.get("model")):
        # A user's script re-imported by a cell to rebuild its model, calling run() at its
        # top level, would start a run per cell (and each of those one per cell...).
        raise TwinbenchError("twinbench.run() was called inside a twinbench cell process "
                             "(importing your model's file); call it under `if __name__ == "
                             "\"__main__\":`")
    if config is None and planned is None and _live_inputs(overrides):
        return _materialize(overrides)
    return None, overrides


def _live_inputs(overrides: dict) -> bool:
    return any(overrides.get(k) is not None and not isinstance(overrides[k], (str, Path))
               for k in ("model", "data"))


def _materialize(overrides: dict) -> tuple[str, dict]:
    """run(model=<live model>, data=<arrays>): written into the run's folder first (each
    cell rebuilds the model in its own process: see twinbench.byo.live)."""
    from twinbench.byo.live import materialize

    run_id = (datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2))
    out = Path(overrides.get("out") or Path("runs") / run_id)
    with _byo_input():
        return run_id, {**materialize(overrides, out), "out": out}


def resume_plan(store: Store, run_id: str) -> Plan:
    """The plan of a stored run, with its id and output folder, for `run --resume`."""
    row = store.run(run_id)
    if row is None:
        known = ", ".join(r["run_id"] for r in store.runs(5)) or "none"
        raise TwinbenchError(f"no run {run_id!r} in {store.path}; recent runs: {known}")
    config = RunConfig.model_validate_json(row["config"])
    return plan(config, run_id=run_id, out_dir=Path(row["out_dir"]))
