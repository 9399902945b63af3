"""`twinbench compare RUN_A RUN_B`: per cell and metric, the ratio B / A with a bootstrap
CI and the per-process test (Welch on log per-repeat values); a change worse than the
threshold is flagged as a regression.
Before any metric, the gate: a cell of A that B lacks, or a cell of B that failed, is
unverified, diverged, ran contended or holds a non-finite headline value, is a regression
row of its own (CI must never go green on a run that measured nothing).
Framework-free; the CLI is a thin layer over `compare_runs`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


from twinbench.measure.stats import (
    MIN_PROCESSES,
    PROCESS_TEST,
    bootstrap_ratio_ci,
    process_test,
)
from twinbench.analysis.aggregate import (
    METRICS,
    Group,
    Metric,
    dig,
    group_cells,
    summary,
)
from twinbench.environment import differences
from twinbench.errors import ReportError
from twinbench.analysis.verdicts import fmt_num
from twinbench.results import Cell, Results, newer_schema

COMPARED = ("train_samples_per_s", "latency_b1_p50_ms", "latency_b1_p99_ms",
            "infer_samples_per_s_b256", "first_step_s", "peak_rss_mb", "time_to_accuracy_s",
            "accuracy", "loadgen_single_stream_p90_ms", "loadgen_server_qps",
            "loadgen_offline_samples_per_s")
CONFIG_KEYS = ("threads", "epochs", "batch_size", "seed", "dtype", "optimizer", "warmup_steps",
               "latency_calls", "latency_budget_s", "device")


def load(run: Path) -> Results:
    path = Path(run) / "results.json" if Path(run).is_dir() else Path(run)
    if not path.exists():
        raise ReportError(f"{run}: no results.json (give a run folder, runs/<run id>/, or "
                          f"its results.json)")
    try:
        return Results.read(path)
    except (ValueError, OSError) as e:  # OSError: a folder named results.json, say
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ReportError(f"{path}: not a twinbench results file ({first})") from None


def ratio_ci(a: Sequence[float], b: Sequence[float], q: float) -> list[float] | None:
    """95% CI of percentile_q(b) / percentile_q(a) (measure.stats.bootstrap_ratio_ci)."""
    ci = bootstrap_ratio_ci(a, b, q)
    return list(ci) if ci else None


def compare_metric(ga: Group, gb: Group, m: Metric, threshold: float) -> dict | None:
    """One row: B / A on metric m for one cell. The test is per process (Welch's t on log
    per-repeat values, from MIN_PROCESSES uncontended repeats a side), with a bootstrap CI
    of the ratio of medians over those values. With fewer, the change is untested."""
    sa, sb = summary(ga, m), summary(gb, m)
    if sa is None or sb is None:
        return None
    ratio = sb["value"] / sa["value"] if sa["value"] else float("inf")
    row = {"task": ga.task, "dataset": ga.dataset, "model": ga.model, "stack": ga.stack,
           "node": ga.node, "metric": m.name, "unit": m.unit, "a": sa["value"],
           "b": sb["value"], "ratio": ratio, "ci95": None, "p": None, "basis": None,
           "significant": False}
    xa, xb = ga.values(m, contended=False), gb.values(m, contended=False)
    test = process_test(xb, xa)
    if test is not None:
        row.update(ci95=ratio_ci(xa, xb, 50.0), p=test["p"], ratio=test["ratio"],
                   significant=test["significant"], test=PROCESS_TEST,
                   basis=f"per-process values ({len(xa)} vs {len(xb)} processes)")
    else:
        row["basis"] = (f"untested: {len(xa)} vs {len(xb)} uncontended processes (the test "
                        f"needs {MIN_PROCESSES} a side: --repeats {MIN_PROCESSES})")
    ratio = row["ratio"]
    worse = ratio < 1 - threshold if m.higher_is_better else ratio > 1 + threshold
    better = ratio > 1 + threshold if m.higher_is_better else ratio < 1 - threshold
    tested = row["p"] is not None
    # An untested change beyond the threshold is flagged too: CI must not pass silently.
    row["regression"] = bool(worse and (row["significant"] or not tested))
    row["verdict"] = ("regression" if row["regression"] else
                      "improvement" if better and (row["significant"] or not tested) else
                      "beyond threshold, not significant" if (worse or better) else "")
    if (worse or better) and not tested:
        row["verdict"] += " (untested: too few processes)"
    return row


def environment_diffs(a: Results, b: Results) -> list[str]:
    """Every difference in machine, software, thread variables and knobs between runs: the
    environment fields `run --resume` checks too (environment.COMPARABLE), and the knobs."""
    out = differences(a.environment, b.environment)
    for k in CONFIG_KEYS:
        if a.config.get(k) != b.config.get(k):
            out.append(f"config.{k}: {a.config.get(k)} vs {b.config.get(k)}")
    return out


GroupKey = tuple[str, str, str, str, str]  # node, task, dataset, model, stack


# A null there is a documented outcome ("target not reached"), not a lost value.
NULL_IS_A_RESULT = ("time_to_accuracy_s",)


def _non_finite(v: object) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def _null_at(metrics: dict, path: tuple[str, ...]) -> bool:
    """The path exists and holds null (a missing key is not a lost value: a phase that
    did not run, such as LoadGen with --no-loadgen)."""
    parent = dig(metrics, path[:-1])
    return isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] is None


def non_finite(c: Cell, ga: Group | None) -> list[str]:
    """Headline metrics of a B cell that are NaN or infinite. results.json stores a NaN as
    null, so a null where A holds a finite value of the same metric counts too."""
    out = []
    for name in COMPARED:
        m = METRICS[name]
        v = dig(c.metrics, m.path)
        if _non_finite(v):
            out.append(f"{name} = {v}")
        elif (name not in NULL_IS_A_RESULT and _null_at(c.metrics, m.path)
              and not (m.valid and dig(c.metrics, m.valid) is False)
              and ga is not None and ga.values(m)):
            out.append(f"{name} = null (NaN), {fmt_num(ga.values(m)[0])} in A")
    return out


def cell_problem(c: Cell, ga: Group | None = None) -> tuple[str, str] | None:
    """(kind, detail) when a cell of run B cannot pass the gate, else None. `ga`: the same
    cell in run A. The contention flag is the cell's own CPU-contention check; a cell
    without it counts as uncontended (runs from before the check)."""
    if c.status != "ok":
        return c.status, (c.reason or "").strip().split("\n")[0]
    if dig(c.metrics, ("contention", "contended")) is True:
        return "contended", "ran under CPU contention"
    # metric_value() drops a NaN like a missing value: without this, a NaN throughput in
    # B would give no row at all, and no regression.
    bad = non_finite(c, ga)
    return ("non-finite", ", ".join(bad)) if bad else None


def _statuses(g: Group | None) -> str:
    """A cell's statuses over its repeats: "ok", "ok x2, failed"; "missing" if absent."""
    if g is None:
        return "missing"
    return ", ".join(s if n == 1 else f"{s} x{n}"
                     for s, n in Counter(c.status for c in g.cells).items())


def _status_row(g: Group, a: str, kind: str, details: list[str]) -> dict:
    more = f" (+{len(details) - 1} more)" if len(details) > 1 else ""
    return {"task": g.task, "dataset": g.dataset, "model": g.model, "stack": g.stack,
            "node": g.node, "metric": "status", "unit": "", "a": a,
            "b": kind if len(details) == 1 else f"{kind} x{len(details)}", "ratio": None,
            "ci95": None, "p": None, "basis": None, "significant": False,
            "regression": True,
            "verdict": f"{kind} in B" + (f": {details[0]}" if details[0] else "") + more}


def group_status_rows(ga: Group | None, gb: Group | None) -> list[dict]:
    """The gate rows of one cell over its repeats: what B lacks, and each kind of problem
    of B's repeats (one row per kind). A stack skipped in B (not installed) counts only
    where A measured it."""
    found: dict[str, list[str]] = {}
    a_rep = {c.repeat for c in ga.cells} if ga else set()
    b_rep = {c.repeat for c in gb.cells} if gb else set()
    repeats = len(a_rep | b_rep) > 1 or any(a_rep | b_rep)
    lost = sorted(a_rep - b_rep)
    if lost:
        found["missing"] = ["" if gb is None else
                            f"repeat {', '.join(map(str, lost))} not in B"]
    for c in gb.cells if gb else []:
        problem = cell_problem(c, ga)
        if problem is None or (problem[0] == "skipped" and not (ga and ga.ok)):
            continue
        found.setdefault(problem[0], []).append(
            f"r{c.repeat}: {problem[1]}" if repeats else problem[1])
    g = gb or ga
    return [_status_row(g, _statuses(ga), kind, details) for kind, details in found.items()]


def status_rows(ga: dict[GroupKey, Group], gb: dict[GroupKey, Group]) -> list[dict]:
    """The gate, before any metric: cells of A missing in B, and cells of B (new ones
    too) that failed, are unverified, diverged, ran contended or hold a non-finite value.
    Every such row is a regression."""
    rows: list[dict] = []
    for key in [*ga, *(k for k in gb if k not in ga)]:
        rows += group_status_rows(ga.get(key), gb.get(key))
    return rows


def keyed(groups: list[Group], nodes: bool) -> dict[GroupKey, Group]:
    """Groups by cell. The node (a host name) is part of the key only when `nodes`: where
    a run spans several nodes (a Ray cluster). Two single-machine runs, such as a CI
    baseline and today's runner, still compare cell by cell (their environment
    differences are warned about); keyed by host name, they would share no cell."""
    return {(g.node if nodes else "", g.task, g.dataset, g.model, g.stack): g
            for g in groups}


def compare_runs(run_a: Path, run_b: Path, threshold: float = 0.05) -> dict:
    """{"rows": [...], "regressions": [...], "not_ok": [...], "env_diffs": [...],
    "only_a", "only_b", "warnings": [...] (a results file from a newer twinbench)}.
    "not_ok" holds the gate's rows (metric "status"), which come first in "rows" and are
    all in "regressions"."""
    if not 0 < threshold < 1:
        raise ReportError(f"--threshold {threshold}: must be a fraction between 0 and 1 "
                          f"(0.05 = 5%)")
    a, b = load(run_a), load(run_b)
    groups_a, groups_b = group_cells(a.cells), group_cells(b.cells)
    nodes = max(len({g.node for g in groups_a}), len({g.node for g in groups_b})) > 1
    ga, gb = keyed(groups_a, nodes), keyed(groups_b, nodes)
    gate = status_rows(ga, gb)
    rows = list(gate)
    for key in (k for k in ga if k in gb):
        for name in COMPARED:
            row = compare_metric(ga[key], gb[key], METRICS[name], threshold)
            if row:
                rows.append(row)
    return {"run_a": a.run_id, "run_b": b.run_id, "threshold": threshold, "rows": rows,
            "regressions": [r for r in rows if r["regression"]], "not_ok": gate,
            "env_diffs": environment_diffs(a, b),
            "only_a": ["/".join(k[1:]) for k in ga if k not in gb],
            "only_b": ["/".join(k[1:]) for k in gb if k not in ga],
            "warnings": [w for w in (newer_schema(a, run_a), newer_schema(b, run_b)) if w]}
