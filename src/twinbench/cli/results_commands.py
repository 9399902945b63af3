"""The commands that read results: history, show, report, compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from twinbench.cli.common import (
    Format,
    _open_store,
    app,
    console,
    db_option,
    emit,
    err,
    fail,
    format_option,
    handled,
    warn,
)
from twinbench.report.console import safe  # every string from input goes through it


@app.command()
def history(
    db: Optional[Path] = db_option(),
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
    db: Optional[Path] = db_option(),
    fmt: Format = format_option(),
    export: Optional[Path] = typer.Option(None, "--export", help="Also write the run's "
                                          "results.json and verify.json, rebuilt from the "
                                          "history, into this folder (its own folder, or "
                                          "a new one)."),
) -> None:
    """Print one stored run: its status and the summary table of its cells."""
    from twinbench.api import TwinbenchError, stored_results
    from twinbench.report.console import summary_table

    store = _open_store(db)
    try:
        results, probes = stored_results(store, run_id)
    except TwinbenchError as e:
        fail(str(e))
    except (ValueError, TypeError) as e:  # ValidationError and JSONDecodeError included
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        fail(f"run {run_id!r} in {store.path}: a stored record is malformed ({first})")
    row = store.run(run_id)
    if export is not None:
        _write_stored(results, probes, export)
    run = {k: row[k] for k in ("status", "created", "out_dir")}
    if emit(fmt, {**run, **results.model_dump(mode="json")}, results.rows()):
        return
    console.print(f"run {safe(run_id)}: {safe(row['status'])}, created {safe(row['created'])}"
                  f", output {safe(row['out_dir'])}", highlight=False)
    console.print(summary_table(results))


def _write_stored(results, probes, folder: Path) -> None:
    """Write a stored run's files into a folder it may hold (a resume writing there at
    the same time, or another run's files, are refused)."""
    from twinbench.api import TwinbenchError, run_folder

    try:
        with run_folder(folder, results.run_id, override=None):
            paths = [results.write(folder)]
            if probes.cells:
                paths.append(probes.write(folder, "verify.json"))
    except TwinbenchError as e:
        fail(str(e))
    except OSError as e:
        fail(f"--export {folder}: cannot write there ({e})")
    console.print(f"wrote {'  '.join(map(str, paths))}; `twinbench report {folder}` writes "
                  f"its report", highlight=False, markup=False)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<run id>/) holding "
                                   "results.json and/or verify.json."),
    html: bool = typer.Option(True, help="Write report.html (self-contained)."),
    markdown: bool = typer.Option(True, help="Write report.md with PNG charts."),
) -> None:
    """Write the run's report: scenario verdicts with CIs and tests, per-task tables and
    charts, the twins' code, the classic table rebuilt, environment and noise warnings."""
    from twinbench.report.build import build_report

    with handled():
        paths = build_report(run_dir, html=html, markdown=markdown, on_warning=warn)
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
    """Per cell and metric: ratio B/A, its 95% CI and the per-process test. Exit 1 when a
    cell of A is missing in B, a cell of B failed, is unverified, diverged, ran contended
    or holds a non-finite value, or a regression beyond --threshold is flagged
    (significant, or untested single values)."""
    from twinbench.analysis.compare import compare_runs

    with handled():
        out = compare_runs(run_a, run_b, threshold)
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
    from twinbench.analysis.verdicts import fmt_num

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
