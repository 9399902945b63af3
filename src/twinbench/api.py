"""The Python API that the CLI is a thin layer over: `twinbench.run(...)` and
`twinbench.api.verify(...)`."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from twinbench import environment
from twinbench.byo import plan as byo_plan
from twinbench.config import CellJob, RunConfig
from twinbench.recipe import Recipe

# The API's names, each defined in its own layer, are offered here too.
from twinbench.errors import Interrupted, TwinbenchError  # noqa: F401
from twinbench.parity.verdict import REFERENCE_STACK, attach_parity, check_parity  # noqa: F401
from twinbench.models import run_knobs
from twinbench.plan import (  # noqa: F401
    point_cpus,
    Events,
    Plan,
    byo_input,
    new_run_id,
    plan,
    resume_command,
    resume_plan,
    rotated,
    task_info,
    task_models,
)
from twinbench.results import Cell, CellKey, Results, cell_key  # noqa: F401
from twinbench.runfolder import (  # noqa: F401
    LOCK_FILE,
    check_folder,
    folder_owner,
    run_folder,
)
from twinbench.process.child import PARENT_ENV
from twinbench.runner.executor import Executor, LocalExecutor, Submission
from twinbench.runner.prepare import (  # noqa: F401
    data_path,
    new_results,
    prepare_data,
    skipped_cell,
)
from twinbench.stacks import stack_info
from twinbench.store.db import FINAL, Recorder, Store, default_db_path, one_line


def submission(p: Plan, cell: CellKey, data: dict[str, Path], mode: str, level: str,
               folder: str) -> Submission:
    task, dataset, model, stack, repeat = cell
    suffix = f"__r{repeat}" if repeat else ""
    cell_dir = p.out_dir / folder / f"{task}__{dataset}__{model}__{stack}{suffix}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    info = task_info(p.config, task)
    # Each repeat is an independent replicate: its own seed for weights and batch order
    # (the data split stays the run's).
    # A sweep point's run knobs (`cnn[train_batch=32,threads=1]`) set this cell's batch
    # size and threads; the plan checked the threads against the CPUs. The recipe: the
    # run's, else the task's, else the run's optimizer plainly; the job carries it (and
    # its optimizer) so the cell trains and records exactly that.
    knobs = run_knobs(model)
    recipe = p.config.recipe or info.recipe or Recipe(name="run", optimizer=p.config.optimizer)
    run = p.config.model_copy(update={
        "epochs": p.config.epochs or info.epochs,
        "batch_size": knobs.get("train_batch") or p.config.batch_size or info.batch_size,
        "threads": knobs.get("threads", p.config.threads),
        "seed": p.config.seed + repeat, "recipe": recipe, "optimizer": recipe.optimizer})
    cpus = p.cpus if "threads" not in knobs else point_cpus(p.cpus, knobs["threads"])
    byo = byo_plan.is_byo(p.config, model)  # a user's model: every parity check, always
    job = CellJob(task=task, dataset=dataset, model=model, stack=stack, run=run,
                  data_path=data_path(data, dataset, model).resolve(), cpus=cpus,
                  spawn_wall=time.time(),
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
                           f"{resume_command(p.run_id, history.path)}")
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
    results.write(p.out_dir)  # also when no cell was left to run (a deleted file)
    if p.config.export:  # portability: each twin exported and reloaded (export.json)
        from twinbench.api_export import attach, export_matrix

        attach(results, export_matrix(p.config, events, planned=p, data=data))
        results.write(p.out_dir)


def run(config: RunConfig | None = None, events: Events | None = None,
        planned: Plan | None = None, store: Store | None = None, force: bool = False,
        **overrides: Any) -> Results:
    """Run every cell of `config` (or of RunConfig(**overrides)), one process per cell.

    First the forward and gradient parity checks (a quick probe of each twin), then the
    timed cells. Every finished cell is written to results.json, then committed to the
    SQLite store: a crash or Ctrl-C (SIGTERM, SIGHUP) loses nothing done, and
    `run --resume RUN_ID` (a Plan with the same run id) runs only what is missing or
    failed. A store that fails (locked, corrupt, read-only) never stops the run: its
    writes are retried, and what is still missing at the end is named in one warning
    (events.on_warning) with the `twinbench import` command that adds it.

    The run holds its output folder throughout (`run_folder`): a folder that holds
    another run is refused unless `force`, and so is a second run of the same id at once.
    """
    run_id = None
    if os.environ.get(PARENT_ENV) and (config or overrides.get("model")):
        # A user's script re-imported by a cell to rebuild its model, calling run() at its
        # top level, would start a run per cell (and each of those one per cell...).
        raise TwinbenchError("twinbench.run() was called inside a twinbench cell process "
                             "(importing your model's file); call it under `if __name__ == "
                             "\"__main__\":`")
    if config is None and planned is None and _live_inputs(overrides):
        run_id, overrides = _materialize(overrides)
    p = planned or plan(config or RunConfig(**overrides), run_id=run_id)
    if p.config.export and p.config.model:
        raise TwinbenchError("--export with --model: exporting your own model's twins is "
                             "not supported yet; run without --export")
    if p.config.export:  # validate the formats before anything starts
        from twinbench.api_export import check_formats

        check_formats(p.config)
    with run_folder(p.out_dir, p.run_id, force):
        return _run_held(p, events or Events(), store)


def _live_inputs(overrides: dict) -> bool:
    return any(overrides.get(k) is not None and not isinstance(overrides[k], (str, Path))
               for k in ("model", "data"))


def _materialize(overrides: dict) -> tuple[str, dict]:
    """run(model=<live model>, data=<arrays>): written into the run's folder first (each
    cell rebuilds the model in its own process: see twinbench.byo.live)."""
    from twinbench.byo.live import materialize

    run_id = new_run_id()
    out = Path(overrides.get("out") or Path("runs") / run_id)
    with byo_input():
        return run_id, {**materialize(overrides, out), "out": out}


def _run_held(p: Plan, events: Events, store: Store | None) -> Results:
    """`run`, in its held folder."""
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


def stored_results(store: Store, run_id: str) -> tuple[Results, Results]:
    """A stored run's results and parity probes, rebuilt from the history database: what
    results.json and verify.json held (`show --export`)."""
    row = store.run(run_id)
    if row is None:
        known = ", ".join(r["run_id"] for r in store.runs(5)) or "none"
        raise TwinbenchError(f"no run {run_id!r} in {store.path}; recent runs: {known}")
    head = dict(run_id=run_id, environment=store.environment(run_id),
                config=json.loads(row["config"]))
    return tuple(Results(**head, cells=[Cell.model_validate(c)  # type: ignore[return-value]
                                        for c in store.cells(run_id, phase)])
                 for phase in ("full", "probe"))
