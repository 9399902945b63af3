"""The report's charts, one plotly figure each. Framework-free: data comes from the
aggregated groups; every chart returns None when the run has nothing to draw."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from twinbench.analysis.aggregate import METRICS, Group, dig, summary
from twinbench.export.formats import language

HEIGHT = 420
STATUS_SCORE = {"ok": 1.0, "mismatch": 0.5, "failed": 0.0}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def stack_colour(stack: str) -> str:
    """One colour per stack in every chart of every report: fixed by the stack's place in
    STACKS (an A/A copy, `torch#2`, takes the colours after them); unknown names hash."""
    from twinbench.stacks import STACKS

    names = list(STACKS)
    base, sep, k = stack.partition("#")
    if base in names and not sep:
        return PALETTE[names.index(base)]
    if base in names and k.isdigit():
        return PALETTE[(len(names) + names.index(base) + int(k) - 2) % len(PALETTE)]
    return PALETTE[sum(map(ord, stack)) % len(PALETTE)]


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    # The legend sits below the x-axis title (never over an axis label), with room for it.
    fig.update_layout(title=title, height=HEIGHT, margin={"l": 70, "r": 20, "t": 50, "b": 130},
                      template="plotly_white",
                      legend={"orientation": "h", "y": -0.32, "yanchor": "top"}, **kw)
    return fig


def learning_curves(groups: list[Group]) -> go.Figure | None:
    """Test accuracy and training loss per epoch, every stack overlaid (median across
    repeats at each epoch)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy", "training loss"))
    drawn = False
    for g in groups:
        curves = [c.metrics.get("epochs") or [] for c in g.cells if c.status in ("ok", "diverged")]
        by_epoch: dict[int, list[dict]] = {}
        for curve in curves:
            for e in curve:
                by_epoch.setdefault(int(e["epoch"]), []).append(e)
        if not by_epoch:
            continue
        drawn = True
        epochs = sorted(by_epoch)
        for col, key in ((1, "test_accuracy"), (2, "train_loss")):
            ys = [_median([e.get(key) for e in by_epoch[k]]) for k in epochs]
            fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers", name=g.stack,
                                     legendgroup=g.stack, showlegend=col == 1,
                                     line={"color": stack_colour(g.stack)}), row=1, col=col)
    if not drawn:
        return None
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="test accuracy (fraction correct)", row=1, col=1)
    fig.update_yaxes(title_text="training loss (cross-entropy, nats)", row=1, col=2)
    return _layout(fig, "Learning curves (median across repeats)")


def _median(xs: list) -> float | None:
    vals = [x for x in xs if isinstance(x, (int, float))]
    return float(np.median(vals)) if vals else None


def bars_with_ci(groups: list[Group], metric_names: list[str], title: str) -> go.Figure | None:
    """One bar per stack (in its colour) and metric, with whiskers at the 95% CI only
    where there is one: a single value gets no error cap."""
    fig = go.Figure()
    for name in metric_names:
        m = METRICS[name]
        xs, ys, lo, hi = [], [], [], []
        for g in groups:
            s = summary(g, m)
            if s is None:
                continue
            xs.append(g.stack)
            ys.append(s["value"])
            ci = s.get("ci95")
            lo.append(max(s["value"] - ci[0], 0.0) if ci else None)
            hi.append(max(ci[1] - s["value"], 0.0) if ci else None)
        if xs:
            err = ({"type": "data", "symmetric": False, "array": hi, "arrayminus": lo}
                   if any(h is not None for h in hi) else None)
            fig.add_trace(go.Bar(x=xs, y=ys, name=f"{m.label} ({m.unit})", error_y=err,
                                 marker={"color": [stack_colour(x) for x in xs]},
                                 showlegend=False))
            fig.update_yaxes(title_text=f"{m.label} ({m.unit})" if m.unit else m.label)
    if not fig.data:
        return None
    fig.update_xaxes(title_text="stack")
    return _layout(fig, title, barmode="group")


def latency_distribution(groups: list[Group]) -> go.Figure | None:
    """A CDF of the per-call batch-1 latencies where the cells kept them; otherwise the
    p50/p90/p99 of every inference path."""
    m = METRICS["latency_b1_p50_ms"]
    if any(g.raw(m) for g in groups):
        fig = go.Figure()
        for g in groups:
            raw = np.sort(np.asarray(g.raw(m)))
            if raw.size:
                y = np.arange(1, raw.size + 1) / raw.size
                fig.add_trace(go.Scatter(x=raw, y=y, mode="lines", name=g.stack,
                                         line={"color": stack_colour(g.stack)}))
        fig.update_xaxes(type="log", title_text="ms per call, batch 1, fastest path (log)")
        fig.update_yaxes(title_text="fraction of calls (cumulative)")
        return _layout(fig, "Batch-1 latency CDF (fastest path)")
    return latency_percentiles(groups)


def latency_percentiles(groups: list[Group]) -> go.Figure | None:
    fig = go.Figure()
    for q in ("p50", "p90", "p99"):
        xs, ys = [], []
        for g in groups:
            for c in g.ok[:1]:  # the first measured repeat
                for path, v in (c.metrics.get("latency_b1_by_path") or {}).items():
                    if isinstance(v, dict) and isinstance(v.get(q), (int, float)):
                        xs.append(f"{g.stack}: {path}")
                        ys.append(v[q])
        if xs:
            fig.add_trace(go.Bar(x=xs, y=ys, name=q))
    if not fig.data:
        return None
    fig.update_yaxes(type="log", title_text="ms per call (log)")
    fig.update_xaxes(title_text="stack: inference route")
    return _layout(fig, "Batch-1 latency percentiles per inference path (first repeat)",
                   barmode="group")


def flops_chart(groups: list[Group]) -> go.Figure | None:
    fig = go.Figure()
    for key, label in (("train_pct_peak", "training"), ("infer_pct_peak", "inference")):
        xs, ys = [], []
        for g in groups:
            vals = [v for c in g.ok
                    if isinstance(v := dig(c.metrics, ("flops", key)), (int, float))]
            if vals:
                xs.append(g.stack)
                ys.append(float(np.median(vals)))
        if xs:
            fig.add_trace(go.Bar(x=xs, y=ys, name=f"{label} % of peak"))
    if not fig.data:
        return None
    fig.update_yaxes(title_text="% of peak FLOP/s (measured matmul peak)")
    fig.update_xaxes(title_text="stack")
    return _layout(fig, "Achieved FLOP/s as % of peak", barmode="group")


def _port_col(e: dict) -> str:
    lang = e.get("language") or language(str(e.get("runtime")))
    return f"{e.get('format')} → {e.get('runtime')} ({lang})"


def portability_heatmap(entries: dict[str, list[dict]], title: str) -> go.Figure | None:
    """stack -> entries; a cell per (stack, format -> runtime (language)): 1 ok, 0.5
    mismatch, 0 failed, blank where the stack does not offer the format or the runtime was
    skipped (not installed here)."""
    cols = list(dict.fromkeys(_port_col(e) for es in entries.values() for e in es))
    if not cols:
        return None
    rows = list(entries)
    z: list[list[float | None]] = [[None] * len(cols) for _ in rows]
    text = [[""] * len(cols) for _ in rows]
    for i, stack in enumerate(rows):
        for e in entries[stack]:
            j = cols.index(_port_col(e))
            z[i][j] = None if e.get("status") == "skipped" else STATUS_SCORE.get(
                e.get("status"), 0.0)
            text[i][j] = str(e.get("status"))
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=rows, text=text, texttemplate="%{text}",
                               zmin=0, zmax=1, showscale=False,
                               colorscale=[[0, "#d62728"], [0.5, "#ffbf00"], [1, "#2ca02c"]]))
    fig.update_xaxes(title_text="format → runtime (language)")
    fig.update_yaxes(title_text="source stack")
    return _layout(fig, title)
