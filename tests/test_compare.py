"""`twinbench compare`: a 20% slowdown injected into a copy of a run is flagged (exit 1);
an identical copy is not (exit 0); environment differences are warned about."""

from __future__ import annotations

import shutil

import pytest
from report_fixtures import results, slowed, write_run
from typer.testing import CliRunner

from twinbench.cli import app
from twinbench.report.build import ReportError
from twinbench.report.compare import compare_runs, ratio_ci

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
