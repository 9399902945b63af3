"""The pipelines table and chart, built only from a `Results` object (pipelines.json), so
they always agree with it. `rows()` is what a report section renders."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from twinbench.report.console import safe
from twinbench.results import Cell, Results

COLUMNS = ("task", "pipeline", "fed to", "status", "samples/s", "step ms (IQR)",
           "ms/step (epoch)", "CPU s/1k samples", "cores busy", "batches", "loss = numpy's",
           "note")


def _median(m: dict, key: str) -> float | None:
    v = m.get(key)
    return v.get("median") if isinstance(v, dict) else v


def _final_loss(c: Cell) -> float | None:
    epochs = c.metrics.get("epochs") or []
    return epochs[-1].get("train_loss") if epochs else None


def _equivalence(c: Cell) -> str:
    eq = getattr(c, "equivalence", None)
    if not eq:
        return "-"
    if not eq["pass"]:
        return f"DIFFER ({eq['max_ulps']} ulp)"
    what = "same" if eq["against"] == "numpy reference" else "allowed shifts"
    return f"{what}, bit for bit" if eq["bit_identical"] else f"{what}, <= {eq['max_ulps']} ulp"


def _note(c: Cell) -> str:
    s = c.settings
    if s.get("jit_compile") and s.get("jit_compile_resolved") is False:
        return "XLA off: a layer does not support jit_compile"
    return ""


def rows(results: Results) -> list[dict[str, Any]]:
    """One dict per measurement: raw numbers (None where not measured) and labels."""
    numpy_loss = {(c.task, c.stack): _final_loss(c) for c in results.cells
                  if getattr(c, "pipeline", None) == "numpy" and c.status == "ok"}
    out = []
    for c in results.cells:
        m, train = c.metrics, getattr(c, "measure", "") == "train"
        ref, loss = numpy_loss.get((c.task, c.stack)), _final_loss(c)
        step = m.get("step_ms") or {}
        out.append({
            "task": c.task, "pipeline": getattr(c, "pipeline", "?"),
            "measure": getattr(c, "measure", None),
            "stack": c.stack if train else None, "status": c.status, "reason": c.reason,
            "samples_per_s": _median(m, "samples_per_s"), "step_ms": step.get("median"),
            "step_ms_iqr": step.get("iqr"), "ms_per_step_epoch": m.get("ms_per_step_epoch"),
            "cpu_s_per_1k_samples": m.get("cpu_s_per_1k_samples"),
            "cores_busy": m.get("cores_busy"), "equivalence": _equivalence(c),
            "same_loss_as_numpy": None if not train or ref is None or loss is None
            else loss == ref,
            "note": _note(c)})
    return out


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(results: Results) -> Table:
    t = Table(title=f"twinbench pipelines {safe(results.run_id)}")
    for col in COLUMNS:
        t.add_column(col, overflow="fold")
    for r in rows(results):
        status = r["status"] if r["status"] == "ok" else f"[red]{safe(r['status'])}[/red]"
        same = {None: "-", True: "yes", False: "no"}[r["same_loss_as_numpy"]]
        step = "-" if r["step_ms"] is None else f"{r['step_ms']:.2f} ({r['step_ms_iqr']:.2f})"
        t.add_row(safe(r["task"]), safe(r["pipeline"]), safe(r["stack"] or "(alone)"), status,
                  _fmt(r["samples_per_s"], ",.0f"), step, _fmt(r["ms_per_step_epoch"], ".2f"),
                  _fmt(r["cpu_s_per_1k_samples"], ".3f"), _fmt(r["cores_busy"], ".2f"),
                  safe(r["equivalence"]), same, safe(r["note"] or (r["reason"] or "")[:60]))
    return t


def figure(results: Results):  # -> plotly.graph_objects.Figure
    """Samples/s per pipeline, one panel per task, one bar colour per consumer (the
    pipeline alone, or the stack it feeds). Log scale: alone and training differ by
    orders of magnitude. Needs plotly."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    data = [r for r in rows(results) if r["samples_per_s"] is not None]
    tasks = list(dict.fromkeys(r["task"] for r in data))
    fig = make_subplots(rows=max(len(tasks), 1), cols=1, subplot_titles=tasks)
    consumers = list(dict.fromkeys(r["stack"] or "(alone)" for r in data))
    for i, task in enumerate(tasks, start=1):
        for who in consumers:
            sel = [r for r in data if r["task"] == task and (r["stack"] or "(alone)") == who]
            if sel:
                fig.add_trace(go.Bar(name=who, x=[r["pipeline"] for r in sel],
                                     y=[r["samples_per_s"] for r in sel], legendgroup=who,
                                     showlegend=i == 1), row=i, col=1)
    fig.update_yaxes(type="log", title_text="samples/s")
    fig.update_layout(barmode="group", title="input pipelines: samples/s")
    return fig
