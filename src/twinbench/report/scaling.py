"""Rendering of the scaling map (analysis.scaling) and of a tune (analysis.tune): log-log
plots with each point's CI, the exponents table, the crossovers, and the console tables."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from rich.markup import escape
from rich.table import Table

from twinbench.analysis.scaling import (
    AXIS_LABELS,
    CostMap,
    Sweep,
    crossover_lines,
    point_summary,
    scaling_map,
    summary_rows,
)
from twinbench.analysis.tune import TuneRow, tune_rows
from twinbench.report.charts import _layout, stack_colour
from twinbench.report.tables import table
from twinbench.results import Cell


def _exp(row: dict) -> str:
    if row["exponent"] is None:
        return "-"
    ci = row["ci95"]
    return f"{row['exponent']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def figure(sweep: Sweep, m: CostMap) -> go.Figure | None:
    """One stack per line: median cost per point, whiskers at its 95% CI over processes."""
    fig = go.Figure()
    for s in m.series:
        xs, ys, lo, hi = [], [], [], []
        for x, values in sorted(s.points.items()):
            med, ci = point_summary(values)
            xs.append(x)
            ys.append(med)
            lo.append(max(med - ci[0], 0.0) if ci else 0.0)
            hi.append(max(ci[1] - med, 0.0) if ci else 0.0)
        fit = m.fits.get(s.stack)
        name = s.stack + (f" (exponent {fit.exponent:.2f})" if fit else "")
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name,
                                 line={"color": stack_colour(s.stack)},
                                 error_y={"type": "data", "symmetric": False, "array": hi,
                                          "arrayminus": lo}))
    if not fig.data:
        return None
    fig.update_xaxes(type="log", title_text=AXIS_LABELS[sweep.axis])
    fig.update_yaxes(type="log", title_text=f"{m.cost.label} ({m.cost.unit})")
    return _layout(fig, f"{sweep.fixed}: {m.cost.label} (log-log, 95% CI)")


def sections(cells: list[Cell], start: int = 0) -> list[dict[str, Any]]:
    """The report's "scaling" sections, one per sweep, and a tune section if any."""
    out = []
    for n, sw in enumerate(scaling_map(cells)):
        rows = [r for r in summary_rows([sw])]
        exps = table(f"Scaling exponents: cost ∝ {AXIS_LABELS[sw.axis]}^exponent",
                     ["cost", "stack", "points", "processes", "contended", "exponent [95% CI]"],
                     [[r["cost"], r["stack"], r["points"], r["processes"], r["contended"],
                       _exp(r)] for r in rows],
                     "OLS of log cost on log size over per-process values; CI from Student-t "
                     "on the slope's standard error (n - 2 df). Contended: processes whose "
                     "CPUs other work shared while timed (kept in the map, counted here).")
        summary = table("What the map says", ["cost", "summary"],
                        [[m.cost.label, m.summary.partition(": ")[2]] for m in sw.maps])
        cross = crossover_lines([sw])
        tables = [exps, summary, table("Crossovers (significant per process on both sides)",
                                       ["crossover"], [[c] for c in cross] or
                                       [["no significant crossover in the range measured"]])]
        figs = [f for m in sw.maps if (f := figure(sw, m)) is not None]
        out.append({"anchor": f"scaling-{start + n}", "title": f"Scaling: {sw.title}",
                    "tables": tables, "figures": figs, "portability": None})
    rows = [r for r in tune_rows(cells) if r.best is not None or r.failed]
    if any(r.failed or r.best for r in rows) and _has_variants(cells):
        out.append({"anchor": f"scaling-{start + len(out)}", "title": "Tune: default vs best "
                    "verified variant (training throughput)", "tables": [tune_table(rows)],
                    "figures": [], "portability": None})
    return out


def _has_variants(cells: list[Cell]) -> bool:
    return any("[" in c.stack for c in cells)


def _tune_cells(r: TuneRow) -> list[Any]:
    ci = f"[{r.ci95[0]:.2f}, {r.ci95[1]:.2f}]" if r.ci95 else "-"
    sig = {True: "yes", False: "no", None: "untested (< 3 processes)"}[r.significant]
    if r.default is None:
        sig = "no default measured"
    return [r.task, r.model, r.stack, f"{r.default:.4g}" if r.default else "-",
            r.best or ("the default (no variant faster)" if r.default else "-"),
            f"{r.best_value:.4g}" if r.best_value else "-",
            f"{r.speedup:.2f}x" if r.speedup else "-", ci, sig, r.option or "-",
            str(r.contended), "; ".join(r.failed) or "-"]


TUNE_HEADERS = ["task", "model", "stack", "default samples/s", "best verified variant",
                "its samples/s", "speedup", "95% CI", "significant", "run with", "contended",
                "failed verification or run"]


def tune_table(rows: list[TuneRow]) -> dict:
    return table("Default vs best verified variant", TUNE_HEADERS, [_tune_cells(r) for r in rows],
                 "Speedup: ratio of per-process medians, bootstrap CI; significant by "
                 "Welch's t-test on log per-process values (p < 0.01, >= 3%).")


def print_scaling(console, cells: list[Cell]) -> None:
    """The console tables: exponents and summaries per sweep, crossovers, tune."""
    sweeps = scaling_map(cells)
    for sw in sweeps:
        t = Table(title=escape(f"scaling: {sw.title}"), title_justify="left")
        for col in ("cost", "stack", "points", "procs", "contended", "exponent [95% CI]"):
            t.add_column(col, overflow="fold")
        for r in summary_rows([sw]):
            t.add_row(escape(r["cost"]), escape(r["stack"]), str(r["points"]),
                      str(r["processes"]), str(r["contended"]), _exp(r))
        console.print(t)
        for m in sw.maps:
            console.print(escape(f"  {m.summary}"), highlight=False)
    lines = crossover_lines(sweeps)
    if sweeps:
        console.print(escape("crossovers: " + ("; ".join(lines) if lines else
                                              "no significant crossover in the range measured")),
                      highlight=False)
    if _has_variants(cells):
        t = Table(title="tune: default vs best verified variant (training samples/s)",
                  title_justify="left")
        for col in TUNE_HEADERS:
            t.add_column(col, overflow="fold")
        for r in tune_rows(cells):
            t.add_row(*(escape(str(v)) for v in _tune_cells(r)))
        console.print(t)
