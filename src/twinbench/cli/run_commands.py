"""The commands that run measurements: run, latency, import, verify, export, suites."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from twinbench.cli.common import (
    _load_suite,
    _open_store,
    _progress,
    _progress_events,
    app,
    cell_timeout_option,
    check_out_dir,
    console,
    db_option,
    err,
    fail,
    handled,
    names,
    out_option,
    require_linux,
    split,
    threads_option,
)
from twinbench.report.console import safe  # every string from input goes through it


@app.command()
def run(
    ctx: typer.Context,
    suite: Optional[str] = typer.Option(None, help="A suite: quick, standard, or the path of "
                                        "a .toml file (see `twinbench suites`)."),
    tasks: Optional[str] = typer.Option(None, help="Tasks or groups, comma-separated \\[default: "
                                        "quick, or every task of --suite]."),
    stacks: Optional[str] = typer.Option(None, help="Stacks, comma-separated; see `twinbench "
                                         "stacks` \\[default: all, or the suite's]."),
    models: Optional[str] = typer.Option(None, help="Model families, comma-separated, or "
                                         "sweep points such as cnn[width=2] (see `twinbench "
                                         "sweep`) \\[default: each task's own]."),
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
    recipe: Optional[str] = typer.Option(None, help="Training recipe for every task (optimizer,"
                                         " schedule, weight decay, clipping, loss, "
                                         "augmentation): he-resnet, adamw-cosine, "
                                         "sgd-nesterov, rmsprop-centered, adagrad "
                                         "\\[default: each task's own, else Adam]."),
    repeats: Optional[int] = typer.Option(None, help="Fresh-process repeats per cell (seed+r, "
                                          "stack order rotated) \\[default: 1, or the suite's: "
                                          "standard 3]."),
    target_accuracy: Optional[float] = typer.Option(None, help="Report the time to the first "
                                                    "epoch at this test accuracy."),
    threads: Optional[int] = threads_option(),
    out: Optional[Path] = out_option(),
    cell_timeout: float = cell_timeout_option(),
    cell_memory_mb: Optional[float] = typer.Option(None, help="Kill a cell whose RSS passes "
                                                   "this many MB."),
    probe_jobs: Optional[int] = typer.Option(None, help="Parity probes (untimed) run at "
                                             "once; timed cells always run one at a time "
                                             "\\[default: 1, or the suite's: quick 2]."),
    wait_quiet: float = typer.Option(0.0, help="Seconds to wait, before each timed cell, for "
                                     "its CPUs to be quiet (other work under 10%); every cell "
                                     "records its contention either way."),
    latency_calls: Optional[int] = typer.Option(None, help="Timed batch-1 calls per "
                                                "inference path \\[default: 300, or the "
                                                "suite's]."),
    latency_budget: Optional[float] = typer.Option(None, help="Seconds of timed calls per "
                                                   "path before it stops short of "
                                                   "--latency-calls (slow eager paths) "
                                                   "\\[default: 2, or the suite's: quick 1]."),
    latency_bound_ms: float = typer.Option(10.0, help="LoadGen Server scenario: p99 bound."),
    loadgen: bool = typer.Option(True, help="Run the MLPerf LoadGen phase (short durations)."),
    device: str = typer.Option("cpu", help="cpu or cuda (timed work on the GPU; memory from "
                               "each framework's allocator)."),
    executor: str = typer.Option("local", help="Where cells run: local or ray."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address (with "
                                              "--executor ray) \\[default: start one here]."),
    db: Optional[Path] = db_option(),
    resume: Optional[str] = typer.Option(None, help="Run id: run only its missing or failed "
                                         "cells (its stored settings apply)."),
    dry_run: bool = typer.Option(False, help="Validate and print the plan; run nothing."),
    export: bool = typer.Option(False, "--export", help="Then export every twin, reload each "
                                "artifact in its runtime and compare (see `twinbench export`)."),
    force: bool = typer.Option(False, "--force", help="Write into an --out folder that holds "
                               "another run (its files are overwritten)."),
    stack_option: list[str] = typer.Option([], "--stack-option", help="STACK:OPTION=VALUE, "
                                           "repeatable: run that stack as its variant, e.g. "
                                           "torch:channels_last=1 (see `twinbench tune`)."),
) -> None:
    """Train, evaluate and time every twin; write results.json and print a summary. Exit 0
    when every cell is ok, 1 when any is not (failed, unverified, diverged, skipped), 2 on
    bad input, 130 when interrupted."""
    if resume is not None:
        _refuse_with_resume(ctx, resume)
    kwargs = {k: v for k, v in locals().items() if k not in ("ctx", "db", "resume", "dry_run")}
    _run(kwargs, db, resume, dry_run)


# Options that go with --resume; every other one would be ignored (the stored run's
# settings apply), so giving one is refused rather than silently dropped.
WITH_RESUME = ("resume", "db", "dry_run", "force")


def _refuse_with_resume(ctx: typer.Context, resume: str) -> None:
    if not resume.strip():
        fail(f"--resume {resume!r} names no run; `twinbench history` lists them")
    given = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name not in WITH_RESUME and source is not None \
                and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            given.append("/".join([param.opts[0], *param.secondary_opts[:1]]))
    if given:
        fail(f"--resume {resume}: the run keeps its stored settings; drop "
             f"{', '.join(given)} (or start a new run with them)")


def run_config_kwargs(o: dict) -> dict:
    """CLI option values -> RunConfig fields (names that differ are mapped here). With
    --suite, tasks and stacks not given come from the suite."""
    kw = dict(models=names("--models", o["models"]), cell_timeout_s=o["cell_timeout"],
              wait_quiet_s=o["wait_quiet"])
    for k in ("dataset", "data_dir", "holdout", "epochs", "batch_size", "seed",
              "target_accuracy", "out", "cell_memory_mb",
              "latency_bound_ms", "loadgen", "device", "executor", "ray_address", "export",
              "model", "data", "image_size"):
        kw[k] = o[k]
    if o.get("infer_batches"):
        kw["infer_batches"] = o["infer_batches"]
    # Not given: the suite's setting, else RunConfig's default.
    given = dict(tasks=names("--tasks", o["tasks"]), stacks=names("--stacks", o["stacks"]),
                 threads=o["threads"], repeats=o["repeats"], latency_calls=o["latency_calls"],
                 latency_budget_s=o["latency_budget"], probe_jobs=o["probe_jobs"])
    kw.update({k: v for k, v in given.items() if v is not None and v != ()})
    if o["suite"] is not None:
        kw["suite"] = _load_suite(o["suite"])
    if o.get("recipe"):
        from twinbench.recipe import resolve_recipes

        try:
            kw["recipe"] = resolve_recipes([o["recipe"]])[0]
        except ValueError as e:
            fail(f"--recipe: {e}")
    if o.get("stack_option"):  # on --stacks, else the suite's, else every stack
        given_stacks = kw.get("stacks") or (kw["suite"].stacks if "suite" in kw else ())
        kw["stacks"] = optioned_stacks(tuple(given_stacks), o["stack_option"])
    return kw


def optioned_stacks(stacks: tuple[str, ...], options: list[str]) -> tuple[str, ...]:
    """--stacks with every --stack-option applied (all stacks when --stacks is not given)."""
    from twinbench.stacks import resolve_stacks, with_options
    from twinbench.sweep import parse_stack_options

    with handled():
        opts = parse_stack_options(options)
        try:
            return tuple(with_options(resolve_stacks(list(stacks) or None), opts))
        except ValueError as e:
            fail(str(e))


def _run(options: dict, db: Optional[Path], resume: Optional[str], dry_run: bool) -> None:
    require_linux()
    from twinbench.api import plan, resume_plan
    from twinbench.config import RunConfig

    store = None
    with handled():
        if resume:
            store = _open_store(db)
            planned = resume_plan(store, resume)
        else:
            planned = plan(RunConfig(**run_config_kwargs(options)))  # validates names first
    check_out_dir(planned.out_dir)
    if dry_run:
        _check_folder(planned, options["force"])
        console.print(safe(_plan_line(planned, store, db)), highlight=False)
        return
    store = store or _open_store(db)
    console.print(safe(_plan_line(planned, store, db)), highlight=False)
    t0 = time.monotonic()
    results = _execute(planned, store, options["force"])
    _print_results(results)
    console.print(f"run wall time: {_minutes(time.monotonic() - t0)}", highlight=False)
    console.print(f"results: {safe(planned.out_dir / 'results.json')}  (run id "
                  f"{safe(planned.run_id)}, history {safe(store.path)})")
    _report_after_run(planned.out_dir)
    _exit_if_not_ok(results)


def _plan_line(planned, store, db: Optional[Path]) -> str:
    """What will run and how long it should take (estimate.plan_line). A dry run reads the
    history only where it exists: it creates nothing."""
    from twinbench.estimate import plan_line
    from twinbench.store import Store, default_db_path

    if store is None:
        path = db or default_db_path()
        try:
            store = Store(path) if Path(path).is_file() else None
        except Exception:  # noqa: BLE001 - an unreadable history only loses the estimate's basis
            store = None
    return plan_line(planned, store)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s ({seconds:.0f} s)"


def _exit_if_not_ok(results) -> None:
    """Exit 1, after everything is written and printed, when a cell is not ok or (with
    export) an artifact did not reload within tolerance: `twinbench run && ...` in CI must
    not go on after a run that measured nothing."""
    from collections import Counter

    entries = [e for c in results.cells for e in getattr(c, "portability", None) or []
               if isinstance(e, dict)]
    parts = []
    for what, statuses in (("cells", [c.status for c in results.cells]),
                           ("exported artifacts", [str(e.get("status")) for e in entries])):
        bad = Counter(s for s in statuses if s != "ok")
        if bad:
            parts.append(f"{sum(bad.values())} of {len(statuses)} {what} not ok ("
                         + ", ".join(f"{k} {n}" for k, n in bad.items()) + ")")
    if parts:
        err.print("; ".join(parts) + ": exit 1", highlight=False, markup=False)
        raise typer.Exit(1)


def _check_folder(planned, force: bool) -> None:
    from twinbench.api import check_folder

    with handled():
        check_folder(planned.out_dir, planned.run_id, force)


def _execute(planned, store, force: bool = False):
    """Run a validated plan with a progress display; bad input and interrupts become the
    one-line error (exit 2, or 130 after Ctrl-C/SIGTERM/SIGHUP with the resume command)."""
    from twinbench.api import run as api_run

    try:
        with handled(), _progress() as p:
            return api_run(planned.config, events=_progress_events(p), planned=planned,
                           store=store, force=force)
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
    _print_scaling(results)


def _print_scaling(results) -> None:
    """A sweep's exponents and crossovers, and a tune's default-vs-best table, when the
    run holds sweep points or stack variants (so `run --resume` of either prints them)."""
    from twinbench.report.scaling import print_scaling

    print_scaling(console, results.cells)


@app.command()
def latency(
    tasks: str = typer.Option("quick", help="Tasks or groups, comma-separated."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    models: Optional[str] = typer.Option(None, help="Model families \\[default: each task's]."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs before the LoadGen runs."),
    duration: float = typer.Option(2.0, help="Minimum seconds of each LoadGen run."),
    server_steps: int = typer.Option(6, help="Bisection steps for the Server QPS."),
    latency_bound_ms: float = typer.Option(10.0, help="Server scenario: p99 latency bound."),
    threads: Optional[int] = threads_option(),
    out: Optional[Path] = out_option(),
    db: Optional[Path] = db_option(),
) -> None:
    """Train each twin, then MLPerf LoadGen: SingleStream p90, Server QPS within the p99
    bound (bisection), Offline samples/s, each with LoadGen's VALID/INVALID verdict."""
    require_linux()
    from twinbench.api import plan
    from twinbench.config import RunConfig
    from twinbench.report.console import loadgen_table

    kw = dict(tasks=names("--tasks", tasks), stacks=names("--stacks", stacks),
              models=names("--models", models), epochs=epochs,
              out=out, loadgen=True, loadgen_duration_s=duration,
              loadgen_server_steps=server_steps, latency_bound_ms=latency_bound_ms)
    if threads is not None:
        kw["threads"] = threads
    with handled({"loadgen_duration_s": "--duration", "loadgen_server_steps": "--server-steps"}):
        planned = plan(RunConfig(**kw))
    check_out_dir(planned.out_dir)
    results = _execute(planned, _open_store(db))

    console.print(loadgen_table(results))
    console.print(f"LoadGen logs: {safe(planned.out_dir / 'cells')}/*/loadgen/")
    _exit_if_not_ok(results)


@app.command("import")
def import_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<run id>/) holding "
                                   "results.json and/or verify.json."),
    db: Optional[Path] = db_option(),
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
    models: Optional[str] = typer.Option(None, help="Model families, comma-separated "
                                         "(cnn, bilstm, textcnn, transformer, resnet) "
                                         "\\[default: all; with --recipes: cnn,resnet]."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    seed: int = typer.Option(0, help="Seed of the canonical weights and the probe batch."),
    threads: Optional[int] = threads_option(),
    out: Optional[Path] = out_option(),
    cell_timeout: float = cell_timeout_option(),
    jobs: int = typer.Option(1, help="Cells run at once (nothing is timed; each cell's "
                             "threads share the CPUs)."),
    recipes: Optional[str] = typer.Option(None, help="Training recipes to check too, "
                                          "comma-separated, or all: 10 steps each with its "
                                          "schedule, weight decay, clipping, loss and "
                                          "augmentation (see twinbench.recipe.RECIPES)."),
) -> None:
    """Prove the twins equal: parameter count, forward, loss, gradients, optimizer steps
    and a 10-step loss trajectory, each stack against the torch twin; with --recipes also
    each recipe's learning rate, weights and loss at every step. Exit 1 on failure."""
    require_linux()
    from twinbench.api import plan
    from twinbench.api import verify as api_verify
    from twinbench.config import RunConfig
    from twinbench.report.console import parity_table

    kwargs = dict(stacks=names("--stacks", stacks), seed=seed, out=out,
                  cell_timeout_s=cell_timeout, probe_jobs=jobs,
                  parity_recipes=names("--recipes", recipes))
    models = ("cnn,resnet" if recipes is not None else "all") if models is None else models
    if threads is not None:
        kwargs["threads"] = threads
    with handled({"probe_jobs": "--jobs", "parity_recipes": "--recipes"}, writes=True):
        config = RunConfig(**kwargs)
        planned = plan(config, models=list(names("--models", models)))
        check_out_dir(planned.out_dir)
        with _progress() as p:
            results = api_verify(config, events=_progress_events(p), planned=planned)
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
    import sys

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
    threads: Optional[int] = threads_option("process"),
    out: Optional[Path] = out_option(),
    cell_timeout: float = cell_timeout_option("process"),
    latency_calls: int = typer.Option(300, help="Timed batch-1 calls per runtime."),
    latency_budget: float = typer.Option(2.0, help="Seconds of timed calls per runtime before "
                                         "it stops short of --latency-calls."),
) -> None:
    """Export every twin to every format its stack offers, reload each artifact in its
    target runtime in a fresh process, and compare: diff, size, load time, b1 latency."""
    require_linux()
    from twinbench.api import plan
    from twinbench.api_export import check_formats, export_matrix
    from twinbench.config import RunConfig
    from twinbench.report.export_table import export_table

    kwargs = dict(models=names("--models", models), stacks=names("--stacks", stacks),
                  export_formats=names("--formats", formats),
                  export_epochs=epochs, export_tolerance=tolerance, seed=seed, out=out,
                  cell_timeout_s=cell_timeout, latency_calls=latency_calls,
                  latency_budget_s=latency_budget)
    if threads is not None:
        kwargs["threads"] = threads
    flags = {"export_formats": "--formats", "export_epochs": "--epochs",
             "export_tolerance": "--tolerance"}
    with handled(flags, writes=True):
        config = RunConfig(**kwargs)
        check_formats(config)
        planned = plan(config, models=list(config.models))
        check_out_dir(planned.out_dir)
        with _progress() as p:
            results = export_matrix(config, events=_progress_events(p), planned=planned)
    console.print(export_table(results))
    console.print(f"matrix: {safe(planned.out_dir / 'export.json')}")
    _exit_if_not_ok(results)


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
