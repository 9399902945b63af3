"""The scaling map of a sweep: for each cost (training time per sample, batch-1 latency,
batch-256 inference time per sample, first step, peak memory) and stack, the cost
against the swept size on log-log scales, its fitted exponent, and the crossovers between
stacks, stated only where the points on both sides differ per process.

A sweep is read from the cells' names: the points of a family are its model names with
knobs (`cnn[width=0.5]`, `cnn[threads=1]`); a spec knob is plotted against the parameter
count, a run knob against its value. The inference batch axis comes from inside each
cell (metrics.infer_samples_per_s_by_batch).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from twinbench import variants
from twinbench.analysis.aggregate import (
    METRICS,
    Group,
    Metric,
    group_cells,
    is_contended,
    metric_value,
)
from twinbench.measure.scaling import (
    Crossover,
    Fit,
    crossovers,
    fit_exponent,
    point_tests,
    unresolved_flips,
)
from twinbench.measure.stats import MIN_PROCESSES, ci95
from twinbench.models import RUN_KNOBS
from twinbench.results import Cell


@dataclass(frozen=True)
class Cost:
    """A metric as a cost (lower is better): throughputs become time per sample."""

    name: str
    label: str
    unit: str
    metric: Metric | None  # None: the in-cell batch axis (read by `batch_points`)
    invert: bool = False  # cost = scale / value
    scale: float = 1.0

    def of(self, cell: Cell) -> float | None:
        v = metric_value(self.metric, cell.metrics) if self.metric else None
        if v is None or v <= 0:
            return None
        return self.scale / v if self.invert else v


COSTS = (
    Cost("train", "training time per sample", "µs", METRICS["train_samples_per_s"], True, 1e6),
    Cost("latency_b1", "batch-1 latency p50", "ms", METRICS["latency_b1_p50_ms"]),
    Cost("infer_b256", "batch-256 inference time per sample", "µs",
         METRICS["infer_samples_per_s_b256"], True, 1e6),
    Cost("first_step", "first training step from spawn (start-up + compile)", "s",
         METRICS["first_step_s"]),
    Cost("peak_rss", "peak resident memory", "MiB", METRICS["peak_rss_mb"]),
)
BATCH_COST = Cost("infer_batch", "inference time per sample", "µs", None)
AXIS_LABELS = {"parameters": "parameters", "infer_batch": "inference batch size",
               "train_batch": "training batch size", "threads": "threads",
               "length": "tokens per sequence"}


@dataclass
class Series:
    """One stack's points along one sweep: size -> one cost per process. Every verified
    (ok) cell counts, contended ones too (on a shared machine all may be): `contended`
    says how many of the processes shared their CPUs, and every table shows it."""

    stack: str
    points: dict[float, list[float]] = field(default_factory=dict)
    contended: int = 0

    def sizes_and_costs(self) -> tuple[list[float], list[float]]:
        xs = [x for x, vs in sorted(self.points.items()) for _ in vs]
        ys = [v for _, vs in sorted(self.points.items()) for v in vs]
        return xs, ys


@dataclass
class CostMap:
    cost: Cost
    series: list[Series]
    fits: dict[str, Fit | None]
    crossovers: dict[tuple[str, str], list[Crossover]]
    unresolved: dict[tuple[str, str], int]
    summary: str


@dataclass
class Sweep:
    """One sweep: a family (with its fixed knobs) on one task, along one axis."""

    task: str
    dataset: str
    family: str
    fixed: str  # the knobs held fixed, as a name ("cnn[threads=1]"), or the point's name
    axis: str  # key of AXIS_LABELS
    maps: list[CostMap]

    @property
    def title(self) -> str:
        return f"{self.fixed} on {self.task}/{self.dataset}: cost vs {AXIS_LABELS[self.axis]}"


def _x(group: Group, key: str) -> float | None:
    """The size of a point: the parameter count for a spec knob, else the knob's value."""
    if key in RUN_KNOBS:
        return float(variants.parts(group.model)[1][key])
    params = [c.params for c in group.ok if c.params]
    return float(params[0]) if params else None


def sweeps_by_knob(groups: list[Group]) -> list[tuple[tuple, str, list[Group]]]:
    """(sweep key, axis knob, groups) for every knob that takes two or more values among a
    family's points on one task, the other knobs held fixed."""
    by_family: dict[tuple, list[Group]] = {}
    for g in groups:
        by_family.setdefault((g.task, g.dataset, variants.parts(g.model)[0]), []).append(g)
    out = []
    for key, gs in by_family.items():
        knobs = {g.model: variants.parts(g.model)[1] for g in gs}
        keys = sorted({k for kn in knobs.values() for k in kn})
        for k in keys:
            if len({kn.get(k) for kn in knobs.values()}) < 2:
                continue
            lines: dict[str, list[Group]] = {}
            for g in gs:
                if k in knobs[g.model]:
                    fixed = {a: b for a, b in knobs[g.model].items() if a != k}
                    lines.setdefault(variants.join(key[2], fixed), []).append(g)
            out += [((*key, fixed), k, members) for fixed, members in lines.items()
                    if len({knobs[g.model][k] for g in members}) >= 2]  # a line, not a dot
    return out


def knob_sweep(key: tuple, knob: str, groups: list[Group]) -> Sweep:
    task, dataset, family, fixed = key
    axis = knob if knob in RUN_KNOBS else "parameters"
    maps = []
    for cost in COSTS:
        by_stack: dict[str, Series] = {}
        for g in groups:
            x = _x(g, knob)
            kept = [(c, v) for c in g.ok if (v := cost.of(c)) is not None]
            if x is None or not kept:
                continue
            series = by_stack.setdefault(g.stack, Series(g.stack))
            series.points.setdefault(x, []).extend(v for _, v in kept)
            series.contended += sum(is_contended(c) for c, _ in kept)
        if by_stack:
            maps.append(cost_map(cost, list(by_stack.values()), AXIS_LABELS[axis]))
    return Sweep(task, dataset, family, fixed, axis, maps)


def batch_sweeps(groups: list[Group]) -> list[Sweep]:
    """The in-cell inference batch axis of every point that measured one."""
    lines: dict[tuple, dict[str, Series]] = {}
    for g in groups:
        for c in g.ok:
            rates = {float(b): r for b, r in
                     (c.metrics.get("infer_samples_per_s_by_batch") or {}).items()
                     if isinstance(r, (int, float)) and r > 0}
            if not rates:
                continue
            s = lines.setdefault((g.task, g.dataset, g.model), {}).setdefault(
                g.stack, Series(g.stack))
            s.contended += is_contended(c) * len(rates)  # values, as `processes` counts
            for b, rate in rates.items():
                s.points.setdefault(b, []).append(1e6 / rate)  # µs per sample
    return [Sweep(t, d, variants.parts(m)[0], m, "infer_batch",
                  [cost_map(BATCH_COST, list(series.values()), AXIS_LABELS["infer_batch"])])
            for (t, d, m), series in lines.items()
            if any(len(s.points) >= 2 for s in series.values())]


def cost_map(cost: Cost, series: list[Series], axis_label: str) -> CostMap:
    fits = {s.stack: fit_exponent(*s.sizes_and_costs()) for s in series}
    cross: dict[tuple[str, str], list[Crossover]] = {}
    unresolved: dict[tuple[str, str], int] = {}
    for sa, sb in itertools.combinations(series, 2):
        sizes = sorted(set(sa.points) & set(sb.points))
        tests = point_tests(sizes, [sa.points[x] for x in sizes], [sb.points[x] for x in sizes])
        cross[(sa.stack, sb.stack)] = crossovers(tests)
        unresolved[(sa.stack, sb.stack)] = unresolved_flips(tests)
    return CostMap(cost, series, fits, cross, unresolved,
                   leader_summary(cost, series, axis_label))


def leader_summary(cost: Cost, series: list[Series], axis_label: str) -> str:
    """One plain sentence: which stack is cheapest where, from the points where the
    cheapest differs significantly (per process) from every other stack."""
    sizes = sorted(set().union(*(s.points for s in series)))
    if len(series) < 2 or not sizes:
        return f"{cost.label}: one stack measured; nothing to rank"
    leads: list[tuple[float, str]] = []
    for x in sizes:
        here = [s for s in series if x in s.points]
        if len(here) < 2:
            continue
        best = min(here, key=lambda s: float(np.median(s.points[x])))
        others = [s for s in here if s is not best]
        tests = [point_tests([x], [best.points[x]], [o.points[x]])[0] for o in others]
        if all(t.significant for t in tests):
            leads.append((x, best.stack))
    span = f"{_num(sizes[0])} to {_num(sizes[-1])} {axis_label}"
    if not leads:
        few = min(len(v) for s in series for v in s.points.values())
        why = (f" (fewer than {MIN_PROCESSES} processes a point: run --repeats 3)"
               if few < MIN_PROCESSES else "")
        return f"{cost.label}: no stack is significantly cheapest at any point{why}; " \
               f"no crossover in the range measured ({span})"
    changes = [(a, b) for a, b in zip(leads, leads[1:]) if a[1] != b[1]]
    if not changes:
        return (f"{cost.label}: {leads[0][1]} is cheapest wherever the lead is significant "
                f"({len(leads)} of {len(sizes)} points); no crossover in the range measured "
                f"({span})")
    parts = [f"below about {_num(np.sqrt(a[0] * b[0]))} {axis_label} {a[1]} is cheapest; "
             f"above, {b[1]}" for a, b in changes]
    return f"{cost.label}: " + "; then ".join(parts)


def _num(x: float) -> str:
    """A size for a sentence: 34826 -> 35k, 1.31e6 -> 1.3M, 32 -> 32."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.2g}{suffix}" if x / div < 10 else f"{x / div:.0f}{suffix}"
    return f"{x:g}"


def scaling_map(cells: Iterable[Cell]) -> list[Sweep]:
    """Every sweep in a run's cells (none for a run without sweep points)."""
    groups = group_cells(cells)
    out = [knob_sweep(key, knob, gs) for key, knob, gs in sweeps_by_knob(groups)]
    return out + batch_sweeps(groups)


def point_summary(values: list[float]) -> tuple[float, tuple[float, float] | None]:
    """A point's median and 95% CI over its processes (measure.stats.ci95)."""
    ci, _ = ci95(values)
    return float(np.median(values)), ci


def summary_rows(sweeps: list[Sweep]) -> list[dict]:
    """One row per sweep, cost and stack: exponent with CI, and the plain summary."""
    rows = []
    for sw in sweeps:
        for m in sw.maps:
            for s in m.series:
                fit = m.fits.get(s.stack)
                rows.append({"sweep": sw.fixed, "axis": AXIS_LABELS[sw.axis],
                             "cost": m.cost.label, "unit": m.cost.unit, "stack": s.stack,
                             "points": len(s.points),
                             "processes": sum(len(v) for v in s.points.values()),
                             "contended": s.contended,
                             "exponent": fit.exponent if fit else None,
                             "ci95": fit.ci95 if fit else None, "summary": m.summary})
    return rows


def crossover_lines(sweeps: list[Sweep]) -> list[str]:
    """Every significant crossover, one sentence each."""
    lines = []
    for sw in sweeps:
        for m in sw.maps:
            for (a, b), found in m.crossovers.items():
                name = {"a": a, "b": b}
                for c in found:
                    lines.append(
                        f"{sw.fixed}, {m.cost.label}: {name[c.cheaper_below]} is cheaper at "
                        f"{_num(c.below)} {AXIS_LABELS[sw.axis]}, {name[c.cheaper_above]} at "
                        f"{_num(c.above)} (both significant per process; flips about "
                        f"{_num(c.about)})")
    return lines
