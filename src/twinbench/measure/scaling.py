"""Framework-free maths of a scaling map: the exponent of a power law fitted on
per-process values, and crossovers between two series tested per process.

The process is the unit of evidence (measure.stats): each (size, cost) pair is one fresh
process's value, and a crossover is stated only where the points on both sides of it
differ significantly by `process_test`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twinbench.measure.stats import process_test


@dataclass(frozen=True)
class Fit:
    """cost = c * size^exponent, fitted by OLS of log cost on log size."""

    exponent: float
    ci95: tuple[float, float] | None  # Student-t on the slope's standard error, n - 2 df
    intercept: float  # log c
    n: int  # per-process values
    sizes: int  # distinct sizes
    r2: float


def fit_exponent(sizes: Sequence[float], costs: Sequence[float], level: float = 0.95
                 ) -> Fit | None:
    """OLS of log(cost) on log(size), one pair per process. None with fewer than two
    distinct sizes or a non-positive value. The CI is slope +- t(level, n-2) * SE(slope)
    (scipy.stats.linregress), None when n < 3 (no residual degree of freedom)."""
    from scipy import stats as st

    x, y = np.asarray(sizes, dtype=float), np.asarray(costs, dtype=float)
    if x.size != y.size:
        raise ValueError(f"{x.size} sizes but {y.size} costs")
    if x.size < 2 or not np.all((x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)):
        return None
    if np.unique(x).size < 2:
        return None
    lx, ly = np.log(x), np.log(y)
    res = st.linregress(lx, ly)
    ci = None
    if x.size >= 3 and np.isfinite(res.stderr):
        half = float(st.t.ppf(0.5 + level / 2, x.size - 2) * res.stderr)
        ci = (float(res.slope) - half, float(res.slope) + half)
    return Fit(float(res.slope), ci, float(res.intercept), int(x.size), int(np.unique(x).size),
               float(res.rvalue ** 2))


@dataclass(frozen=True)
class PointTest:
    """Two series at one size: which is cheaper (lower cost), and whether per process."""

    size: float
    cheaper: str | None  # "a", "b", or None when the medians tie
    ratio: float  # median cost a / median cost b
    p: float | None  # per-process test (None: fewer than MIN_PROCESSES a side)
    significant: bool


def point_tests(sizes: Sequence[float], a: Sequence[Sequence[float]],
                b: Sequence[Sequence[float]]) -> list[PointTest]:
    """At each size, the per-process costs of series a and b compared (process_test)."""
    out = []
    for size, va, vb in sorted(zip(sizes, a, b), key=lambda t: t[0]):
        if not len(va) or not len(vb):
            continue
        ma, mb = float(np.median(va)), float(np.median(vb))
        test = process_test(list(va), list(vb))
        cheaper = None if ma == mb else ("a" if ma < mb else "b")
        out.append(PointTest(float(size), cheaper, ma / mb if mb else float("inf"),
                             test["p"] if test else None, bool(test and test["significant"])))
    return out


@dataclass(frozen=True)
class Crossover:
    """The cheaper series changes between two significant points, `below` and `above`
    (no significant point lies between them)."""

    below: float
    above: float
    cheaper_below: str  # "a" or "b"
    cheaper_above: str

    @property
    def about(self) -> float:
        """Where it flips, about: the geometric midpoint (sizes are on a log scale)."""
        return float(np.sqrt(self.below * self.above))


def crossovers(tests: list[PointTest]) -> list[Crossover]:
    """Flips between consecutive *significant* points. A flip of the medians between
    points that are not both significant is not a crossover (see `unresolved_flips`)."""
    sig = [t for t in tests if t.significant and t.cheaper]
    return [Crossover(lo.size, hi.size, lo.cheaper, hi.cheaper)
            for lo, hi in zip(sig, sig[1:]) if lo.cheaper != hi.cheaper]


def unresolved_flips(tests: list[PointTest]) -> int:
    """How many times the cheaper median changes between neighbouring points, significant
    or not, beyond the significant crossovers: flips the data hint at but do not show."""
    seq = [t.cheaper for t in tests if t.cheaper]
    flips = sum(1 for x, y in zip(seq, seq[1:]) if x != y)
    return flips - len(crossovers(tests))
