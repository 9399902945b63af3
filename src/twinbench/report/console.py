"""The console summary table, built only from a `Results` object (so it always agrees
with results.json)."""

from __future__ import annotations

from rich.table import Table

from twinbench.results import Cell, Results

COLUMNS = ("task", "dataset", "model", "stack", "status", "acc", "params", "train samples/s (IQR)",
           "1st step s", "b1 p50/p99 ms (fastest path)", "b1 p50 ms (idiomatic)",
           "b256 samples/s", "peak RSS MB", "parity")


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _parity(c: Cell) -> str:
    if "pass" not in c.parity:
        return "-"
    if c.parity["pass"]:
        return f"ok vs {c.parity['reference']}"
    return f"[red]FAIL {c.parity.get('failure')}[/red]"


def row(c: Cell) -> list[str]:
    m = c.metrics
    head = [c.task, c.dataset or "-", c.model, c.stack]
    if c.status not in ("ok", "unverified"):
        status = f"[yellow]{c.status}[/yellow]" if c.status == "skipped" else f"[red]{c.status}[/red]"
        return [*head, status, *["-"] * (len(COLUMNS) - len(head) - 2), (c.reason or "")[:60]]
    tp, lat = m["train_samples_per_s"], m["latency_b1_ms"]
    idio = m["latency_b1_by_path"].get(m["latency_b1_idiomatic"], {})
    return [
        *head, "ok" if c.status == "ok" else "[red]UNVERIFIED[/red]",
        _fmt(m["accuracy"], ".3f"), f"{c.params:,}",
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


def parity_table(results: Results) -> Table:
    """Pair (stack vs reference) x check -> diff and pass/fail."""
    checks: list[str] = []
    for c in results.cells:
        checks += [k for k in c.parity.get("checks", {}) if k not in checks]
    table = Table(title="twinbench verify: each twin against the reference twin")
    for col in ("model", "pair", *checks, "verdict"):
        table.add_column(col, overflow="fold")
    for c in results.cells:
        pair = f"{c.stack} vs {c.parity.get('reference', '-')}"
        if "checks" not in c.parity:
            table.add_row(c.model, pair, *["-"] * len(checks),
                          f"[yellow]{c.status}[/yellow] {(c.reason or '')[:50]}")
            continue
        cells = []
        for k in checks:
            v = c.parity["checks"].get(k)
            cells.append("-" if v is None else
                         f"{v['value']:.1e} " + ("ok" if v["pass"] else "[red]FAIL[/red]"))
        verdict = "[green]pass[/green]" if c.parity["pass"] else "[red]FAIL[/red]"
        table.add_row(c.model, pair, *cells, verdict)
    return table
