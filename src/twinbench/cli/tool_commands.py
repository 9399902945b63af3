"""Tools: worker (a Ray node), stacks, pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from twinbench.cli.common import (
    Format,
    _progress,
    _progress_events,
    app,
    cell_timeout_option,
    check_out_dir,
    console,
    emit,
    fail,
    format_option,
    handled,
    names,
    out_option,
    require_linux,
    threads_option,
)
from twinbench.report.console import safe  # every string from input goes through it


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
    from twinbench.stacks import OPTIONS, STACKS, missing_modules, module_version

    def options(name: str) -> str:
        return "; ".join(f"{k}={'/'.join(v)}" for k, (v, _) in OPTIONS[name].items()) or "-"

    rows = [{"stack": i.name, "installed": not missing_modules(i),
             "versions": {m: module_version(m) for m in i.modules},
             "compile_mode": i.compile_mode, "options": options(i.name),
             "install": f"pip install 'twinbench[{i.extra}]'" if missing_modules(i) else None}
            for i in STACKS.values()]
    if emit(fmt, rows, rows):
        return
    table = Table(title="twinbench stacks")
    for col in ("stack", "status", "versions", "compile mode", "options (STACK[OPTION=V])",
                "install"):
        table.add_column(col)
    for info in STACKS.values():
        missing = missing_modules(info)
        versions = ", ".join(f"{m} {module_version(m) or '-'}" for m in info.modules)
        status = "[green]installed[/green]" if not missing else "[red]missing[/red]"
        table.add_row(info.name, status, versions, info.compile_mode, options(info.name),
                      "" if not missing else f"pip install 'twinbench[{info.extra}]'")
    console.print(table)


@app.command("pipelines")
def pipelines_cmd(
    tasks: Optional[str] = typer.Option(None, help="Tasks, comma-separated (digits, text) "
                                        "\\[default: digits; --full: digits,text]."),
    stacks: Optional[str] = typer.Option(None, help="Stacks the pipelines feed, "
                                         "comma-separated \\[default: torch, "
                                         "keras-tensorflow, keras-jax; --full: all]."),
    pipelines: Optional[str] = typer.Option(None, help="Pipelines, comma-separated: numpy, "
                                            "torch-dataloader-0, torch-dataloader-2, tf-data, "
                                            "keras-pydataset-0, keras-pydataset-2, "
                                            "keras-layers-outside, keras-layers-inside "
                                            "\\[default: numpy, torch-dataloader-0, tf-data, "
                                            "keras-pydataset-0; --full: all]."),
    full: bool = typer.Option(False, "--full", help="The full plan: both tasks, every "
                              "pipeline, every stack (over 60 processes, about 18 min on 2 "
                              "cores)."),
    measure: str = typer.Option("both", help="pipeline (alone), train (feeding each "
                                "stack) or both."),
    epochs: int = typer.Option(2, help="Training epochs per stack x pipeline."),
    pipeline_epochs: int = typer.Option(3, help="Passes of each pipeline alone."),
    warmup_epochs: int = typer.Option(1, help="First epochs left out of the medians."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size \\[default: the task's, 32]."),
    samples: Optional[int] = typer.Option(None, help="Use the first N training samples."),
    augment: bool = typer.Option(True, help="Random shifts (and flips) of images."),
    seed: int = typer.Option(0, help="Seed of the split, weights, order and augmentation."),
    threads: Optional[int] = threads_option("process"),
    out: Optional[Path] = out_option("runs/pipelines-<id>"),
    cell_timeout: float = cell_timeout_option("measurement"),
) -> None:
    """Measure the input pipelines (the same transforms in numpy, torch DataLoader, tf.data,
    Keras PyDataset and Keras layers): alone, and feeding each stack's training step."""
    require_linux()
    from twinbench.estimate import pipelines_line
    from twinbench.pipelines.api import PipelineConfig, output_dir, plan
    from twinbench.pipelines.api import run as run_pipelines
    from twinbench.report.pipelines import table

    kwargs = {"full": full,
              "tasks": names("--tasks", tasks),
              "stacks": names("--stacks", stacks),
              "pipelines": names("--pipelines", pipelines),
              "measure": measure, "epochs": epochs, "pipeline_epochs": pipeline_epochs,
              "warmup_epochs": warmup_epochs, "batch_size": batch_size, "samples": samples,
              "augment": augment, "seed": seed, "out": out, "cell_timeout_s": cell_timeout}
    if threads is not None:
        kwargs["threads"] = threads
    with handled(writes=True):
        config = PipelineConfig(**kwargs)
        todo, _ = plan(config)  # validates names before anything starts
        if out is not None:
            check_out_dir(out)
        alone = sum(m.stack is None for m in todo)
        console.print(safe(pipelines_line(alone, len(todo) - alone,
                                          str(out or "runs/pipelines-<id>"), config.full)),
                      highlight=False)
        with _progress() as p:
            results = run_pipelines(config, events=_progress_events(p))
    console.print(table(results))
    console.print(f"results: {safe(output_dir(config, results.run_id) / 'pipelines.json')}")


@app.command("recipe-check")
def recipe_check(
    run_dir: Path = typer.Argument(..., help="A run folder (its results.json)."),
) -> None:
    """Did every stack train the same recipe? Each cell's learning rate at every optimizer
    step and its first 10 training losses against the torch cell's. Exit 1 if any differ
    beyond the parity tolerances."""
    import json

    from twinbench.analysis.recipes import LR_TOLERANCE, agreement

    path = run_dir / "results.json" if run_dir.is_dir() else run_dir
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"{path}: not a run's results.json ({e})")
    rows = agreement(cells)
    if not rows:
        fail(f"{path}: no cell recorded its learning rates (a run from before recipes?)")
    table = Table(title=f"recipe agreement against torch (lr <= {LR_TOLERANCE:g} relative; "
                        f"first losses within the family's parity tolerance, relative)")
    for col in ("task", "model", "stack", "recipe", "steps", "lr changes", "lr max rel",
                "first losses", "loss max rel", "loss tolerance", "verdict"):
        table.add_column(col)
    fmt = lambda v: "-" if v is None else f"{v:.1e}"  # noqa: E731
    for r in rows:
        table.add_row(safe(r.task), safe(r.model), safe(r.stack), safe(r.recipe), str(r.steps),
                      str(r.lr_changes), fmt(r.lr_max_rel), str(r.losses), fmt(r.loss_max_rel),
                      f"{r.loss_tolerance:g}", "same" if r.ok else "[red]differs[/red]")
    console.print(table)
    if not all(r.ok for r in rows):
        raise typer.Exit(1)
