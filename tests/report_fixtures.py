"""Synthetic run folders for the report tests: seeded samples around chosen centres, in
the results.json shape that `twinbench run` writes (no framework is imported)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from twinbench.results import Cell, Results

HOSTILE = "<script>alert(1)</script>"
ENV = {"cpu_model": "Test CPU", "cores": 2, "affinity": [0, 1], "memory_gb": 8.0,
       "os": "Linux", "python": "3.11.7", "packages": {"numpy": "2.4.6"},
       "frameworks": {"torch": "2.13.0"}, "env": {"OMP_NUM_THREADS": "2"},
       "twinbench": "0.1.0", "git_commit": "abc123"}


def cell(stack: str, train: float, latency_ms: float, rng: np.random.Generator, *,
         spread: float = 0.05, steps: int = 200, calls: int = 200, repeat: int = 0,
         task: str = "digits", model: str = "cnn", status: str = "ok",
         reason: str | None = None, raw: bool = True) -> Cell:
    """One cell whose per-step throughput ~ N(train, spread*train) and per-call latency
    ~ latency_ms * (1 + |N(0, spread)|)."""
    tp = rng.normal(train, spread * train, steps)
    lat = latency_ms * (1 + np.abs(rng.normal(0, spread, calls)))
    p = {f"p{q}": float(np.percentile(lat, q)) for q in (50, 90, 99)}
    acc = float(np.clip(0.9 + rng.normal(0, 0.01), 0, 1))
    metrics = {
        "accuracy": acc, "import_s": 1.0 + rng.random(), "first_step_s": 2.0 + rng.random(),
        "train_samples_per_s": {"median": float(np.median(tp)), "iqr": 1.0, "n": steps},
        "latency_b1_ms": {**p, "path": "fast"}, "latency_b1_idiomatic": "fast",
        "latency_b1_by_path": {"fast": {**p, "calls": calls, "idiomatic": True}},
        "infer_samples_per_s_b256": 10 * train, "peak_rss_mb": 400.0 + 10 * rng.random(),
        "epochs": [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.1 / e,
                    "test_accuracy": acc - 0.1 / e, "elapsed_s": 0.5 * e} for e in (1, 2, 3)],
    }
    if raw:
        metrics["samples"] = {"train_samples_per_s": tp.tolist(), "latency_b1_ms": lat.tolist()}
    parity = {"pass": True, "reference": "torch",
              "checks": {"grad_max_rel": {"value": 1e-6, "tolerance": 1e-4, "pass": True}}}
    return Cell(task=task, dataset=task, model=model, stack=stack, status=status, reason=reason,
                repeat=repeat, params=1000, metrics=metrics if status == "ok" else {},
                parity=parity if status == "ok" else {}, wall_s=5.0,
                settings={"threads": 2, "compile_mode": "eager", "versions": {"x": "1"}},
                data={"input_shape": [28, 28, 1]})


def results(centres: dict[str, tuple[float, float]], *, seed: int = 0, repeats: int = 1,
            spread: float = 0.05, raw: bool = True, extra: list[Cell] | None = None) -> Results:
    """centres: stack -> (train samples/s, latency ms)."""
    rng = np.random.default_rng(seed)
    cells = [cell(s, tr, lat, rng, spread=spread, repeat=r, raw=raw)
             for r in range(repeats) for s, (tr, lat) in centres.items()]
    return Results(run_id="synthetic", environment=copy.deepcopy(ENV),
                   config={"threads": 2, "epochs": 3, "device": "cpu"},
                   cells=cells + (extra or []))


def write_run(folder: Path, res: Results, verify: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    res.write(folder)
    if verify:
        probes = [c.model_copy(update={"metrics": {}}) for c in res.cells
                  if c.repeat == 0 and c.status == "ok"]
        Results(run_id=res.run_id, environment=res.environment, config=res.config,
                cells=probes).write(folder, "verify.json")
    return folder


def slowed(res: Results, factor: float) -> Results:
    """A copy where every throughput is divided by `factor` and every latency multiplied."""
    out = res.model_copy(deep=True)
    for c in out.cells:
        m = c.metrics
        if not m:
            continue
        m["train_samples_per_s"]["median"] /= factor
        m["infer_samples_per_s_b256"] /= factor
        for q in ("p50", "p90", "p99"):
            m["latency_b1_ms"][q] *= factor
        if "samples" in m:
            m["samples"]["train_samples_per_s"] = [x / factor for x in
                                                   m["samples"]["train_samples_per_s"]]
            m["samples"]["latency_b1_ms"] = [x * factor for x in m["samples"]["latency_b1_ms"]]
    return out


def hostile_results() -> Results:
    """A run whose strings try to inject HTML: a stack, a model and an error text."""
    rng = np.random.default_rng(1)
    bad = cell(HOSTILE, 900.0, 1.0, rng, model=HOSTILE)
    failed = cell("keras-torch", 0, 0, rng, status="failed", reason=f"boom {HOSTILE}")
    res = results({"torch": (1000.0, 1.0), "keras-jax": (700.0, 2.0)}, extra=[bad, failed])
    res.environment["env"]["EVIL"] = HOSTILE
    return res


def dump(res: Results) -> str:
    return json.dumps(res.model_dump(mode="json"))
