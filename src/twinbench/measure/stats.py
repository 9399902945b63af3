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
