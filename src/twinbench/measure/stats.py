"""Framework-free summary statistics (hand-checked in tests/test_stats.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """{"p50": ..., ...} with numpy's default linear interpolation."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("percentiles of an empty sample")
    return {f"p{q}": float(np.percentile(arr, q)) for q in qs}


def median_iqr(values: Sequence[float]) -> dict[str, float]:
    """Median and interquartile range (p75 - p25), with the sample size."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("median of an empty sample")
    q25, q50, q75 = np.percentile(arr, [25, 50, 75])
    return {"median": float(q50), "iqr": float(q75 - q25), "n": int(arr.size)}


# --- Uncertainty and comparison (issue 5). scipy is the well-kept reference for both. ---

NOISE_CV = 0.10  # coefficient of variation above which a metric is flagged as noisy
# Below 6 values no distribution-free 95% CI of a median exists: the widest one, [min, max],
# covers it with probability 1 - 2 * 0.5**n (75% at n = 3, 93.75% at n = 5), and the
# percentile bootstrap of the median gives about that interval. From 6 on, [min, max]
# covers 96.9%, and the bootstrap is used.
MIN_N_BOOTSTRAP = 6


def bootstrap_ci(values: Sequence[float], level: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0, q: float = 50.0) -> tuple[float, float] | None:
    """Percentile-bootstrap CI of the q-th percentile (the median by default), seeded
    (reproducible): `bootstrap` of one sample.

    None for fewer than 2 values: one number has no spread to resample. A constant
    sample gives the degenerate interval (c, c).
    """
    return bootstrap((values,), lambda x, axis: np.percentile(x, q, axis=axis), level,
                     n_resamples, seed)


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], q: float = 50.0,
                       level: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap CI of percentile_q(b) / percentile_q(a), the two samples
    resampled independently: `bootstrap` of two samples."""
    def ratio(xa: np.ndarray, xb: np.ndarray, axis: int) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.percentile(xb, q, axis=axis) / np.percentile(xa, q, axis=axis)

    return bootstrap((a, b), ratio, level, n_resamples, seed)


def bootstrap(samples: tuple[Sequence[float], ...], statistic, level: float = 0.95,
              n_resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """Every bootstrap CI of twinbench: scipy.stats.bootstrap, percentile method, each
    sample resampled independently, seeded. `statistic(*samples, axis)` is vectorised.
    None when a sample has fewer than 2 values; (s, s) when every resample gives the same
    statistic s (constant samples: scipy would warn and return NaN)."""
    from scipy import stats as st

    arrs = tuple(np.asarray(x, dtype=float) for x in samples)
    if any(a.size < 2 for a in arrs):
        return None
    if all(np.all(a == a[0]) for a in arrs):
        c = float(statistic(*(a[None, :] for a in arrs), axis=-1)[0])
        return (c, c) if np.isfinite(c) else None
    res = st.bootstrap(arrs, statistic, confidence_level=level, n_resamples=n_resamples,
                       method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else None


def t_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t CI of the mean: mean +- t(1 - (1 - level) / 2, n - 1) * s / sqrt(n).

    It holds its level when the values are normally distributed around a common centre
    (then mean = median); it is what a 95% CI from 3 fresh-process repeats can honestly be.
    None for fewer than 2 values."""
    from scipy import stats as st

    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    half = float(st.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    return float(arr.mean()) - half, float(arr.mean()) + half


def ci95(values: Sequence[float], seed: int = 0) -> tuple[tuple[float, float] | None, str]:
    """The 95% CI of a sample's centre and the method that gave it: the percentile
    bootstrap of the median from MIN_N_BOOTSTRAP values on, Student-t below (see there)."""
    if len(values) >= MIN_N_BOOTSTRAP:
        return bootstrap_ci(values, seed=seed), "bootstrap percentile (median)"
    return t_ci(values), f"Student-t (n < {MIN_N_BOOTSTRAP}, assumes normal noise)"


# --- The process is the unit of evidence (issue 16) ---
# Steps inside one process share its memory layout, thread placement and the load of that
# minute, so they are not independent samples of "this stack": two processes of the same
# torch cnn gave batch-1 p50 0.358 and 0.316 ms (13% apart, p = 6e-30 on per-call samples).
# Winners and regressions are tested on one value per process.
PROCESS_ALPHA = 0.01  # the stated false-winner level of the per-process test
MIN_EFFECT = 0.03  # and a difference smaller than this is never a winner
# Below 3 processes a side the test is not run: with 2, each variance estimate rests on a
# single difference, and one slow process decides the verdict.
MIN_PROCESSES = 3
PROCESS_TEST = "Welch's t-test on log per-process values"


def welch_log_t(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Welch's unequal-variance t-test on the logs of two samples of per-process values.

    Logs, because process-to-process noise is multiplicative (a slow process is a few
    percent slower at every step) and a ratio is what a verdict states: the test's
    difference of means is the log of the ratio of geometric means, `ratio` = a / b.
    Welch's t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b) with the
    Welch-Satterthwaite degrees of freedom; scipy's ttest_ind(equal_var=False) computes it.
    Its level holds for normal log-values; tests/test_stats.py checks its false-winner
    rate by simulation on A/A pairs with noise like this machine's."""
    from scipy import stats as st

    ra, rb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if ra.size < 2 or rb.size < 2:
        raise ValueError("Welch's t-test needs at least 2 values a side")
    if not all(np.all(np.isfinite(r) & (r > 0)) for r in (ra, rb)):
        raise ValueError("Welch's t-test on logs needs positive, finite values")
    xa, xb = np.log(ra), np.log(rb)
    ratio = float(np.exp(xa.mean() - xb.mean()))
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    if va + vb == 0:  # both constant: equal means are no difference, unequal ones certain
        return {"t": 0.0 if ratio == 1 else float("inf"), "df": float(xa.size + xb.size - 2),
                "p": 1.0 if ratio == 1 else 0.0, "ratio": ratio,
                "n_a": int(xa.size), "n_b": int(xb.size)}
    res = st.ttest_ind(xa, xb, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1))
    return {"t": float(res.statistic), "df": float(df), "p": float(res.pvalue),
            "ratio": ratio, "n_a": int(xa.size), "n_b": int(xb.size)}


def process_test(a: Sequence[float], b: Sequence[float], alpha: float = PROCESS_ALPHA,
                 min_effect: float = MIN_EFFECT) -> dict | None:
    """The per-process comparison behind every winner and regression: Welch on logs,
    significant when p < alpha and the ratio of geometric means differs from 1 by at least
    min_effect. None when either side has fewer than MIN_PROCESSES values, or a value is
    not positive and finite."""
    if min(len(a), len(b)) < MIN_PROCESSES:
        return None
    if not all(np.isfinite(v) and v > 0 for v in (*a, *b)):
        return None  # a ratio test needs positive values (an accuracy of 0 has no log)
    r = welch_log_t(a, b)
    r["significant"] = significant(r, alpha, min_effect)
    r["test"] = PROCESS_TEST
    return r


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation: sample standard deviation / mean (ddof=1)."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or arr.mean() == 0:
        return 0.0
    return float(arr.std(ddof=1) / abs(arr.mean()))


def summarize(values: Sequence[float], spans: str, seed: int = 0) -> dict:
    """Median, IQR, 95% CI (`ci95()`: bootstrap, or Student-t for small samples) and the
    noise flag of one metric's sample.

    `spans` says what the sample is: "steps within one process" or "repeats across
    processes" — a CI over steps says nothing about process-to-process variation.
    """
    out: dict = {**median_iqr(values), "spans": spans}
    ci, method = ci95(values, seed=seed)
    out["ci95"] = list(ci) if ci else None
    out["ci_method"] = method if ci else None
    out["cv"] = cv(values)
    out["noisy"] = out["cv"] > NOISE_CV
    return out


def significant(test: dict, alpha: float = PROCESS_ALPHA,
                min_effect: float = MIN_EFFECT) -> bool:
    """A difference counts only when p < alpha AND the ratio differs from 1 by at least
    min_effect."""
    return test["p"] < alpha and abs(test["ratio"] - 1.0) >= min_effect


def time_to_accuracy_score(times: Sequence[float | None]) -> dict:
    """Score of time-to-accuracy runs as MLPerf Training scores them: a run that never
    reached the target counts as infinitely slow; with 5 or more runs the fastest and
    slowest are dropped (the olympic mean) and the rest averaged, else all are averaged.
    A score that still includes an unreached run is None (not reached)."""
    if not times:
        raise ValueError("time to accuracy needs at least one run")
    t = sorted(float("inf") if v is None else float(v) for v in times)
    kept = t[1:-1] if len(t) >= 5 else t
    reached = sum(np.isfinite(t))
    score = float(np.mean(kept)) if np.all(np.isfinite(kept)) else None
    return {"score_s": score, "method": "olympic mean" if len(t) >= 5 else "mean",
            "runs": len(t), "reached": int(reached)}
