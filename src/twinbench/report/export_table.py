"""The portability matrix as a console table, built only from a `Results` object (so it
always agrees with export.json / results.json)."""

from __future__ import annotations

from rich.table import Table

from twinbench.export.formats import language
from twinbench.report.console import safe
from twinbench.results import Cell, Results

COLUMNS = ("model", "stack", "format", "runtime", "language", "status", "max abs diff",
           "batch N", "size", "load ms", "b1 p50 ms", "b1 p99 ms", "exporter / reason")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:,.0f} KiB" if n < 2**20 else f"{n / 2**20:,.1f} MiB"


def _status(e: dict) -> str:
    s = e["status"]
    colour = {"ok": "green", "mismatch": "yellow", "skipped": "dim"}.get(s, "red")
    return f"[{colour}]{safe(s)}[/{colour}]" + (f" ({safe(e['stage'])})" if e.get("stage")
                                                else "")


def _batch_n(e: dict) -> str:
    b = e.get("batch_n")
    if not b:
        return "-"
    return f"{b['max_abs_diff']:.1e}" if "max_abs_diff" in b else "[yellow]no[/yellow]"


def _ms(lat: dict | None, q: str) -> str:
    return "-" if not lat or q not in lat else f"{lat[q]:.3f}"


def entry_row(c: Cell, e: dict) -> list[str]:
    lat, diff = e.get("latency_b1_ms"), e.get("max_abs_diff")
    note = e.get("reason") or e.get("exporter", "")
    if e.get("opset") and not e.get("reason"):
        note += f", opset {e['opset']}"
    lang = e.get("language") or language(str(e["runtime"]))  # older JSON: by runtime name
    return [safe(c.model), safe(c.stack), safe(e["format"]), safe(e["runtime"]), safe(lang),
            _status(e), "-" if diff is None else f"{diff:.1e}", _batch_n(e),
            size(e.get("size_bytes")),
            "-" if "load_s" not in e else f"{e['load_s'] * 1e3:,.0f}",
            _ms(lat, "p50"), _ms(lat, "p99"), safe(note)]


def source_row(c: Cell) -> list[str]:
    lat = c.metrics.get("latency_b1_ms")
    note = c.reason or (f"the twin itself, fastest path: {lat['path']}" if lat else "")
    status = "[green]ok[/green]" if c.status == "ok" else f"[red]{safe(c.status)}[/red]"
    return [safe(c.model), safe(c.stack), "(source)", safe(c.stack), "Python", status, "-",
            "-", "-", "-", _ms(lat, "p50"), _ms(lat, "p99"), safe(note)]


def export_table(results: Results) -> Table:
    table = Table(title=f"twinbench export {safe(results.run_id)}: each artifact reloaded in a "
                  "fresh process and compared with its source twin")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for c in results.cells:
        table.add_row(*source_row(c))
        for e in getattr(c, "portability", None) or []:
            table.add_row(*entry_row(c, e))
        table.add_section()
    return table
