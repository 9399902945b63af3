"""`twinbench sweep` (the scaling map) and `twinbench tune` (each stack's fastest verified
variant): both are ordinary runs whose cells are sweep points or stack variants, so
they are stored, verified and resumed (`twinbench run --resume`) like any run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from twinbench.cli.common import (
    app,
    cell_timeout_option,
    db_option,
    handled,
    names,
    out_option,
    threads_option,
)
from twinbench.cli.run_commands import _run, optioned_stacks


def _default_tasks(models: list[str]) -> str:
    """Without --tasks: the task each family is probed on (cnn: digits, bilstm: text)."""
    from twinbench.models import spec_module

    return ",".join(dict.fromkeys(spec_module(m).PROBE_TASK for m in models))


def _options(**given) -> dict:
    """The `run` options a sweep or tune leaves at run's defaults."""
    base = dict(suite=None, tasks=None, model=None, data=None, image_size=None, dataset=None,
                data_dir=None, holdout=None, batch_size=None, seed=0, target_accuracy=None,
                cell_memory_mb=None, probe_jobs=None, wait_quiet=0.0, latency_calls=None,
                latency_budget=None, latency_bound_ms=10.0, loadgen=False, device="cpu",
                export=False, force=False, stack_option=[])
    return {**base, **given}


@app.command()
def sweep(
    models: str = typer.Option("cnn", help="Model families, comma-separated."),
    vary: list[str] = typer.Option(..., "--vary", help="AXIS=V1,V2,... (repeatable): a spec "
                                   "knob of the family (width; resnet depth; transformer "
                                   "blocks), train_batch, threads, or batch (inference batch "
                                   "sizes, timed inside each cell: no extra cells)."),
    stacks: Optional[str] = typer.Option(None, help="Stacks, comma-separated (variants "
                                         "too: 'torch[channels_last=1]') \\[default: all]."),
    tasks: Optional[str] = typer.Option(None, help="Tasks \\[default: quick]."),
    repeats: int = typer.Option(3, help="Fresh-process repeats per point (3 or more for "
                                "exponents with CIs and tested crossovers)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs per cell."),
    threads: Optional[int] = threads_option(),
    out: Optional[Path] = out_option(),
    cell_timeout: float = cell_timeout_option(),
    executor: str = typer.Option("local", help="Where cells run: local or ray."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address."),
    stack_option: list[str] = typer.Option([], "--stack-option", help="STACK:OPTION=VALUE, "
                                           "repeatable."),
    db: Optional[Path] = db_option(),
    dry_run: bool = typer.Option(False, help="Validate and print the plan; run nothing."),
) -> None:
    """The scaling map: every point of the --vary axes is an ordinary cell (verified twins,
    its own process, stored, resumable with `twinbench run --resume`). Prints each cost's
    fitted exponent per stack and the crossovers that hold per process."""
    from twinbench.sweep import parse_vary, sweep_plan

    with handled():
        points = sweep_plan(list(names("--models", models)), parse_vary(vary))
    opts = _options(models=",".join(points.models), stacks=stacks,
                    tasks=tasks or _default_tasks(list(points.models)),
                    repeats=repeats, epochs=epochs, threads=threads, out=out,
                    cell_timeout=cell_timeout, executor=executor, ray_address=ray_address,
                    stack_option=stack_option)
    opts["infer_batches"] = points.infer_batches
    _run(opts, db, None, dry_run)


@app.command()
def tune(
    models: str = typer.Option("cnn", help="Model families, comma-separated."),
    stacks: Optional[str] = typer.Option(None, help="Stacks whose variants to try "
                                         "\\[default: all]."),
    tasks: Optional[str] = typer.Option(None, help="Tasks \\[default: quick]."),
    repeats: int = typer.Option(3, help="Fresh-process repeats per variant."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs per cell (a variant "
                                         "with steps_per_execution 32 needs enough steps)."),
    threads: Optional[int] = threads_option(),
    out: Optional[Path] = out_option(),
    cell_timeout: float = cell_timeout_option(),
    executor: str = typer.Option("local", help="Where cells run: local or ray."),
    db: Optional[Path] = db_option(),
    dry_run: bool = typer.Option(False, help="Validate and print the plan; run nothing."),
) -> None:
    """Each stack's default against every variant that changes one option (torch
    channels_last and compile mode; Keras steps_per_execution and jit_compile; TF oneDNN),
    each verified before it is timed. Prints default vs best verified variant with the
    speedup, its CI, and the --stack-option that fixes it in `run`."""
    from twinbench.errors import TwinbenchError
    from twinbench.models import resolve_models
    from twinbench.stacks import resolve_stacks
    from twinbench.sweep import tune_stacks

    with handled():
        try:
            base = resolve_stacks(list(names("--stacks", stacks)) or None)
            families = resolve_models(list(names("--models", models)))
        except ValueError as e:
            raise TwinbenchError(str(e)) from None
        if any("[" in s or "#" in s for s in base):
            raise TwinbenchError("tune --stacks takes plain stack names; it adds the variants")
    from twinbench.models import spec_module

    kinds = {spec_module(f).KIND for f in families}
    opts = _options(models=models, stacks=",".join(tune_stacks(base, kinds)),
                    tasks=tasks or _default_tasks(families),
                    repeats=repeats, epochs=epochs, threads=threads, out=out,
                    cell_timeout=cell_timeout, executor=executor, ray_address=None)
    _run(opts, db, None, dry_run)


__all__ = ["optioned_stacks", "sweep", "tune"]
