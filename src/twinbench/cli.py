"""The `twinbench` command: a thin typer layer over `twinbench.api`."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twinbench.report.console import safe  # every string from input goes through it

# Help texts are Rich markup, where "[default: x]" is a tag and vanishes: write "\\[default: x]".
app = typer.Typer(add_completion=True, no_args_is_help=True,
                  help="Twin models in PyTorch and Keras 3, proven equal, then measured.")
# Piped output (CI logs, files) gets a wide console so tables are never cut off.
# emoji off: a name holding ":smile:" is text too (markup is escaped by `safe`).
console = Console(width=None if sys.stdout.isatty() else 220, emoji=False)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 400, emoji=False)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: never a traceback for bad input. Line breaks
    and other unprintable characters that came from the input itself (a name in a suite
    file: "\\n", but also "\\x85" or "\\u2028", which str.splitlines also breaks on) are
    shown escaped, and markup ("[/x]") is text (see `safe`)."""
    err.print(f"[bold red]error:[/bold red] {safe(message)}", highlight=False,
              soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One line on stderr; the command goes on."""
    err.print(f"[yellow]warning:[/yellow] {safe(message)}", highlight=False, soft_wrap=True)


def check_out_dir(out_dir: Path, option: str = "--out") -> None:
    """Fail before anything starts when `out_dir` cannot be a writable folder: a file
    there, a file among its parents, a read-only parent. Nothing is created (--dry-run)."""
    import os

    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        fail(f"{option} {path}: exists and is not a folder")
    probe = path
    while not probe.exists() and probe.parent != probe:  # the nearest existing parent
        probe = probe.parent
    if not probe.is_dir():
        fail(f"{option} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        fail(f"{option} {path}: {probe} is not writable")


def split(value: Optional[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _validation_message(e: ValidationError) -> str:
    first = e.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "input"
    return f"--{field.replace('_', '-')}: {first['msg']}"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def format_option() -> Any:
    """--format, shared by the commands that list things (history, show, stacks, compare)."""
    return typer.Option(Format.table, "--format", case_sensitive=False,
                        help="table (for people), json or csv (for scripts), on stdout.")


def emit(fmt: Format, data: Any, rows: list[dict]) -> bool:
    """Print `data` as JSON or `rows` as CSV (flat, see results.csv) on plain stdout, not
    through Rich (no markup, no wrapping). False for --format table: the caller prints."""
    from twinbench.results import csv_text, flatten

    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt is Format.csv:
        sys.stdout.write(csv_text(flatten(r) for r in rows))
    return fmt is not Format.table


def require_linux() -> None:
    """Commands that run cells pin each one to its CPUs (os.sched_getaffinity and
    sched_setaffinity) and tie it to the driver (prctl): Linux only. Refused up front in
    one line, rather than a traceback from the first cell."""
    import os

    missing = [f"os.{n}" for n in ("sched_getaffinity", "sched_setaffinity")
               if not hasattr(os, n)]
    if not sys.platform.startswith("linux"):
        missing.append("prctl")
    if missing:
        fail(f"twinbench runs cells on Linux only: this system ({sys.platform}) lacks "
             f"{', '.join(missing)}")


def _print_version(value: bool) -> None:
    if value:
        from twinbench import __version__

        console.print(f"twinbench {__version__}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _app_options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Twin models in PyTorch and Keras 3, proven equal, then measured."""


def _progress_events(progress: Progress):

    from twinbench.api import Events

    task_id = progress.add_task("cells", total=0)

    def start(n: int, phase: str) -> None:
        progress.reset(task_id, total=n)
        progress.console.print(f"[bold]{phase}[/bold]")

    return Events(
        on_warning=lambda m: progress.console.print(f"[yellow]warning:[/yellow] {safe(m)}",
                                                    highlight=False, soft_wrap=True),
        on_start=start,
        # the description is rendered as markup on every refresh: escaped once here
        on_cell_start=lambda t, s: progress.update(task_id, description=safe(f"{t} / {s}")),
        # the phase inside the cell: "train epoch 3/10, ETA 0:42" (names escaped: markup)
        on_cell_progress=lambda t, s, pr: progress.update(
            task_id, description=safe(f"{t} / {s}: {pr.text()}")),
        on_cell_end=lambda c: (progress.advance(task_id),
                               progress.console.print(safe(f"  {c.task} / {c.stack}: {c.status}"
                                                           + (f" ({c.reason})" if c.reason
                                                              else "")),
                                                      highlight=False, soft_wrap=True)),
    )


@app.command()
def run(
    suite: Optional[str] = typer.Option(None, help="A suite: quick, standard, or the path of "
                                        "a .toml file (see `twinbench suites`)."),
    tasks: Optional[str] = typer.Option(None, help="Tasks or groups, comma-separated \\[default: "
                                        "quick, or every task of --suite]."),
    stacks: Optional[str] = typer.Option(None, help="Stacks, comma-separated; see `twinbench "
                                         "stacks` \\[default: all, or the suite's]."),
    models: Optional[str] = typer.Option(None, help="Model families, comma-separated "
                                         "\\[default: each task's own]."),
    model: Optional[str] = typer.Option(None, "--model", help="Your own model: "
                                        "path/model.py:NAME (a function returning a Keras "
                                        "model or an nn.Module, or an nn.Module class) or "
                                        "path/model.keras."),
    data: Optional[Path] = typer.Option(None, "--data", help="Your own data: file.npz "
                                        "(x_train, y_train, x_test, y_test; or x, y with "
                                        "--holdout), an image folder (a subfolder per "
                                        "class) or file.csv/.tsv (text, label)."),
    image_size: Optional[int] = typer.Option(None, help="--data image folder: resize to "
                                             "this many pixels square \\[default: 32]."),
    dataset: Optional[str] = typer.Option(None, help="Data set for the tasks \\[default: each "
                                          "task's own]: digits, synthetic-sentiment, "
                                          "sms-spam, ag-news, trec, imdb, mnist, "
                                          "fashion-mnist, cifar10, digits-8x8."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with local copies of the "
                                            "data files (checked, never downloaded)."),
    holdout: Optional[float] = typer.Option(None, help="Split what --data-dir holds: this "
                                            "fraction, stratified and seeded, is the test set."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs per cell \\[default: the "
                                         "task's: digits 10, text 3]."),
    batch_size: Optional[int] = typer.Option(None, help="Training batch size, the same in "
                                             "every stack \\[default: 32]."),
    seed: int = typer.Option(0, help="Seed of the split, initial weights and batch order."),
    repeats: Optional[int] = typer.Option(None, help="Fresh-process repeats per cell (seed+r, "
                                          "stack order rotated) \\[default: 1, or the suite's: "
                                          "standard 3]."),
    target_accuracy: Optional[float] = typer.Option(None, help="Report the time to the first "
                                                    "epoch at this test accuracy."),
    threads: Optional[int] = typer.Option(None, help="Threads per cell \\[default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder \\[default: runs/<run id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a cell is killed."),
    cell_memory_mb: Optional[float] = typer.Option(None, help="Kill a cell whose RSS passes "
                                                   "this many MB."),
    probe_jobs: int = typer.Option(1, help="Parity probes (untimed) run at once; timed "
                                   "cells always run one at a time."),
    wait_quiet: float = typer.Option(0.0, help="Seconds to wait, before each timed cell, for "
                                     "its CPUs to be quiet (other work under 10%); every cell "
                                     "records its contention either way."),
    latency_calls: int = typer.Option(300, help="Timed batch-1 calls per inference path."),
    latency_budget: float = typer.Option(2.0, help="Seconds of timed calls per path before it "
                                         "stops short of --latency-calls (slow eager paths)."),
    latency_bound_ms: float = typer.Option(10.0, help="LoadGen Server scenario: p99 bound."),
    loadgen: bool = typer.Option(True, help="Run the MLPerf LoadGen phase (short durations)."),
    device: str = typer.Option("cpu", help="cpu or cuda (timed work on the GPU; memory from "
                               "each framework's allocator)."),
    executor: str = typer.Option("local", help="Where cells run: local or ray."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address (with "
                                              "--executor ray) \\[default: start one here]."),
    db: Optional[Path] = typer.Option(None, help="SQLite history \\[default: "
                                      "~/.local/share/twinbench/history.db]."),
    resume: Optional[str] = typer.Option(None, help="Run id: run only its missing or failed "
                                         "cells (its stored settings apply)."),
    dry_run: bool = typer.Option(False, help="Validate and print the plan; run nothing."),
    export: bool = typer.Option(False, "--export", help="Then export every twin, reload each "
                                "artifact in its runtime and compare (see `twinbench export`)."),
) -> None:
    """Train, evaluate and time every twin; write results.json and print a summary."""
    kwargs = {k: v for k, v in locals().items() if k not in ("db", "resume", "dry_run")}
    _run(kwargs, db, resume, dry_run)


def run_config_kwargs(o: dict) -> dict:
    """CLI option values -> RunConfig fields (names that differ are mapped here). With
    --suite, tasks and stacks not given come from the suite."""
    kw = dict(models=split(o["models"]), cell_timeout_s=o["cell_timeout"],
              latency_budget_s=o["latency_budget"], wait_quiet_s=o["wait_quiet"])
    for k in ("dataset", "data_dir", "holdout", "epochs", "batch_size", "seed",
              "target_accuracy", "out", "cell_memory_mb", "probe_jobs", "latency_calls",
              "latency_bound_ms", "loadgen", "device", "executor", "ray_address", "export",
              "model", "data", "image_size"):
        kw[k] = o[k]
    given = dict(tasks=split(o["tasks"]), stacks=split(o["stacks"]), threads=o["threads"],
                 repeats=o["repeats"])
    kw.update({k: v for k, v in given.items() if v is not None and v != ()})
    if o["suite"] is not None:
        kw["suite"] = _load_suite(o["suite"])
    return kw


def _run(options: dict, db: Optional[Path], resume: Optional[str], dry_run: bool) -> None:
    require_linux()
    from twinbench.api import TwinbenchError, plan, resume_plan
    from twinbench.config import RunConfig

    store = None
    try:
        if resume:
            store = _open_store(db)
            planned = resume_plan(store, resume)
        else:
            planned = plan(RunConfig(**run_config_kwargs(options)))  # validates names first
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    check_out_dir(planned.out_dir)
    if dry_run:
        console.print(f"plan: {len(planned.cells)} cells -> {safe(planned.out_dir)}")
        return
    store = store or _open_store(db)
    results = _execute(planned, store)
    _print_results(results)
    console.print(f"results: {safe(planned.out_dir / 'results.json')}  (run id "
                  f"{safe(planned.run_id)}, history {safe(store.path)})")
    _report_after_run(planned.out_dir)


def _execute(planned, store):
    """Run a validated plan with a progress display; bad input and interrupts become the
    one-line error (exit 2, or 130 after Ctrl-C/SIGTERM/SIGHUP with the resume command)."""
    from twinbench.api import Interrupted, TwinbenchError, run as api_run

    try:
        with _progress() as p:
            return api_run(planned.config, events=_progress_events(p), planned=planned,
                           store=store)
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    except Interrupted as e:
        fail(str(e), code=130)
    except OSError as e:  # e.g. --out deleted or made read-only mid-run
        fail(f"cannot write {e.filename or planned.out_dir} ({e.strerror or e}); finished "
             f"cells are in the history: twinbench run --resume {planned.run_id}")


def _report_after_run(out_dir: Path) -> None:
    """The report is written after every run; a failure to write it never fails the run
    (its results are already on disk: `twinbench report` can be rerun)."""
    from twinbench.report import build_report

    try:
        paths = build_report(out_dir)
    except Exception as e:  # noqa: BLE001 - reported, the run's results stand
        err.print(f"[yellow]report not written:[/yellow] {safe(f'{type(e).__name__}: {e}')}"
                  f"; rerun `twinbench report {safe(out_dir)}`", highlight=False)
        return
    console.print(f"report: {safe(paths['html'])}  {safe(paths['md'])}", highlight=False)


def _print_results(results) -> None:
    from twinbench.report.console import loadgen_table, repeats_table, summary_table

    console.print(summary_table(results))
    cfg = results.config
    if cfg.get("repeats", 1) > 1 or cfg.get("target_accuracy"):
        console.print(repeats_table(results))
    if cfg.get("loadgen"):
        console.print(loadgen_table(results))
    if cfg.get("export"):
        from twinbench.report.export_table import export_table

        console.print(export_table(results))


@app.command()
def latency(
    tasks: str = typer.Option("quick", help="Tasks or groups, comma-separated."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    models: Optional[str] = typer.Option(None, help="Model families \\[default: each task's]."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs before the LoadGen runs."),
    duration: float = typer.Option(2.0, help="Minimum seconds of each LoadGen run."),
    server_steps: int = typer.Option(6, help="Bisection steps for the Server QPS."),
    latency_bound_ms: float = typer.Option(10.0, help="Server scenario: p99 latency bound."),
    threads: Optional[int] = typer.Option(None, help="Threads per cell \\[default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder \\[default: runs/<run id>]."),
    db: Optional[Path] = typer.Option(None, help="SQLite history \\[default: "
                                      "~/.local/share/twinbench/history.db]."),
) -> None:
    """Train each twin, then MLPerf LoadGen: SingleStream p90, Server QPS within the p99
    bound (bisection), Offline samples/s, each with LoadGen's VALID/INVALID verdict."""
    require_linux()
    from twinbench.api import TwinbenchError, plan
    from twinbench.config import RunConfig
    from twinbench.report.console import loadgen_table

    kw = dict(tasks=split(tasks), stacks=split(stacks), models=split(models), epochs=epochs,
              out=out, loadgen=True, loadgen_duration_s=duration,
              loadgen_server_steps=server_steps, latency_bound_ms=latency_bound_ms)
    if threads is not None:
        kw["threads"] = threads
    try:
        planned = plan(RunConfig(**kw))
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    check_out_dir(planned.out_dir)
    results = _execute(planned, _open_store(db))

    console.print(loadgen_table(results))
    console.print(f"LoadGen logs: {safe(planned.out_dir / 'cells')}/*/loadgen/")


def _open_store(db: Optional[Path]):
    import sqlite3

    from twinbench.store import Store, default_db_path
    from twinbench.store.db import one_line

    try:
        path = db or default_db_path()
        return Store(path)
    except ValueError as e:  # a bad $TWINBENCH_DB_TIMEOUT
        fail(str(e))
    except (sqlite3.Error, OSError) as e:
        # A corrupt file stays as it is (never overwritten): moved aside, a new history
        # is created, and run folders are imported into it.
        corrupt = isinstance(e, sqlite3.DatabaseError) and not isinstance(
            e, sqlite3.OperationalError)  # not a lock, a permission or a bad path
        hint = ("; move it aside and import run folders into a new one with `twinbench "
                "import RUN_FOLDER`" if corrupt and path.is_file() else "")
        fail(f"--db {path}: cannot open the history database ({one_line(e)}){hint}")


@app.command("import")
def import_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<run id>/) holding "
                                   "results.json and/or verify.json."),
    db: Optional[Path] = typer.Option(None, help="SQLite history [default: "
                                      "~/.local/share/twinbench/history.db]."),
) -> None:
    """Store a run folder's cells in the history: a run whose database write failed
    (locked, corrupt, read-only) kept every cell in its folder. Importing twice is safe."""
    import sqlite3

    from twinbench.store.db import one_line
    from twinbench.store.importer import ImportFailed, import_run

    store = _open_store(db)
    try:
        done = import_run(store, run_dir)
    except ImportFailed as e:
        fail(str(e))
    except sqlite3.Error as e:
        fail(f"--db {store.path}: the import failed ({one_line(e)}); importing again is safe")
    console.print(f"imported run {done.run_id} ({done.status}): {done.cells} cells, "
                  f"{done.probes} parity probes, into {store.path}", highlight=False,
                  markup=False)


@app.command()
def verify(
    models: str = typer.Option("all", help="Model families, comma-separated "
                               "(cnn, bilstm, textcnn, transformer, resnet)."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    seed: int = typer.Option(0, help="Seed of the canonical weights and the probe batch."),
    threads: Optional[int] = typer.Option(None, help="Threads per cell \\[default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder \\[default: runs/<run id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a cell is killed."),
    jobs: int = typer.Option(1, help="Cells run at once (nothing is timed; each cell's "
                             "threads share the CPUs)."),
) -> None:
    """Prove the twins equal: parameter count, forward, loss, gradients, optimizer steps
    and a 10-step loss trajectory, each stack against the torch twin. Exit 1 on failure."""
    require_linux()
    from twinbench.api import TwinbenchError, plan
    from twinbench.api import verify as api_verify
    from twinbench.config import RunConfig
    from twinbench.report.console import parity_table

    kwargs = dict(stacks=split(stacks), seed=seed, out=out, cell_timeout_s=cell_timeout,
                  probe_jobs=jobs)
    if threads is not None:
        kwargs["threads"] = threads
    try:
        config = RunConfig(**kwargs)
        planned = plan(config, models=list(split(models)))
        check_out_dir(planned.out_dir)
        with _progress() as p:
            results = api_verify(config, events=_progress_events(p), planned=planned)
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    except OSError as e:  # --out deleted or made read-only mid-run
        fail(f"cannot write {e.filename or 'the output folder'} ({e.strerror or e})")
    console.print(parity_table(results))
    console.print(f"parity: {safe(planned.out_dir / 'verify.json')}")
    bad = [c for c in results.cells if c.status != "skipped" and not c.parity.get("pass")]
    for c in bad:
        err.print(f"[red]FAIL[/red] {safe(c.model)} {safe(c.stack)}: "
                  f"{safe(c.parity.get('failure') or c.reason)}", highlight=False)
    if bad:
        raise typer.Exit(1)


@app.command("twin")
def twin_cmd(
    model: str = typer.Argument(..., help="path/model.py:NAME or path/model.keras."),
    to: str = typer.Option(..., "--to", help="torch (from a Keras model) or keras (from a "
                           "PyTorch module)."),
    input_shape: Optional[str] = typer.Option(None, help="A PyTorch module's input, one "
                                              "sample as forward() takes it: 1,28,28."),
    dtype: str = typer.Option("float32", help="That input's dtype: float32 or int64 (ids)."),
) -> None:
    """Print the twin twinbench generates for your model, as readable Python source."""
    from twinbench.byo.source import ByoError
    from twinbench.byo.twin_cmd import generate

    try:
        shape = tuple(int(v) for v in split(input_shape)) if input_shape else None
        source = generate(model, to, shape, dtype)
    except ValueError as e:  # ByoError, or a shape that is not integers
        fail(str(e) if isinstance(e, ByoError) else f"--input-shape {input_shape}: expected "
             "integers, e.g. 1,28,28")
    sys.stdout.write(source)


@app.command("export")
def export_cmd(
    models: str = typer.Option("all", help="Model families, comma-separated "
                               "(cnn, bilstm, textcnn, transformer)."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    formats: str = typer.Option("all", help="Formats, comma-separated: onnx, onnx-torchscript, "
                                "torchscript-trace, torchscript-script, torch-export, "
                                "torch-state, litert, keras, tf-saved-model, openvino."),
    epochs: int = typer.Option(1, help="Training epochs before export (0: initial weights)."),
    tolerance: float = typer.Option(1e-4, help="Max abs diff of the logits for `ok`."),
    seed: int = typer.Option(0, help="Seed of the split, initial weights and batch order."),
    threads: Optional[int] = typer.Option(None, help="Threads per process \\[default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder \\[default: runs/<run id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a process is killed."),
    latency_calls: int = typer.Option(300, help="Timed batch-1 calls per runtime."),
    latency_budget: float = typer.Option(2.0, help="Seconds of timed calls per runtime before "
                                         "it stops short of --latency-calls."),
) -> None:
    """Export every twin to every format its stack offers, reload each artifact in its
    target runtime in a fresh process, and compare: diff, size, load time, b1 latency."""
    require_linux()
    from twinbench.api import TwinbenchError, plan
    from twinbench.api_export import check_formats, export_matrix
    from twinbench.config import RunConfig
    from twinbench.report.export_table import export_table

    kwargs = dict(models=split(models), stacks=split(stacks), export_formats=split(formats),
                  export_epochs=epochs, export_tolerance=tolerance, seed=seed, out=out,
                  cell_timeout_s=cell_timeout, latency_calls=latency_calls,
                  latency_budget_s=latency_budget)
    if threads is not None:
        kwargs["threads"] = threads
    try:
        config = RunConfig(**kwargs)
        check_formats(config)
        planned = plan(config, models=list(config.models))
        check_out_dir(planned.out_dir)
        with _progress() as p:
            results = export_matrix(config, events=_progress_events(p), planned=planned)
    except ValidationError as e:
        fail(_validation_message(e).replace("--export-", "--"))
    except TwinbenchError as e:
        fail(str(e))
    except OSError as e:  # --out deleted or made read-only mid-run
        fail(f"cannot write {e.filename or 'the output folder'} ({e.strerror or e})")
    console.print(export_table(results))
    console.print(f"matrix: {safe(planned.out_dir / 'export.json')}")


def _load_suite(name: str):
    from twinbench.suite import SuiteError, load_suite

    try:
        return load_suite(name)
    except SuiteError as e:
        fail(str(e))


@app.command("suites")
def list_suites() -> None:
    """List the shipped suites: their tasks, targets and where each target comes from."""
    from importlib import resources

    from twinbench.suite import load_suite, shipped

    for name in shipped():
        s = load_suite(name)
        table = Table(title=f"suite {safe(name)}: {safe(s.description)}", title_justify="left")
        for col in ("task", "dataset", "model", "epochs", "batch", "target", "source"):
            table.add_column(col, overflow="fold")
        for t in s.tasks:
            target = f"{t.target_accuracy:.2%}" if t.target_accuracy is not None else "-"
            table.add_row(safe(t.name), safe(t.dataset), safe(t.model), str(t.epochs),
                          str(t.batch_size), target, safe(t.target_source or ""))
        console.print(table)
        console.print(f"  file: {safe(resources.files('twinbench') / 'suites' / f'{name}.toml')}"
                      f"  stacks: {safe(', '.join(s.stacks) or 'all')}", highlight=False)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console)


@app.command()
def history(
    db: Optional[Path] = typer.Option(None, help="SQLite history \\[default: "
                                      "~/.local/share/twinbench/history.db]."),
    limit: int = typer.Option(20, min=1, help="How many recent runs."),
    fmt: Format = format_option(),
) -> None:
    """List the stored runs, newest first."""
    store = _open_store(db)
    runs = [dict(r) for r in store.runs(limit)]
    # JSON carries each run's config; CSV keeps to the table's columns (one line a run).
    flat = [{k: v for k, v in r.items() if k != "config"} for r in runs]
    try:
        full = [{**r, "config": json.loads(r["config"])} for r in runs]
    except (ValueError, TypeError):
        full = runs  # a malformed stored config is shown as stored
    if emit(fmt, full, flat):
        return
    table = Table(title=f"twinbench history ({safe(store.path)})")
    for col in ("run id", "created", "status", "cells", "failed", "output"):
        table.add_column(col)
    for r in runs:
        table.add_row(safe(r["run_id"]), safe(r["created"]), safe(r["status"]),
                      str(r["n_cells"]), str(r["n_failed"]), safe(r["out_dir"]))
    console.print(table)


@app.command()
def show(
    run_id: str = typer.Argument(..., help="A run id from `twinbench history`."),
    db: Optional[Path] = typer.Option(None, help="SQLite history \\[default: "
                                      "~/.local/share/twinbench/history.db]."),
    fmt: Format = format_option(),
) -> None:
    """Print one stored run: its status and the summary table of its cells."""
    from twinbench.report.console import summary_table
    from twinbench.results import Cell, Results

    store = _open_store(db)
    row = store.run(run_id)
    if row is None:
        known = ", ".join(r["run_id"] for r in store.runs(5)) or "none"
        fail(f"no run {run_id!r} in {store.path}; recent runs: {known}")
    try:
        results = Results(run_id=run_id, environment=store.environment(run_id),
                          config=json.loads(row["config"]),
                          cells=[Cell.model_validate(c) for c in store.cells(run_id)])
    except (ValueError, TypeError) as e:  # ValidationError and JSONDecodeError included
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        fail(f"run {run_id!r} in {store.path}: a stored record is malformed ({first})")
    run = {k: row[k] for k in ("status", "created", "out_dir")}
    if emit(fmt, {**run, **results.model_dump(mode="json")}, results.rows()):
        return
    console.print(f"run {safe(run_id)}: {safe(row['status'])}, created {safe(row['created'])}"
                  f", output {safe(row['out_dir'])}", highlight=False)
    console.print(summary_table(results))


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<run id>/) holding "
                                   "results.json and/or verify.json."),
    html: bool = typer.Option(True, help="Write report.html (self-contained)."),
    markdown: bool = typer.Option(True, help="Write report.md with PNG charts."),
) -> None:
    """Write the run's report: scenario verdicts with CIs and tests, per-task tables and
    charts, the twins' code, the classic table rebuilt, environment and noise warnings."""
    from twinbench.report.build import ReportError, build_report

    try:
        paths = build_report(run_dir, html=html, markdown=markdown, on_warning=warn)
    except ReportError as e:
        fail(str(e))
    for name in ("html", "md"):
        if name in paths:
            console.print(f"{name}: {safe(paths[name])}", highlight=False)
    pngs = [p for k, p in paths.items() if k.startswith("png:")]
    if pngs:
        console.print(f"charts: {len(pngs)} PNG in {safe(pngs[0].parent)}", highlight=False)


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="The baseline run folder (or its results.json)."),
    run_b: Path = typer.Argument(..., help="The run compared with it."),
    threshold: float = typer.Option(0.05, help="Flag a change worse than this fraction "
                                    "(0.05 = 5%) as a regression."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every row here."),
    fmt: Format = format_option(),
) -> None:
    """Per cell and metric: ratio B/A, its 95% CI and a Mann-Whitney test. Exit 1 when a
    cell of A is missing in B, a cell of B failed, is unverified, diverged, ran contended
    or holds a non-finite value, or a regression beyond --threshold is flagged
    (significant, or untested single values)."""
    from twinbench.report.build import ReportError
    from twinbench.report.compare import compare_runs

    try:
        out = compare_runs(run_a, run_b, threshold)
    except ReportError as e:
        fail(str(e))
    for w in out["warnings"]:
        warn(w)
    if not emit(fmt, out, out["rows"]):
        _print_compare(out)
    if json_out:
        try:
            json_out.write_text(json.dumps(out, indent=2), encoding="utf-8")
        except OSError as e:  # the table above is printed: only the copy is lost
            fail(f"--json {json_out}: cannot write ({e.strerror or e})")
    if out["regressions"]:
        raise typer.Exit(1)


def _compare_cells(r: dict) -> list[str]:
    """A row's A, B, B/A, CI and p columns: numbers for a metric, statuses for the gate."""
    from twinbench.report.verdicts import fmt_num

    if r["metric"] == "status":  # the gate: "ok" in A, "failed" in B; nothing to divide
        return [safe(r["a"]), f"[red]{safe(r['b'])}[/red]", "-", "-", "-"]
    ci = f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}" if r["ci95"] else "-"
    return [fmt_num(r["a"]), fmt_num(r["b"]), f"{r['ratio']:.3f}", ci,
            "-" if r["p"] is None else f"{r['p']:.2g}"]


def _print_compare(out: dict) -> None:
    table = Table(title=f"twinbench compare {safe(out['run_a'])} -> {safe(out['run_b'])}")
    for col in ("cell", "metric", "A", "B", "B/A", "95% CI", "p", "tested on", "verdict"):
        table.add_column(col, overflow="fold")
    for r in out["rows"]:
        verdict = (f"[red]{safe(r['verdict'])}[/red]" if r["regression"]
                   else safe(r["verdict"]))
        table.add_row(safe(f"{r['task']}/{r['model']}/{r['stack']}"), r["metric"],
                      *_compare_cells(r), safe(r["basis"] or "-"), verdict)
    console.print(table)
    for d in out["env_diffs"]:
        err.print(f"[yellow]warning: environments differ:[/yellow] {safe(d)}")
    if out["only_b"]:
        err.print(f"note: cells only in run B: {safe(', '.join(out['only_b']))}")
    n, bad = len(out["regressions"]) - len(out["not_ok"]), len(out["not_ok"])
    gate = f"{bad} cell(s) missing or not ok in B; " if bad else ""
    console.print(gate + (f"{n} regression(s) beyond {out['threshold']:.0%}" if n else
                          f"no regression beyond {out['threshold']:.0%}"), highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    node_ip_address: str = typer.Option(..., help="This node's IP address: Ray binds to it "
                                        "and the other nodes reach it there."),
    head: bool = typer.Option(False, "--head", help="Start the head node of a new cluster."),
    address: Optional[str] = typer.Option(None, help="HEAD_IP:PORT of the cluster to join."),
    port: int = typer.Option(6379, help="With --head: the port of the cluster (GCS)."),
    num_cpus: Optional[int] = typer.Option(None, help="CPUs Ray may count on this node "
                                           "\\[default: Ray's own count]."),
    dashboard: bool = typer.Option(False, help="With --head: Ray's dashboard, on "
                                   "--node-ip-address only."),
    block: bool = typer.Option(False, help="Keep `ray start` in the foreground (containers)."),
    auth: str = typer.Option("token", help="RAY_AUTH_MODE: token (every node and the driver "
                             "share one token: RAY_AUTH_TOKEN or ~/.ray/auth_token) or "
                             "disabled."),
    start: bool = typer.Option(False, "--start", help="Run the command instead of printing it."),
) -> None:
    """Print (or with --start run) the `ray start` command of a twinbench node: one
    twinbench_slot, so two timed cells never share it. Arguments after `--` go to
    `ray start` unchanged. See docs/cluster.md."""
    import os
    import shlex
    import subprocess

    from twinbench.runner.ray_executor import ray_start_command, ray_start_env

    try:
        env = ray_start_env(auth)
        cmd = ray_start_command(node_ip_address, head, address, port, num_cpus, dashboard,
                                block, tuple(ctx.args))
    except ValueError as e:
        fail(str(e))
    if not start:
        print(" ".join([*(f"{k}={v}" for k, v in env.items()), shlex.join(cmd)]))
        return
    try:
        raise typer.Exit(subprocess.run(cmd, env={**os.environ, **env}, check=False).returncode)
    except FileNotFoundError:
        fail("`ray` is not installed here: pip install 'twinbench[ray]'")


@app.command("stacks")
def list_stacks(fmt: Format = format_option()) -> None:
    """List the stacks, whether each is installed, and the framework versions."""
    from twinbench.stacks import STACKS, missing_modules, module_version

    rows = [{"stack": i.name, "installed": not missing_modules(i),
             "versions": {m: module_version(m) for m in i.modules},
             "compile_mode": i.compile_mode,
             "install": f"pip install 'twinbench[{i.extra}]'" if missing_modules(i) else None}
            for i in STACKS.values()]
    if emit(fmt, rows, rows):
        return
    table = Table(title="twinbench stacks")
    for col in ("stack", "status", "versions", "compile mode", "install"):
        table.add_column(col)
    for info in STACKS.values():
        missing = missing_modules(info)
        versions = ", ".join(f"{m} {module_version(m) or '-'}" for m in info.modules)
        status = "[green]installed[/green]" if not missing else "[red]missing[/red]"
        table.add_row(info.name, status, versions, info.compile_mode,
                      "" if not missing else f"pip install 'twinbench[{info.extra}]'")
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Run the app with click's usage errors (unknown option, a value of the wrong type)
    turned into the same one-line error and exit 2 as twinbench's own validation."""
    try:  # typer 0.2x vendors its own click; older typer uses click itself
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - depends on the typer version
        from click.exceptions import NoArgsIsHelpError, UsageError

    try:
        rc = app(args=argv, standalone_mode=False)
    except NoArgsIsHelpError as e:
        console.print(e.ctx.get_help() if e.ctx else "twinbench --help", highlight=False)
        sys.exit(0)
    except UsageError as e:
        where = e.ctx.command_path if e.ctx else "twinbench"
        hint = f" (see `{where} --help`)" if e.ctx else ""
        if e.ctx and hasattr(e.ctx.command, "list_commands"):  # a group: name its commands
            hint = f"; valid: {', '.join(e.ctx.command.list_commands(e.ctx))}"
        try:
            fail(f"{where}: {' '.join(e.format_message().split()).rstrip('.')}{hint}")
        except typer.Exit as ex:
            sys.exit(ex.exit_code)
    except typer.Abort:
        err.print("error: aborted", highlight=False)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


@app.command("pipelines")
def pipelines_cmd(
    tasks: str = typer.Option("digits,text", help="Tasks, comma-separated (digits, text)."),
    stacks: str = typer.Option("all", help="Stacks the pipelines feed, comma-separated."),
    pipelines: str = typer.Option("all", help="Pipelines, comma-separated: numpy, "
                                  "torch-dataloader-0, torch-dataloader-2, tf-data, "
                                  "keras-pydataset-0, keras-pydataset-2, "
                                  "keras-layers-outside, keras-layers-inside."),
    measure: str = typer.Option("both", help="pipeline (alone), train (feeding each "
                                "stack) or both."),
    epochs: int = typer.Option(2, help="Training epochs per stack x pipeline."),
    pipeline_epochs: int = typer.Option(3, help="Passes of each pipeline alone."),
    warmup_epochs: int = typer.Option(1, help="First epochs left out of the medians."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size \\[default: the task's, 32]."),
    samples: Optional[int] = typer.Option(None, help="Use the first N training samples."),
    augment: bool = typer.Option(True, help="Random shifts (and flips) of images."),
    seed: int = typer.Option(0, help="Seed of the split, weights, order and augmentation."),
    threads: Optional[int] = typer.Option(None, help="Threads per process \\[default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder "
                                       "\\[default: runs/pipelines-<id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a measurement is killed."),
) -> None:
    """Measure the input pipelines (the same transforms in numpy, torch DataLoader, tf.data,
    Keras PyDataset and Keras layers): alone, and feeding each stack's training step."""
    require_linux()
    from twinbench.api import TwinbenchError
    from twinbench.pipelines.api import PipelineConfig, output_dir, plan
    from twinbench.pipelines.api import run as run_pipelines
    from twinbench.pipelines.report import table

    kwargs = {"tasks": split(tasks), "stacks": split(stacks), "pipelines": split(pipelines),
              "measure": measure, "epochs": epochs, "pipeline_epochs": pipeline_epochs,
              "warmup_epochs": warmup_epochs, "batch_size": batch_size, "samples": samples,
              "augment": augment, "seed": seed, "out": out, "cell_timeout_s": cell_timeout}
    if threads is not None:
        kwargs["threads"] = threads
    try:
        config = PipelineConfig(**kwargs)
        plan(config)  # validates names before anything starts
        if out is not None:
            check_out_dir(out)
        with _progress() as p:
            results = run_pipelines(config, events=_progress_events(p))
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    except OSError as e:  # --out deleted or made read-only mid-run
        fail(f"cannot write {e.filename or 'the output folder'} ({e.strerror or e})")
    console.print(table(results))
    console.print(f"results: {safe(output_dir(config, results.run_id) / 'pipelines.json')}")


if __name__ == "__main__":
    main()
