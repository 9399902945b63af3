"""The console summary table, built only from a `Results` object (so it always agrees
with results.json)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from twinbench.results import Cell, Results

COLUMNS = ("task", "dataset", "model", "stack", "status", "acc", "params", "train samples/s (IQR)",
           "1st step s", "b1 p50/p99 ms (fastest path)", "b1 p50 ms (idiomatic)",
           "b256 samples/s", "% peak train/b256", "peak RSS MB", "parity")


def printable(value: object) -> str:
    """`value` on one line: characters that are not printable (line breaks, "\\x85",
    "\\u2028", escape codes) are shown escaped, as Python writes them."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(value))


def safe(value: object) -> str:
    """User text (a name, path or reason from a run, a suite or the history database) as
    rich markup that shows it literally: "[/x]" would otherwise close a tag and crash the
    whole table. Everything a table or a print shows that came from input goes through
    here."""
    text = printable(value)
    tail = len(text) - len(text.rstrip("\\"))
    if not tail:
        return escape(text)
    # rich reads 2k backslashes before a tag as k literal ones, and leaves them doubled at
    # the end of a string: doubling them and closing with an empty span shows them as they
    # are, whether a tag follows this text or not.
    return escape(text[:-tail]) + "\\" * (2 * tail) + "[dim][/dim]"


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _parity(c: Cell) -> str:
    if "pass" not in c.parity:
        return "-"
    if c.parity["pass"]:
        return f"ok vs {safe(c.parity['reference'])}"
    return f"[red]FAIL {safe(c.parity.get('failure'))}[/red]"


def _peak(f: dict) -> str:
    if "train_pct_peak" not in f:
        return "-"
    return f"{f['train_pct_peak']:.1f}/{f.get('infer_pct_peak', float('nan')):.1f}"


def row(c: Cell) -> list[str]:
    m = c.metrics
    head = [safe(c.task), safe(c.dataset or "-"), safe(c.model), safe(c.stack)]
    if c.status not in ("ok", "unverified"):
        color = "yellow" if c.status == "skipped" else "red"
        status = f"[{color}]{c.status}[/{color}]"
        return [*head, status, *["-"] * (len(COLUMNS) - len(head) - 2),
                safe((c.reason or "")[:60])]
    tp, lat = m["train_samples_per_s"], m["latency_b1_ms"]
    idio = m["latency_b1_by_path"].get(m["latency_b1_idiomatic"], {})
    return [
        *head, "ok" if c.status == "ok" else "[red]UNVERIFIED[/red]",
        _fmt(m["accuracy"], ".3f"), f"{c.params:,}",
        f"{tp['median']:,.0f} ({tp['iqr']:,.0f})", _fmt(m["first_step_s"], ".1f"),
        f"{lat['p50']:.2f}/{lat['p99']:.2f} ({safe(lat['path'])})",
        f"{idio.get('p50', float('nan')):.2f} ({safe(m['latency_b1_idiomatic'])})",
        f"{m['infer_samples_per_s_b256']:,.0f}", _peak(m.get("flops") or {}),
        _fmt(m["peak_rss_mb"], ".0f"), _parity(c),
    ]


def summary_table(results: Results) -> Table:
    table = Table(title=f"twinbench run {safe(results.run_id)}", show_lines=False)
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
    for col in ("model", "pair", *map(safe, checks), "verdict"):
        table.add_column(col, overflow="fold")
    for c in results.cells:
        pair = safe(f"{c.stack} vs {c.parity.get('reference', '-')}")
        if "checks" not in c.parity:
            table.add_row(safe(c.model), pair, *["-"] * len(checks),
                          f"[yellow]{c.status}[/yellow] {safe((c.reason or '')[:50])}")
            continue
        cells = []
        for k in checks:
            v = c.parity["checks"].get(k)
            cells.append("-" if v is None else
                         f"{v['value']:.1e} " + ("ok" if v["pass"] else "[red]FAIL[/red]"))
        verdict = "[green]pass[/green]" if c.parity["pass"] else "[red]FAIL[/red]"
        table.add_row(safe(c.model), pair, *cells, verdict)
    return table


def _groups(results: Results) -> dict[tuple, list[Cell]]:
    """Measured cells grouped by twin (task, dataset, model, stack), repeats together."""
    groups: dict[tuple, list[Cell]] = {}
    for c in results.cells:
        if c.status in ("ok", "unverified") and "train_samples_per_s" in c.metrics:
            groups.setdefault((c.task, c.dataset, c.model, c.stack), []).append(c)
    return groups


def _ci(s: dict) -> str:
    if s["ci95"] is None:
        return "-"
    lo, hi = s["ci95"]
    return f"[{lo:,.0f}, {hi:,.0f}]"


def repeats_table(results: Results) -> Table:
    """Per twin over its repeats: train throughput (median of the per-repeat medians, its
    95% CI across processes, noise flag), accuracy and time to accuracy."""
    from twinbench.measure.stats import summarize, time_to_accuracy_score

    table = Table(title="repeats (fresh processes; the 95% CI spans repeats across processes: "
                  "Student-t below 6 repeats, else bootstrap)")
    for col in ("task", "model", "stack", "n", "train samples/s median", "95% CI", "CV",
                "acc median", "time to acc (s)"):
        table.add_column(col, overflow="fold")
    for (task, _, model, stack), cells in _groups(results).items():
        tp = summarize([c.metrics["train_samples_per_s"]["median"] for c in cells],
                       spans="repeats across processes")
        acc = summarize([c.metrics["accuracy"] for c in cells], spans="repeats")
        tta = [c.metrics.get("time_to_accuracy") for c in cells]
        tta_txt = "-"
        if all(tta):
            score = time_to_accuracy_score([t["s"] for t in tta])
            tta_txt = (f"{score['score_s']:.1f}" if score["score_s"] is not None else
                       "not reached") + f" ({score['method']}, {score['reached']}/" \
                f"{score['runs']} reached {tta[0]['target']:g})"
        noisy = " [yellow]noisy[/yellow]" if tp["noisy"] else ""
        table.add_row(safe(task), safe(model), safe(stack), str(tp["n"]),
                      f"{tp['median']:,.0f}", _ci(tp),
                      f"{tp['cv']:.1%}{noisy}", f"{acc['median']:.3f}", tta_txt)
    return table


def loadgen_table(results: Results) -> Table:
    """MLPerf LoadGen figures per cell, with LoadGen's own VALID/INVALID verdicts."""
    table = Table(title="LoadGen scenarios, not MLPerf results (fastest batch-1 path)")
    for col in ("task", "model", "stack", "r", "path", "SingleStream p90 ms", "Server QPS "
                "(p99 ms within bound)", "Offline samples/s", "% peak train/infer"):
        table.add_column(col, overflow="fold")
    for c in results.cells:
        lg, fl = c.metrics.get("loadgen"), c.metrics.get("flops", {})
        if not lg:
            continue
        if "error" in lg:
            table.add_row(safe(c.task), safe(c.model), safe(c.stack), str(c.repeat),
                          safe(lg["path"]), f"[red]{safe(lg['error'])}[/red]", "-", "-", "-")
            continue
        ss, sv, off = lg["single_stream"], lg["server"], lg["offline"]
        verdict = lambda r: ("VALID" if r["valid"]  # noqa: E731
                             else f"[yellow]{safe(r['verdict'])}[/yellow]")
        table.add_row(
            safe(c.task), safe(c.model), safe(c.stack), str(c.repeat), safe(lg["path"]),
            f"{_fmt(ss['p90_ms'], '.3f')} {verdict(ss)}",
            f"{sv['qps']:,.0f} ({_fmt(sv['p99_ms'], '.2f')} <= {sv['bound_ms']:g}) "
            f"{verdict(sv)}",
            f"{_fmt(off['samples_per_s'], ',.0f')} {verdict(off)}",
            f"{_fmt(fl.get('train_pct_peak'), '.1f')} / {_fmt(fl.get('infer_pct_peak'), '.1f')}")
    return table
