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
    tasks: str = typer.Option("quick", help="Tasks or groups, comma-separated (quick, image, digits)."),
    stacks: str = typer.Option("all", help="Stacks, comma-separated; see `twinbench stacks`."),
    models: Optional[str] = typer.Option(None, help="Model families, comma-separated "
                                         "[default: each task's own]."),
    dataset: Optional[str] = typer.Option(None, help="Data set for the tasks [default: each "
                                          "task's own]: digits, synthetic-sentiment, "
                                          "sms-spam, ag-news, trec, imdb."),
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

    kwargs = dict(tasks=split(tasks), stacks=split(stacks), models=split(models),
                  dataset=dataset, data_dir=data_dir, holdout=holdout, epochs=epochs,
                  batch_size=batch_size, seed=seed, out=out, cell_timeout_s=cell_timeout,
                  latency_calls=latency_calls, latency_budget_s=latency_budget)
    if threads is not None:
        kwargs["threads"] = threads
    try:
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
                               "(cnn, bilstm, textcnn, transformer)."),
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
    batch_size: Optional[int] = typer.Option(None, help="Batch size [default: the task's, 32]."),
    samples: Optional[int] = typer.Option(None, help="Use the first N training samples."),
    augment: bool = typer.Option(True, help="Random shifts (and flips) of images."),
    seed: int = typer.Option(0, help="Seed of the split, weights, order and augmentation."),
    threads: Optional[int] = typer.Option(None, help="Threads per process [default: all CPUs]."),
    out: Optional[Path] = typer.Option(None, help="Output folder [default: runs/pipelines-<id>]."),
    cell_timeout: float = typer.Option(900.0, help="Seconds before a measurement is killed."),
) -> None:
    """Measure the input pipelines (the same transforms in numpy, torch DataLoader, tf.data,
    Keras PyDataset and Keras layers): alone, and feeding each stack's training step."""
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
        with _progress() as p:
            results = run_pipelines(config, events=_progress_events(p))
    except ValidationError as e:
        fail(_validation_message(e))
    except TwinbenchError as e:
        fail(str(e))
    console.print(table(results))
    console.print(f"results: {output_dir(config, results.run_id) / 'pipelines.json'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
