"""Hand-checked values for the framework-free statistics."""

import numpy as np
import pytest

from twinbench.measure.stats import median_iqr, percentiles
from twinbench.measure.timing import StepTimer, time_calls


def test_percentiles_linear_interpolation_by_hand():
    # 1..5: p50 = 3; p90 sits at rank 0.9*4 = 3.6 -> 4 + 0.6*(5-4) = 4.6; p99 -> 4.96
    p = percentiles([5, 1, 4, 2, 3])
    assert p == pytest.approx({"p50": 3.0, "p90": 4.6, "p99": 4.96})


def test_median_iqr_by_hand():
    # 1..8: q25 at rank 1.75 -> 2.75, q75 at rank 5.25 -> 6.25, median 4.5
    assert median_iqr(range(1, 9)) == {"median": 4.5, "iqr": 3.5, "n": 8}


def test_empty_samples_are_errors():
    with pytest.raises(ValueError):
        median_iqr([])
    with pytest.raises(ValueError):
        percentiles([])


def test_step_timer_keeps_full_batches_after_warmup():
    t = StepTimer(durations_s=[9.0, 0.5, 0.25, 0.1], samples=[32, 32, 32, 10])
    # warm-up drops the first step, the short last batch is dropped too
    assert t.throughputs(warmup=1, full_batch=32).tolist() == [64.0, 128.0]


def test_time_calls_requires_two_warmups_and_counts_calls():
    calls = []
    with pytest.raises(ValueError):
        time_calls(lambda: calls.append(1), calls=3, warmup=1)
    ms = time_calls(lambda: calls.append(1), calls=4, warmup=2)
    assert len(ms) == 4 and len(calls) == 6 and np.all(ms >= 0)


# --- bootstrap, Mann-Whitney, CV: values worked out by hand ---
from twinbench.measure.stats import (  # noqa: E402
    bootstrap_ci,
    ci95,
    cv,
    significant,
    summarize,
    t_ci,
)


def test_bootstrap_ci_by_hand():
    # Sample {0, 1}: a resample has median 0 (both 0, prob 1/4), 0.5 (1/2) or 1 (1/4).
    # The 2.5% and 97.5% quantiles of that distribution are 0 and 1.
    assert bootstrap_ci([0.0, 1.0], n_resamples=4000, seed=1) == (0.0, 1.0)
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert bootstrap_ci([7.0]) is None
    # same seed, same interval: the CI is reproducible
    x = [1.0, 2.0, 4.0, 8.0, 16.0, 3.0, 5.0]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    lo, hi = bootstrap_ci(x, seed=3)
    assert min(x) <= lo <= 4.0 <= hi <= max(x)  # median 4 lies inside


def test_t_ci_by_hand():
    # [1, 2, 3]: mean 2, s = 1, t(0.975, 2 df) = 4.302653 (the t table), half width
    # 4.302653 * 1 / sqrt(3) = 2.484138
    lo, hi = t_ci([1.0, 2.0, 3.0])
    assert lo == pytest.approx(2 - 2.484138, abs=1e-6) and hi == pytest.approx(2 + 2.484138,
                                                                                abs=1e-6)
    # [10, 12]: mean 11, s = sqrt(2), t(0.975, 1 df) = 12.706205, half 12.706205 * sqrt(2) / sqrt(2)
    assert t_ci([10.0, 12.0]) == pytest.approx((11 - 12.706205, 11 + 12.706205), abs=1e-5)
    assert t_ci([5.0, 5.0, 5.0]) == (5.0, 5.0) and t_ci([5.0]) is None


def test_small_samples_get_a_t_interval_because_the_bootstrap_undercovers():
    # The bootstrap of 3 values is [min, max], which covers the median with probability
    # 1 - 2 * 0.5**3 = 75%, not 95%: below 6 values the CI is Student-t, and says so.
    x3 = [2279.0, 2147.0, 2408.0]
    assert bootstrap_ci(x3, seed=0) == (2147.0, 2408.0)
    ci, method = ci95(x3)
    assert method.startswith("Student-t") and ci == t_ci(x3)
    assert ci[0] < min(x3) and ci[1] > max(x3)
    x6 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert ci95(x6, seed=2) == (bootstrap_ci(x6, seed=2), "bootstrap percentile (median)")
    s = summarize(x3, spans="repeats across processes")
    assert s["ci95"] == list(t_ci(x3)) and s["ci_method"] == method


def test_cv_and_noise_flag_by_hand():
    # mean 2, sample sd sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1 -> cv 0.5
    assert cv([1, 2, 3]) == pytest.approx(0.5)
    s = summarize([1, 2, 3], spans="repeats across processes")
    assert s["noisy"] and s["median"] == 2 and s["spans"] == "repeats across processes"
    assert not summarize([100, 101, 99], spans="steps")["noisy"]  # cv 0.01


def test_significance_needs_p_and_effect():
    assert significant({"p": 0.001, "ratio": 1.10})
    assert not significant({"p": 0.02, "ratio": 1.50})  # p too large
    assert not significant({"p": 0.0001, "ratio": 1.01})  # effect below 3%


def test_time_to_accuracy_score_by_hand():
    from twinbench.measure.stats import time_to_accuracy_score as tta

    assert tta([10.0, 20.0, 30.0]) == {"score_s": 20.0, "method": "mean", "runs": 3,
                                       "reached": 3}
    # 5 runs: drop 1 and 100, mean of 10, 20, 30 = 20
    assert tta([100.0, 10.0, 1.0, 30.0, 20.0])["score_s"] == 20.0
    # one run never reached: with 5 runs it is the slowest and is dropped (MLPerf)
    r = tta([None, 10.0, 1.0, 30.0, 20.0])
    assert r["score_s"] == 20.0 and r["reached"] == 4 and r["method"] == "olympic mean"
    # with 3 runs it cannot be dropped: not reached
    assert tta([None, 10.0, 20.0])["score_s"] is None


# --- the per-process test (issue 16): hand-checked, then its false-winner rate ---
from twinbench.measure.stats import PROCESS_ALPHA, process_test, welch_log_t  # noqa: E402


def test_welch_log_t_by_hand():
    # logs a = 0, .1, .2 and b = .3, .4, .5: means .1 and .4, variances (ddof 1) .01 each.
    # t = -.3 / sqrt(.01/3 + .01/3) = -3.6742; Welch df = (2 * .01/3)^2 / (2 * (.01/3)^2 / 2)
    # = 4; two-sided p = 2 * (1 - T_4(3.6742)) = 0.021312; ratio = exp(.1 - .4) = 0.74082.
    r = welch_log_t(np.exp([0, 0.1, 0.2]), np.exp([0.3, 0.4, 0.5]))
    assert r["t"] == pytest.approx(-3.674235, rel=1e-6)
    assert r["df"] == pytest.approx(4.0)
    assert r["p"] == pytest.approx(0.021312, rel=1e-4)
    assert r["ratio"] == pytest.approx(np.exp(-0.3))
    # constant samples: equal is p = 1, unequal is certain
    assert welch_log_t([2, 2, 2], [2, 2, 2])["p"] == 1.0
    assert welch_log_t([2, 2, 2], [3, 3, 3])["p"] == 0.0
    with pytest.raises(ValueError):
        welch_log_t([1.0, -1.0], [1.0, 2.0])


def test_process_test_needs_three_processes_and_a_3_percent_effect():
    assert process_test([1.0, 1.1], [2.0, 2.1, 2.2]) is None
    r = process_test(np.exp([0, 0.1, 0.2]), np.exp([0.3, 0.4, 0.5]))
    assert not r["significant"]  # p = 0.021 > 0.01
    far = process_test([1000, 1010, 990], [330, 335, 325])  # about 3x apart
    assert far["significant"] and far["p"] < 1e-4
    tiny = process_test([1000, 1000.1, 999.9], [1015, 1015.1, 1014.9])  # 1.5%: p tiny
    assert tiny["p"] < 1e-6 and not tiny["significant"]


@pytest.mark.parametrize("sigma,outliers", [(0.02, 0.0), (0.10, 0.0), (0.10, 0.1), (0.05, 0.2)])
def test_aa_false_winner_rate_is_at_most_the_stated_level(sigma, outliers):
    """2,000 simulated A/A comparisons, 3 processes a side, with noise like this machine's:
    per-process log-normal noise (two torch processes measured 13% apart, so sigma up to
    0.1) and a share of processes slowed 30% by background load. The rate of a 'winner'
    between a stack and itself must stay within PROCESS_ALPHA plus 3 Monte Carlo SEs."""
    rng = np.random.default_rng(16)
    n = 2000
    logs = rng.normal(0, sigma, (n, 2, 3)) + (rng.random((n, 2, 3)) < outliers) * np.log(1.3)
    wins = sum(process_test(np.exp(x[0]), np.exp(x[1]))["significant"] for x in logs)
    limit = PROCESS_ALPHA + 3 * np.sqrt(PROCESS_ALPHA * (1 - PROCESS_ALPHA) / n)
    assert wins / n <= limit
