"""The `twinbench` command: a thin typer layer over `twinbench.api`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Twin models in PyTorch and Keras 3, proven equal, then measured.")
# Piped output (CI logs, files) gets a wide console so tables are never cut off.
console = Console(width=None if sys.stdout.isatty() else 220)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 400)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: never a traceback for bad input."""
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def split(value: Optional[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _validation_message(e: ValidationError) -> str:
    first = e.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "input"
    return f"--{field.replace('_', '-')}: {first['msg']}"


def _progress_events(progress: Progress):
    from twinbench.api import Events

    task_id = progress.add_task("cells", total=0)

    def start(n: int, phase: str) -> None:
        progress.reset(task_id, total=n)
        progress.console.print(f"[bold]{phase}[/bold]")

    return Events(
        on_start=start,
        on_cell_start=lambda t, s: progress.update(task_id, description=f"{t} / {s}"),
        on_cell_end=lambda c: (progress.advance(task_id),
                               progress.console.print(f"  {c.task} / {c.stack}: {c.status}"
                                                      + (f" ({c.reason})" if c.reason else ""),
                                                      highlight=False)),
    )


@app.command()
def run(
    suite: Optional[str] = typer.Option(None, help="A suite: quick, standard, or the path of "
                                        "a .toml file (see `twinbench suites`)."),
    tasks: Optional[str] = typer.Option(None, help="Tasks or groups, comma-separated [default: "
                                        "quick, or every task of --suite]."),
    stacks: Optional[str] = typer.Option(None, help="Stacks, comma-separated; see `twinbench "
                                         "stacks` [default: all, or the suite's]."),
    models: Optional[str] = typer.Option(None, help="Model families, comma-separated "
                                         "[default: each task's own]."),
    dataset: Optional[str] = typer.Option(None, help="Data set for the tasks [default: each "
                                          "task's own]: digits, synthetic-sentiment, "
                                          "sms-spam, ag-news, trec, imdb, mnist, "
                                          "fashion-mnist, cifar10, digits-8x8."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with local copies of the "
                                            "data files (checked, never downloaded)."),
    holdout: Optional[float] = typer.Option(None, help="Split what --data-dir holds: this "
                                            "fraction, stratified and seeded, is the test set."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs per cell [default: the "
                                         "task's: digits 10, text 3]."),
    batch_size: Optional[int] = typer.Option(None, help="Training batch size, the same in "
                                             "every stack [default: 32]."),
    seed: int = typer.Option(0, help="Seed of the split, initial weights and batch order."),
    threads: Optional[int] = typer.Option(None, help="Threads per cell [default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder [default: runs/<run id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a cell is killed."),
    latency_calls: int = typer.Option(300, help="Timed batch-1 calls per inference path."),
    latency_budget: float = typer.Option(2.0, help="Seconds of timed calls per path before it "
                                         "stops short of --latency-calls (slow eager paths)."),
) -> None:
    """Train, evaluate and time every twin; write results.json and print a summary."""
    from twinbench.api import TwinbenchError, plan, run as api_run
    from twinbench.config import RunConfig
    from twinbench.report.console import summary_table

    kwargs = dict(models=split(models), dataset=dataset, data_dir=data_dir, holdout=holdout,
                  epochs=epochs, batch_size=batch_size, seed=seed, out=out,
                  cell_timeout_s=cell_timeout, latency_calls=latency_calls,
                  latency_budget_s=latency_budget)
    given = dict(tasks=split(tasks), stacks=split(stacks), threads=threads)
    kwargs.update({k: v for k, v in given.items() if v is not None and v != ()})
    try:
        if suite is not None:
            kwargs["suite"] = _load_suite(suite)
        config = RunConfig(**kwargs)
        planned = plan(config)  # validates names before anything starts
        with _progress() as p:
            results = api_run(config, events=_progress_events(p), planned=planned)
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    console.print(summary_table(results))
    console.print(f"results: {planned.out_dir / 'results.json'}")


@app.command()
def verify(
    models: str = typer.Option("all", help="Model families, comma-separated "
                               "(cnn, bilstm, textcnn, transformer, resnet)."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    seed: int = typer.Option(0, help="Seed of the canonical weights and the probe batch."),
    threads: Optional[int] = typer.Option(None, help="Threads per cell [default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder [default: runs/<run id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a cell is killed."),
) -> None:
    """Prove the twins equal: parameter count, forward, loss, gradients, optimizer steps
    and a 10-step loss trajectory, each stack against the torch twin. Exit 1 on failure."""
    from twinbench.api import TwinbenchError, plan
    from twinbench.api import verify as api_verify
    from twinbench.config import RunConfig
    from twinbench.report.console import parity_table

    kwargs = dict(stacks=split(stacks), seed=seed, out=out, cell_timeout_s=cell_timeout)
    if threads is not None:
        kwargs["threads"] = threads
    try:
        config = RunConfig(**kwargs)
        planned = plan(config, models=list(split(models)))
        with _progress() as p:
            results = api_verify(config, events=_progress_events(p), planned=planned)
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    console.print(parity_table(results))
    console.print(f"parity: {planned.out_dir / 'verify.json'}")
    bad = [c for c in results.cells if c.status != "skipped" and not c.parity.get("pass")]
    for c in bad:
        err.print(f"[red]FAIL[/red] {c.model} {c.stack}: "
                  f"{c.parity.get('failure') or c.reason}", highlight=False)
    if bad:
        raise typer.Exit(1)


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
        table = Table(title=f"suite {name}: {s.description}", title_justify="left")
        for col in ("task", "dataset", "model", "epochs", "batch", "target", "source"):
            table.add_column(col, overflow="fold")
        for t in s.tasks:
            target = f"{t.target_accuracy:.2%}" if t.target_accuracy is not None else "-"
            table.add_row(t.name, t.dataset, t.model, str(t.epochs), str(t.batch_size), target,
                          t.target_source or "")
        console.print(table)
        console.print(f"  file: {resources.files('twinbench') / 'suites' / f'{name}.toml'}"
                      f"  stacks: {', '.join(s.stacks) or 'all'}", highlight=False)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console)


@app.command("stacks")
def list_stacks() -> None:
    """List the stacks, whether each is installed, and the framework versions."""
    from twinbench.stacks import STACKS, missing_modules, module_version

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
