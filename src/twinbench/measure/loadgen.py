"""MLPerf LoadGen scenarios around any batch-1/batch-N inference function.

LoadGen (the `mlcommons-loadgen` package) owns the query schedule and the statistics:
SingleStream (one query at a time, its 90th-percentile latency), Server (Poisson arrivals
at a target QPS; we bisect for the highest QPS whose p99 stays within a bound) and
Offline (every sample at once; samples/s). Its own summary log gives every figure and its
VALID/INVALID verdict. Framework-free: the inference function and its sync come in.
"""

from __future__ import annotations

import queue
import re
import threading
from pathlib import Path
from typing import Callable

import numpy as np

InferFn = Callable[[np.ndarray], np.ndarray]  # synchronised: returns host logits
OFFLINE_BATCH = 256


def _summary(path: Path) -> dict[str, str]:
    """`key : value` lines of mlperf_log_summary.txt."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([^:=]+?)\s*:\s*(.+?)\s*$", line)
        if m:
            out.setdefault(m.group(1), m.group(2))
    return out


class _Worker:
    """One inference thread fed by a FIFO: queries that arrive while it is busy wait, as
    they would on a single-model server, and LoadGen sees that queueing delay."""

    def __init__(self, lg, infer: InferFn, x: np.ndarray) -> None:
        self.lg, self.infer, self.x = lg, infer, x
        self.q: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def issue(self, samples) -> None:
        self.q.put(samples)

    def _loop(self) -> None:
        while (samples := self.q.get()) is not None:
            for i in range(0, len(samples), OFFLINE_BATCH):
                chunk = samples[i:i + OFFLINE_BATCH]
                idx = [s.index for s in chunk]
                if 1 < len(idx) < OFFLINE_BATCH:  # keep one shape: no recompile mid-run
                    idx += idx[:1] * (OFFLINE_BATCH - len(idx))
                self.infer(self.x[idx])
                self.lg.QuerySamplesComplete(
                    [self.lg.QuerySampleResponse(s.id, 0, 0) for s in chunk])

    def stop(self) -> None:
        self.q.put(None)
        self.thread.join()


def run_scenario(infer: InferFn, x: np.ndarray, scenario: str, out_dir: Path,
                 duration_s: float, **settings: float) -> dict:
    """One LoadGen performance run; returns its summary figures and verdict."""
    import mlperf_loadgen as lg

    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, scenario)
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = int(duration_s * 1000)
    for k, v in settings.items():
        setattr(ts, k, v)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = lg.LogSettings()
    log.log_output.outdir = str(out_dir)
    log.log_output.copy_summary_to_stdout = False
    worker = _Worker(lg, infer, x)
    sut = lg.ConstructSUT(worker.issue, lambda: None)
    n = len(x)
    qsl = lg.ConstructQSL(n, min(n, 1024), lambda idx: None, lambda idx: None)
    try:
        lg.StartTestWithLogSettings(sut, qsl, ts, log)
    finally:
        worker.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    s = _summary(out_dir / "mlperf_log_summary.txt")
    return {"valid": s.get("Result is") == "VALID", "verdict": s.get("Result is"), "raw": s}


def _ns(raw: dict, key: str) -> float | None:
    v = raw.get(key)
    return float(v) / 1e6 if v is not None else None


def single_stream(infer: InferFn, x: np.ndarray, out: Path, duration_s: float,
                  pilot_p50_ms: float, min_queries: int = 64) -> dict:
    """LoadGen pre-generates duration / expected-latency queries; a hint above the true
    mean runs it out of queries before the minimum duration (INVALID, measured), so the
    hint is half the pilot's median."""
    hint_ms = pilot_p50_ms / 2
    r = run_scenario(infer, x, "SingleStream", out / "single_stream", duration_s,
                     single_stream_expected_latency_ns=max(1, int(hint_ms * 1e6)),
                     min_query_count=min_queries)
    return {"p90_ms": _ns(r["raw"], "90.0th percentile latency (ns)"),
            "p50_ms": _ns(r["raw"], "50.00 percentile latency (ns)"),
            "p99_ms": _ns(r["raw"], "99.00 percentile latency (ns)"),
            "expected_latency_hint_ms": hint_ms, "valid": r["valid"],
            "verdict": r["verdict"], "failed_checks": _failed(r["raw"])}


def _failed(raw: dict) -> list[str]:
    """Which of LoadGen's validity checks said NO."""
    return [k for k, v in raw.items() if k.endswith("satisfied") and v.upper() == "NO"]


# Offline issues one query of expected QPS x min duration samples. A pilot slower than the
# run (measured: pilot 5,298/s, run 6,908/s) finishes it early: INVALID, "Min duration
# satisfied: NO". Twice the pilot at worst doubles the run's length.
OFFLINE_QPS_HEADROOM = 2.0


def offline(infer: InferFn, x: np.ndarray, out: Path, duration_s: float,
            pilot_samples_per_s: float) -> dict:
    expected = OFFLINE_QPS_HEADROOM * float(pilot_samples_per_s)
    r = run_scenario(infer, x, "Offline", out / "offline", duration_s,
                     offline_expected_qps=expected)
    sps = r["raw"].get("Samples per second")
    return {"samples_per_s": float(sps) if sps else None, "valid": r["valid"],
            "verdict": r["verdict"], "failed_checks": _failed(r["raw"]), "batch": OFFLINE_BATCH,
            "expected_qps_hint": expected}


def server(infer: InferFn, x: np.ndarray, out: Path, duration_s: float, bound_ms: float,
           pilot_p50_ms: float, steps: int = 5) -> dict:
    """Bisect for the highest Poisson QPS whose p99 latency is within `bound_ms`. The
    upper start is what one worker could serve back to back (1 / pilot p50)."""
    lo, hi = 0.0, 1000.0 / max(pilot_p50_ms, 1e-3)
    best: dict | None = None
    tried = []
    for step in range(steps):
        qps = (lo + hi) / 2 if step else hi * 0.5
        r = run_scenario(infer, x, "Server", out / f"server_{step}", duration_s,
                         server_target_qps=qps, server_target_latency_ns=int(bound_ms * 1e6),
                         server_target_latency_percentile=0.99, min_query_count=32)
        p99 = _ns(r["raw"], "99.00 percentile latency (ns)")
        ok = p99 is not None and p99 <= bound_ms
        tried.append({"qps": qps, "p99_ms": p99, "within_bound": ok, "verdict": r["verdict"]})
        if ok:
            lo, best = qps, {"qps": qps, "p99_ms": p99, "valid": r["valid"],
                             "verdict": r["verdict"], "failed_checks": _failed(r["raw"])}
        else:
            hi = qps
    return {**(best or {"qps": 0.0, "p99_ms": None, "valid": False, "verdict": None}),
            "bound_ms": bound_ms, "bisection": tried}
