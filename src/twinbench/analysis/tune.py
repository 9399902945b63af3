"""`twinbench tune`: each stack's default against its best verified variant.

Every verified (ok) process counts, contended ones too (on a shared machine all may be);
each row says how many of its processes shared their CPUs.

A variant (`torch[channels_last=1]`) is an ordinary stack: probed against the reference
twin before it is timed, so only verified (`ok`) cells compete. The speedup is the ratio
of per-process medians with its bootstrap CI, and it counts as real only when the
per-process test says so (measure.stats.process_test).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from twinbench import variants
from twinbench.analysis.aggregate import (
    METRICS,
    Group,
    Metric,
    group_cells,
    is_contended,
)
from twinbench.measure.stats import bootstrap_ratio_ci, process_test
from twinbench.results import Cell


@dataclass(frozen=True)
class TuneRow:
    task: str
    model: str
    stack: str  # the default (plain) stack
    default: float | None  # median per-process value of the default
    best: str | None  # the best verified variant's name (None: no variant beat it)
    best_value: float | None
    speedup: float | None  # best / default for higher-is-better, default / best else
    ci95: tuple[float, float] | None
    significant: bool | None  # None: too few processes to test
    failed: tuple[str, ...]  # variants that failed verification or did not run, with why
    option: str | None  # the --stack-option that fixes the best in `run`
    contended: int = 0  # processes of the two compared whose CPUs other work shared


def _median(g: Group, m: Metric) -> float | None:
    vals = g.values(m)
    return float(np.median(vals)) if vals else None


def tune_rows(cells: Iterable[Cell], metric: str = "train_samples_per_s") -> list[TuneRow]:
    m = METRICS[metric]
    by_base: dict[tuple, list[Group]] = {}
    for g in group_cells(cells):
        if "#" in g.stack:
            continue
        by_base.setdefault((g.task, g.model, variants.parts(g.stack)[0]), []).append(g)
    return [_row(key, gs, m) for key, gs in by_base.items()]


def _row(key: tuple, groups: list[Group], m: Metric) -> TuneRow:
    task, model, base = key
    default = next((g for g in groups if g.stack == base), None)
    failed = tuple(f"{g.stack}: {g.cells[0].status} ({(g.cells[0].reason or '')[:80]})"
                   for g in groups if not g.ok)
    d = _median(default, m) if default else None
    better = (lambda a, b: a > b) if m.higher_is_better else (lambda a, b: a < b)
    best, best_v = None, d
    for g in groups:
        v = _median(g, m)
        if g is not default and v is not None and (best_v is None or better(v, best_v)):
            best, best_v = g, v
    if best is None or default is None or d is None:
        return TuneRow(task, model, base, d, None, None, None, None, None, failed, None)
    a, b = default.values(m), best.values(m)
    num, den = (b, a) if m.higher_is_better else (a, b)
    ci = bootstrap_ratio_ci(den, num)  # median(num) / median(den)
    test = process_test(a, b)
    speed = (best_v / d) if m.higher_is_better else (d / best_v)
    opts = variants.parts(best.stack)[1]
    option = " ".join(f"--stack-option {base}:{k}={v}" for k, v in opts.items())
    shared = sum(is_contended(c) for g in (default, best) for c in g.ok)
    return TuneRow(task, model, base, d, best.stack, best_v, speed, ci,
                   test["significant"] if test else None, failed, option, shared)
