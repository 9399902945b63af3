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
