"""The console summary table, built only from a `Results` object (so it always agrees
with results.json)."""

from __future__ import annotations

from rich.table import Table

from twinbench.results import Cell, Results

COLUMNS = ("task", "stack", "status", "acc", "params", "train samples/s (IQR)",
           "1st step s", "b1 p50/p99 ms (fastest path)", "b1 p50 ms (idiomatic)",
           "b256 samples/s", "peak RSS MB", "parity")


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _parity(c: Cell) -> str:
    if "pass" not in c.parity:
        return "-"
    if c.parity["pass"]:
        return f"ok vs {c.parity['reference']}"
    bad = [k for k, v in c.parity["checks"].items() if not v["pass"]]
    return f"[red]FAIL {', '.join(bad)}[/red]"


def row(c: Cell) -> list[str]:
    m = c.metrics
    head = [c.task, c.stack]
    if c.status != "ok":
        status = f"[yellow]{c.status}[/yellow]" if c.status == "skipped" else "[red]failed[/red]"
        return [*head, status, *["-"] * (len(COLUMNS) - 4), (c.reason or "")[:60]]
    tp, lat = m["train_samples_per_s"], m["latency_b1_ms"]
    idio = m["latency_b1_by_path"].get(m["latency_b1_idiomatic"], {})
    return [
        *head, "ok", _fmt(m["accuracy"], ".3f"), f"{c.params:,}",
        f"{tp['median']:,.0f} ({tp['iqr']:,.0f})", _fmt(m["first_step_s"], ".1f"),
        f"{lat['p50']:.2f}/{lat['p99']:.2f} ({lat['path']})",
        f"{idio.get('p50', float('nan')):.2f} ({m['latency_b1_idiomatic']})",
        f"{m['infer_samples_per_s_b256']:,.0f}", _fmt(m["peak_rss_mb"], ".0f"), _parity(c),
    ]


def summary_table(results: Results) -> Table:
    table = Table(title=f"twinbench run {results.run_id}", show_lines=False)
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for c in results.cells:
        table.add_row(*row(c))
    return table
