"""`twinbench compare RUN_A RUN_B`: per cell and metric, the ratio B / A with a bootstrap
CI and a Mann-Whitney test; a change worse than the threshold is flagged as a regression.
Framework-free; the CLI is a thin layer over `compare_runs`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twinbench.measure.stats import MIN_PROCESSES, PROCESS_TEST, process_test
from twinbench.report.aggregate import (
    METRICS,
    Group,
    Metric,
    group_cells,
    summary,
)
from twinbench.report.build import ReportError
from twinbench.results import Results, newer_schema

COMPARED = ("train_samples_per_s", "latency_b1_p50_ms", "latency_b1_p99_ms",
            "infer_samples_per_s_b256", "first_step_s", "peak_rss_mb", "time_to_accuracy_s",
            "accuracy", "loadgen_single_stream_p90_ms", "loadgen_server_qps",
            "loadgen_offline_samples_per_s")
ENV_KEYS = ("cpu_model", "cores", "affinity", "memory_gb", "os", "python", "git_commit",
            "twinbench")
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


def ratio_ci(a: Sequence[float], b: Sequence[float], q: float, seed: int = 0,
             n_resamples: int = 2000) -> list[float] | None:
    """95% percentile-bootstrap CI of percentile_q(b) / percentile_q(a), each sample
    resampled independently (seeded)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size < 2 or xb.size < 2:
        return None
    rng = np.random.default_rng(seed)
    sa = np.percentile(xa[rng.integers(0, xa.size, (n_resamples, xa.size))], q, axis=1)
    sb = np.percentile(xb[rng.integers(0, xb.size, (n_resamples, xb.size))], q, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = sb / sa
    r = r[np.isfinite(r)]
    return [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))] if r.size else None


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
    """Every difference in machine, software, thread variables and knobs between runs."""
    out = []
    ea, eb = a.environment, b.environment
    for k in ENV_KEYS:
        if ea.get(k) != eb.get(k):
            out.append(f"{k}: {ea.get(k)} vs {eb.get(k)}")
    for group in ("packages", "frameworks", "env"):
        da, db = ea.get(group) or {}, eb.get(group) or {}
        for k in sorted(set(da) | set(db)):
            if da.get(k) != db.get(k):
                out.append(f"{group}.{k}: {da.get(k, 'unset')} vs {db.get(k, 'unset')}")
    for k in CONFIG_KEYS:
        if a.config.get(k) != b.config.get(k):
            out.append(f"config.{k}: {a.config.get(k)} vs {b.config.get(k)}")
    return out


def compare_runs(run_a: Path, run_b: Path, threshold: float = 0.05) -> dict:
    """{"rows": [...], "regressions": [...], "env_diffs": [...], "only_a", "only_b",
    "warnings": [...] (a results file from a newer twinbench)}."""
    if not 0 < threshold < 1:
        raise ReportError(f"--threshold {threshold}: must be a fraction between 0 and 1 "
                          f"(0.05 = 5%)")
    a, b = load(run_a), load(run_b)
    ga = {(g.node, g.task, g.dataset, g.model, g.stack): g for g in group_cells(a.cells)}
    gb = {(g.node, g.task, g.dataset, g.model, g.stack): g for g in group_cells(b.cells)}
    rows = []
    for key in (k for k in ga if k in gb):
        for name in COMPARED:
            row = compare_metric(ga[key], gb[key], METRICS[name], threshold)
            if row:
                rows.append(row)
    return {"run_a": a.run_id, "run_b": b.run_id, "threshold": threshold, "rows": rows,
            "regressions": [r for r in rows if r["regression"]],
            "env_diffs": environment_diffs(a, b),
            "only_a": ["/".join(k[1:]) for k in ga if k not in gb],
            "only_b": ["/".join(k[1:]) for k in gb if k not in ga],
            "warnings": [w for w in (newer_schema(a, run_a), newer_schema(b, run_b)) if w]}
