"""Framework-free aggregation of a run's cells: per-metric summaries with bootstrap CIs,
pairwise stack comparisons per process (Welch on log per-repeat values) and noise
warnings.

Cells are grouped by (node, task, dataset, model, stack) across repeats. A summary's CI
spans *repeats across processes* when a group has >= 2 repeats; otherwise it spans the
per-step (or per-call) samples of the one process, which says nothing about how much a
fresh process would differ. Every summary and test says which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinbench.measure.stats import (
    bootstrap_ci,
    MIN_PROCESSES,
    NOISE_CV,
    PROCESS_TEST,
    cv,
    median_iqr,
    process_test,
    summarize,
)
from twinbench.results import Cell

# Winners and regressions are decided on one value per process (measure.stats.process_test:
# Welch's t-test on log per-process values, from MIN_PROCESSES repeats a side). Pooled
# per-step samples of one process are not independent evidence about a stack: two runs of
# the same torch cell gave p = 6e-93 on them (measured). They give each cell its own CI.
COMPARED_STATUS = "ok"  # unverified / diverged / failed cells are shown, never compared


@dataclass(frozen=True)
class Metric:
    """One headline metric: where a cell holds it and how its raw sample relates to it."""

    name: str
    label: str
    unit: str
    higher_is_better: bool
    path: tuple[str, ...]  # keys into cell.metrics
    raw: str | None = None  # key into cell.metrics["samples"]: per-step / per-call sample
    stat: str = "median"  # which statistic of the raw sample the value is: median | p50 | p99
    raw_unit: str = "steps"  # what one raw value is: "steps" or "calls"
    valid: tuple[str, ...] | None = None  # a bool beside the value; False drops the value


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("train_samples_per_s", "training throughput", "samples/s", True,
           ("train_samples_per_s", "median"), "train_samples_per_s"),
    Metric("latency_b1_p50_ms", "batch-1 latency p50 (fastest path)", "ms", False,
           ("latency_b1_ms", "p50"), "latency_b1_ms", "p50", "calls"),
    Metric("latency_b1_p99_ms", "batch-1 latency p99 (fastest path)", "ms", False,
           ("latency_b1_ms", "p99"), "latency_b1_ms", "p99", "calls"),
    Metric("infer_samples_per_s_b256", "batch-256 inference throughput", "samples/s", True,
           ("infer_samples_per_s_b256",)),
    Metric("first_step_s", "spawn to end of first training step", "s", False,
           ("first_step_s",)),
    Metric("import_s", "framework import", "s", False, ("import_s",)),
    Metric("peak_rss_mb", "peak resident memory", "MiB", False, ("peak_rss_mb",)),
    Metric("time_to_accuracy_s", "time to target accuracy", "s", False,
           ("time_to_accuracy", "s")),
    Metric("accuracy", "test accuracy", "", True, ("accuracy",)),
    Metric("loadgen_single_stream_p90_ms",
           "LoadGen SingleStream p90 (LoadGen scenario, not an MLPerf result)", "ms", False,
           ("loadgen", "single_stream", "p90_ms"),
           valid=("loadgen", "single_stream", "valid")),
    Metric("loadgen_server_qps",
           "LoadGen Server QPS within the p99 bound (LoadGen scenario, not an MLPerf result)",
           "queries/s", True,
           ("loadgen", "server", "qps"), valid=("loadgen", "server", "valid")),
    Metric("loadgen_offline_samples_per_s",
           "LoadGen Offline throughput (LoadGen scenario, not an MLPerf result)", "samples/s",
           True,
           ("loadgen", "offline", "samples_per_s"), valid=("loadgen", "offline", "valid")),
    Metric("train_gflops_s", "training GFLOP/s", "GFLOP/s", True, ("flops", "train_gflops_s")),
    Metric("train_pct_peak", "training % of peak FLOP/s", "%", True, ("flops", "train_pct_peak")),
)}


def dig(d: Any, path: Sequence[str]) -> Any:
    """d[path[0]][path[1]]..., or None where any level is missing."""
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def metric_value(metric: Metric, metrics: dict) -> float | None:
    v = dig(metrics, metric.path)
    if metric.valid is not None and dig(metrics, metric.valid) is False:
        return None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and \
        np.isfinite(v) else None


def is_contended(c: Cell) -> bool:
    """A cell whose timed phases shared its CPUs with other work (measure.contention)."""
    return dig(c.metrics, ("contention", "contended")) is True


def node_label(c: Cell) -> str:
    """The hardware a cell ran on ("" when the run did not record it: one local machine)."""
    node = (c.model_extra or {}).get("node")
    if node is None:
        return ""
    if isinstance(node, dict):
        for k in ("fingerprint", "id", "hostname", "name"):
            if node.get(k):
                return str(node[k])
        return json.dumps(node, sort_keys=True)
    return str(node)


@dataclass
class Group:
    """Every repeat of one twin on one node."""

    node: str
    task: str
    dataset: str
    model: str
    stack: str
    cells: list[Cell] = field(default_factory=list)
    # metric name -> summary: a bootstrap costs a second or so on thousands of steps, and
    # verdicts, tables, charts and noise warnings all ask for the same summaries.
    summaries: dict[str, dict | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def scope(self) -> tuple[str, str, str, str]:
        return self.node, self.task, self.dataset, self.model

    @property
    def ok(self) -> list[Cell]:
        return [c for c in self.cells if c.status == COMPARED_STATUS]

    @property
    def compared(self) -> list[Cell]:
        """The ok cells a verdict may use: those not measured under contention."""
        return [c for c in self.ok if not is_contended(c)]

    @property
    def control_of(self) -> str | None:
        """`torch#2` is an A/A control copy of `torch`: never ranked, compared with it."""
        base, sep, _ = self.stack.partition("#")
        return base if sep else None

    def values(self, metric: Metric, contended: bool = True) -> list[float]:
        """One value per measured repeat (without contended ones when contended=False)."""
        cells = self.ok if contended else self.compared
        return [v for c in cells if (v := metric_value(metric, c.metrics)) is not None]

    def raw(self, metric: Metric) -> list[float]:
        """The raw per-step / per-call samples of every measured repeat, pooled."""
        if metric.raw is None:
            return []
        out: list[float] = []
        for c in self.ok:
            s = dig(c.metrics, ("samples", metric.raw))
            if isinstance(s, list):
                out += [float(x) for x in s if isinstance(x, (int, float))]
        return out


def group_cells(cells: Iterable[Cell]) -> list[Group]:
    """Cells grouped by (node, task, dataset, model, stack), in first-seen order."""
    groups: dict[tuple, Group] = {}
    for c in cells:
        key = (node_label(c), c.task, c.dataset or "", c.model, c.stack)
        groups.setdefault(key, Group(*key)).cells.append(c)
    return list(groups.values())


def scopes(groups: list[Group]) -> dict[tuple, list[Group]]:
    """Groups by scope (node, task, dataset, model): the stacks that may be compared."""
    out: dict[tuple, list[Group]] = {}
    for g in groups:
        out.setdefault(g.scope, []).append(g)
    return out


def _q(metric: Metric) -> float:
    return {"median": 50.0, "p50": 50.0, "p99": 99.0}[metric.stat]


def _raw_summary(raw: list[float], metric: Metric) -> dict:
    spans = f"{metric.raw_unit} within one process"
    if metric.stat in ("median", "p50"):
        out = summarize(raw, spans)
        out["value"] = out["median"]
        return out
    ci = bootstrap_ci(raw, q=_q(metric))
    c = cv(raw)
    return {**median_iqr(raw), "spans": spans, "ci95": list(ci) if ci else None, "cv": c,
            "ci_method": f"bootstrap percentile (p{_q(metric):g})" if ci else None,
            "noisy": c > NOISE_CV, "value": float(np.percentile(raw, _q(metric)))}


def summary(group: Group, metric: Metric) -> dict | None:
    """Median, IQR, 95% CI, CV and what they span, or None when no repeat has the metric.
    `value` is the headline (the median across repeats, or the metric's own statistic of
    the raw samples, e.g. the p99 of the calls). Cached on the group."""
    if metric.name not in group.summaries:
        group.summaries[metric.name] = _summary(group, metric)
    return group.summaries[metric.name]


def _summary(group: Group, metric: Metric) -> dict | None:
    vals = group.values(metric)
    if not vals:
        return None
    if len(vals) >= 2:
        out = summarize(vals, "repeats across processes")
        out["value"] = out["median"]
    elif raw := group.raw(metric):
        out = _raw_summary(raw, metric)
    else:
        out = {"median": vals[0], "iqr": None, "n": 1, "ci95": None, "ci_method": None,
               "cv": None,
               "noisy": False, "value": vals[0],
               "spans": "one value, no CI"}
    out["repeats"] = len(vals)
    out["contended"] = sum(is_contended(c) for c in group.ok)
    return out


def compare(ga: Group, gb: Group, metric: Metric) -> dict | None:
    """a vs b on one metric, per process: the ratio a / b, and, from MIN_PROCESSES
    uncontended repeats a side, Welch's t-test on log per-process values (the ratio is
    then that of geometric means). Below that the comparison is `indicative`: it ranks,
    it never names a winner. None when either has no value."""
    sa, sb = summary(ga, metric), summary(gb, metric)
    if sa is None or sb is None:
        return None
    va, vb = ga.values(metric, contended=False), gb.values(metric, contended=False)
    ratio = sa["value"] / sb["value"] if sb["value"] else float("inf")
    out = {"metric": metric.name, "a": ga.stack, "b": gb.stack, "value_a": sa["value"],
           "value_b": sb["value"], "ratio": ratio, "p": None, "significant": False,
           "winner": None, "n_a": len(va), "n_b": len(vb), "indicative": True,
           "basis": (f"indicative: {len(va)} vs {len(vb)} uncontended processes; a winner "
                     f"needs {MIN_PROCESSES} a side ({PROCESS_TEST})")}
    test = process_test(va, vb) if min(len(va), len(vb)) else None
    if test is None:
        return out
    out.update(ratio=test["ratio"], p=test["p"], significant=test["significant"],
               test=PROCESS_TEST, df=test["df"], indicative=False,
               basis=f"per-process values ({len(va)} vs {len(vb)} processes)")
    if out["significant"]:
        a_better = (test["ratio"] > 1) == metric.higher_is_better
        out["winner"] = ga.stack if a_better else gb.stack
    return out


def ranked(groups: list[Group], metric: Metric) -> list[tuple[Group, dict]]:
    """Groups that have the metric, best first; A/A control copies are not ranked, nor a
    stack whose every measured process ran contended."""
    have = [(g, s) for g in groups if g.control_of is None and g.compared
            and (s := summary(g, metric)) is not None]
    return sorted(have, key=lambda gs: gs[1]["value"], reverse=metric.higher_is_better)


def noise_warnings(groups: list[Group], metrics: Iterable[Metric] | None = None) -> list[dict]:
    """Every (group, metric) whose sample's coefficient of variation exceeds NOISE_CV."""
    out = []
    for g in groups:
        for m in metrics or METRICS.values():
            s = summary(g, m)
            if s and s.get("noisy"):
                out.append({"node": g.node, "task": g.task, "dataset": g.dataset,
                            "model": g.model, "stack": g.stack, "metric": m.name,
                            "label": m.label, "cv": s["cv"], "spans": s["spans"]})
    return out
