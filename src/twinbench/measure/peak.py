"""This machine's float32 matmul peak, measured with numpy in the calling process.

Called inside each cell's process after its CPU affinity and thread variables apply, so
the peak is measured with the same threads the cell used. numpy's BLAS is the probe: it is
framework-neutral, and the library is recorded with the figure. A cell measures it twice,
before its framework is imported and after its timed work, and keeps the higher: a reading
taken while anything else runs (a framework's thread pool still spinning, another
process) is too low, and a peak that is too low shows as more than 100% of it.
"""

from __future__ import annotations

import time

import numpy as np

TRAIN_FLOPS_FACTOR = 3  # forward + backward ~ 3x forward (backward: grads wrt inputs and weights)


def blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        return cfg["Build Dependencies"]["blas"]["name"]
    except Exception:  # older numpy: no dict mode
        return "unknown"


def matmul_peak_gflops(n: int = 1024, repeats: int = 10) -> dict:
    """Best of `repeats` timed n x n float32 matmuls (2 n^3 FLOPs each), after a warm-up."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return {"gflops_s": 2 * n**3 / best / 1e9, "n": n, "blas": blas_name(),
            "method": f"best of {repeats} numpy float32 {n}x{n} matmuls"}


def best_peak(*readings: dict) -> dict:
    """The highest of several peak readings, all of them recorded (see the module)."""
    best = max(readings, key=lambda r: r["gflops_s"])
    return {**best, "readings_gflops_s": [r["gflops_s"] for r in readings],
            "method": f"{best['method']}; the higher of {len(readings)} readings "
                      "(cell start, after the timed work)"}


def efficiency(forward_flops: float, train_samples_per_s: float | None,
               infer_samples_per_s: float | None, peak: dict) -> dict:
    """Achieved GFLOP/s in training and inference and their share of the peak."""
    out: dict = {"forward_per_sample": forward_flops,
                 "train_per_sample": TRAIN_FLOPS_FACTOR * forward_flops,
                 "train_factor": f"{TRAIN_FLOPS_FACTOR}x forward",
                 "peak_gflops_s": peak["gflops_s"], "peak_method": peak["method"],
                 "peak_blas": peak["blas"]}
    if train_samples_per_s:
        out["train_gflops_s"] = TRAIN_FLOPS_FACTOR * forward_flops * train_samples_per_s / 1e9
        out["train_pct_peak"] = 100 * out["train_gflops_s"] / peak["gflops_s"]
    if infer_samples_per_s:
        out["infer_gflops_s"] = forward_flops * infer_samples_per_s / 1e9
        out["infer_pct_peak"] = 100 * out["infer_gflops_s"] / peak["gflops_s"]
    return out
