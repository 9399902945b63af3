"""`twinbench compare`: a 20% slowdown injected into a copy of a run is flagged (exit 1);
an identical copy is not (exit 0); environment differences are warned about; a cell missing
or not measured in B (failed, unverified, diverged, contended, NaN) is a row and exit 1."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from report_fixtures import cell, results, slowed, write_run
from typer.testing import CliRunner

from twinbench.cli import app
from twinbench.report.build import ReportError
from twinbench.analysis.compare import compare_runs, ratio_ci

CENTRES = {"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)}


@pytest.fixture
def base(tmp_path):
    return write_run(tmp_path / "a", results(CENTRES, repeats=3))


def test_identical_copy_is_not_flagged(base, tmp_path):
    copy = shutil.copytree(base, tmp_path / "b")
    out = compare_runs(base, copy)
    assert out["rows"] and not out["regressions"] and not out["env_diffs"]
    assert all(r["ratio"] == pytest.approx(1.0) for r in out["rows"])
    res = CliRunner().invoke(app, ["compare", str(base), str(copy)])
    assert res.exit_code == 0, res.output
    assert "no regression beyond 5%" in res.output


def test_twenty_percent_slowdown_is_flagged(base, tmp_path):
    slow = write_run(tmp_path / "b", slowed(results(CENTRES, repeats=3), 1.25))
    out = compare_runs(base, slow)
    flagged = {(r["stack"], r["metric"]) for r in out["regressions"]}
    for stack in CENTRES:
        assert (stack, "train_samples_per_s") in flagged
        assert (stack, "latency_b1_p50_ms") in flagged
    row = next(r for r in out["rows"] if r["stack"] == "torch"
               and r["metric"] == "train_samples_per_s")
    assert row["ratio"] == pytest.approx(0.8, rel=1e-6) and row["p"] < 1e-4
    assert row["basis"] == "per-process values (3 vs 3 processes)"
    assert row["ci95"][0] <= 0.8 <= row["ci95"][1]
    assert not any(r["metric"] == "accuracy" for r in out["regressions"])  # unchanged
    res = CliRunner().invoke(app, ["compare", str(base), str(slow)])
    assert res.exit_code == 1 and "regression" in res.output


def test_threshold_above_the_change_flags_nothing(base, tmp_path):
    slow = write_run(tmp_path / "b", slowed(results(CENTRES, repeats=3), 1.25))
    assert not compare_runs(base, slow, threshold=0.3)["regressions"]


def test_untested_single_values_beyond_threshold_are_flagged(tmp_path):
    a = write_run(tmp_path / "a", results(CENTRES, raw=False))
    b = write_run(tmp_path / "b", slowed(results(CENTRES, raw=False), 1.25))
    out = compare_runs(a, b)
    tp = [r for r in out["regressions"] if r["metric"] == "train_samples_per_s"]
    assert len(tp) == 2 and all(r["p"] is None and "untested" in r["verdict"] for r in tp)


def test_environment_differences_are_warned(base, tmp_path):
    other = results(CENTRES)
    other.environment.update(cpu_model="Other CPU", git_commit="def456")
    other.environment["env"]["OMP_NUM_THREADS"] = "1"
    other.environment["packages"]["numpy"] = "9.9"
    b = write_run(tmp_path / "b", other)
    diffs = compare_runs(base, b)["env_diffs"]
    assert "cpu_model: Test CPU vs Other CPU" in diffs
    assert "env.OMP_NUM_THREADS: 2 vs 1" in diffs and "packages.numpy: 2.4.6 vs 9.9" in diffs
    assert any(d.startswith("git_commit") for d in diffs)
    res = CliRunner().invoke(app, ["compare", str(base), str(b)])
    assert "environments differ" in res.output


def test_bad_input_is_one_line_exit_2(base, tmp_path):
    with pytest.raises(ReportError, match="no results.json"):
        compare_runs(base, tmp_path / "missing")
    res = CliRunner().invoke(app, ["compare", str(base), str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no results.json" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["compare", str(base), str(base), "--threshold", "5"])
    assert res.exit_code == 2 and "between 0 and 1" in res.output


def test_ratio_ci_by_construction():
    assert ratio_ci([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 50) == [2.0, 2.0]
    assert ratio_ci([1.0], [2.0, 2.0], 50) is None


def _recentred(res, centres: dict[int, float]):
    """torch's repeat r re-drawn around centres[r] (1% step noise)."""
    import numpy as np

    for c in res.cells:
        if c.stack == "torch" and c.repeat in centres:
            tp = np.random.default_rng(c.repeat).normal(centres[c.repeat], 0.01 * centres[c.repeat],
                                                        200)
            c.metrics["samples"]["train_samples_per_s"] = tp.tolist()
            c.metrics["train_samples_per_s"]["median"] = float(np.median(tp))
    return res


def test_overlapping_repeats_are_not_a_regression(tmp_path):
    # Run B's torch repeats centre on 900, 900, 1100, run A's on 1000, 1000, 1300: the
    # medians differ by 10%, but B's third process beats two of A's: the per-process test
    # finds process-to-process variation, beyond the threshold but not a regression.
    a = write_run(tmp_path / "a", _recentred(results(CENTRES, repeats=3),
                                             {0: 1000.0, 1: 1000.0, 2: 1300.0}))
    b = write_run(tmp_path / "b", _recentred(results(CENTRES, repeats=3),
                                             {0: 900.0, 1: 900.0, 2: 1100.0}))
    out = compare_runs(a, b)
    row = next(r for r in out["rows"] if r["stack"] == "torch"
               and r["metric"] == "train_samples_per_s")
    assert row["p"] >= 0.01 and row["ratio"] < 0.95
    assert not row["significant"] and row["basis"].startswith("per-process values (3 vs 3")
    assert row["verdict"] == "beyond threshold, not significant"
    assert ("torch", "train_samples_per_s") not in {
        (r["stack"], r["metric"]) for r in out["regressions"]}


# --- the gate: B's cells that are missing or not measured are regressions -------------

def _gated(tmp_path, change) -> tuple[dict, object]:
    """compare_runs and the CLI on a baseline and a copy of it changed by `change`."""
    a = write_run(tmp_path / "a", results(CENTRES, raw=False))
    b_res = results(CENTRES, raw=False)
    change(b_res)
    b = write_run(tmp_path / "b", b_res)
    return compare_runs(a, b), CliRunner().invoke(app, ["compare", str(a), str(b)])


def _torch(res):
    return next(c for c in res.cells if c.stack == "torch")


def _set(**fields):
    return lambda res: [setattr(_torch(res), k, v) for k, v in fields.items()]


def test_a_cell_failed_in_b_is_a_row_and_exit_1(tmp_path):
    # The worst defect: a cell ok in A and failed in B gave an empty table and exit 0.
    out, res = _gated(tmp_path, _set(status="failed", metrics={}, reason="[/red] boom"))
    (row,) = out["not_ok"]
    assert (row["stack"], row["a"], row["b"]) == ("torch", "ok", "failed")
    assert row["verdict"] == "failed in B: [/red] boom" and row in out["regressions"]
    assert res.exit_code == 1, res.output
    assert "failed in B: [/red] boom" in res.output  # the reason shown as text, not markup
    assert "1 cell(s) missing or not ok in B" in res.output


@pytest.mark.parametrize("change, kind", [
    (_set(status="unverified", reason="grad_max_rel 3e-2"), "unverified"),
    (_set(status="diverged", reason="loss nan"), "diverged"),
    (lambda r: _torch(r).metrics.update(contention={"contended": True}), "contended"),
    (lambda r: _torch(r).metrics["train_samples_per_s"].update(median=float("nan")),
     "non-finite"),  # written to results.json as null
    (lambda r: _torch(r).metrics.update(peak_rss_mb=float("inf")), "non-finite"),
    (lambda r: r.cells.remove(_torch(r)), "missing"),
])
def test_every_kind_of_unmeasured_cell_in_b_fails_the_gate(tmp_path, change, kind):
    out, res = _gated(tmp_path, change)
    assert [(r["stack"], r["b"]) for r in out["not_ok"]] == [("torch", kind)]
    assert res.exit_code == 1 and f"{kind} in B" in res.output


def test_what_b_measured_well_passes_the_gate(tmp_path):
    # No gate row, exit 0: the contention flag absent or False, a stack skipped in both
    # runs, a cell new in B, and a time to accuracy of null in B (target not reached: a
    # result, unlike a NaN throughput, which results.json also writes as null).
    skipped = cell("keras-torch", 0, 0, np.random.default_rng(0), status="skipped",
                   reason="not installed")
    a_res = results(CENTRES, raw=False, extra=[skipped])
    _torch(a_res).metrics["time_to_accuracy"] = {"target": 0.9, "s": 3.0}
    b_res = results(CENTRES, raw=False)
    _torch(b_res).metrics.update(contention={"contended": False},
                                 time_to_accuracy={"target": 0.9, "s": None})
    b_res.cells += [skipped, cell("torch", 1.0, 1.0, np.random.default_rng(1), task="text",
                                  raw=False)]
    out = compare_runs(write_run(tmp_path / "a", a_res), write_run(tmp_path / "b", b_res))
    assert out["not_ok"] == [] and out["only_b"] == ["text/text/cnn/torch"]


def test_a_stack_skipped_in_b_that_a_measured_fails_the_gate(tmp_path):
    out, _ = _gated(tmp_path, _set(status="skipped", metrics={}, reason="not installed"))
    assert [r["b"] for r in out["not_ok"]] == ["skipped"]


def test_repeats_of_b_are_gated_one_by_one(tmp_path):
    a = write_run(tmp_path / "a", results(CENTRES, raw=False, repeats=3))
    b_res = results(CENTRES, raw=False, repeats=3)
    torch = [c for c in b_res.cells if c.stack == "torch"]
    torch[1].status, torch[1].reason = "failed", "SIGKILL"
    b_res.cells.remove(torch[2])
    out = compare_runs(a, write_run(tmp_path / "b", b_res))
    got = {r["b"]: r["verdict"] for r in out["not_ok"]}
    assert got == {"missing": "missing in B: repeat 2 not in B",
                   "failed": "failed in B: r1: SIGKILL"}
    assert {r["a"] for r in out["not_ok"]} == {"ok x3"}


def test_runs_on_two_machines_compare_cell_by_cell(tmp_path):
    # Cells record their host; a CI baseline from another runner must still match.
    def on(host):
        res = results(CENTRES, raw=False)
        for c in res.cells:
            c.node = {"hostname": host, "hardware_id": "abc"}
        return res

    a, b = write_run(tmp_path / "a", on("ci-1")), write_run(tmp_path / "b", on("ci-2"))
    out = compare_runs(a, b)
    assert out["not_ok"] == [] and out["rows"] and not out["only_b"]
