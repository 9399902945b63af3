"""The scaling map (issue 20): sweep points and stack variants are ordinary cells, stored
and resumed; exponents against hand-computed slopes; crossovers only where both sides
differ per process."""

from __future__ import annotations

import pytest

import twinbench
from twinbench.analysis.scaling import Cost, Series, leader_summary, scaling_map
from twinbench.errors import TwinbenchError
from twinbench.measure.scaling import crossovers, fit_exponent, point_tests, unresolved_flips
from twinbench.models import resolve_models, run_knobs, spec_module
from twinbench.stacks import resolve_stacks, stack_info, with_options
from twinbench.sweep import parse_stack_options, parse_vary, sweep_plan, tune_stacks

from conftest import QUICK


# --- exponents ---

def test_exponent_of_an_exact_power_law_is_its_power():
    fit = fit_exponent([1, 2, 4, 8], [3 * x**1.5 for x in [1, 2, 4, 8]])
    assert fit.exponent == pytest.approx(1.5)
    assert fit.ci95 == pytest.approx((1.5, 1.5))  # no residual: a zero-width interval
    assert fit.r2 == pytest.approx(1.0)


def test_exponent_and_its_ci_match_the_hand_computed_ols():
    # log10 x = 0, 1, 2; log10 y = 0, 1, 3. Slope = Sxy / Sxx = 3 / 2 = 1.5; intercept
    # 4/3 - 1.5 = -1/6; residuals 1/6, -1/3, 1/6, SSR = 1/6; SE = sqrt(SSR / 1 / Sxx)
    # = sqrt(1/12); t(0.975, 1 df) = 12.7062 -> 1.5 +- 3.6680.
    fit = fit_exponent([1, 10, 100], [1, 10, 1000])
    assert fit.exponent == pytest.approx(1.5)
    assert fit.ci95 == pytest.approx((1.5 - 3.66800, 1.5 + 3.66800), abs=1e-4)
    assert (fit.n, fit.sizes) == (3, 3)


def test_no_exponent_from_one_size_or_a_non_positive_cost():
    assert fit_exponent([5, 5, 5], [1, 2, 3]) is None
    assert fit_exponent([1, 2], [1, 0]) is None
    assert fit_exponent([1, 2], [1, 2]).ci95 is None  # two values: no degree of freedom


# --- crossovers, per process ---

SIZES = [1e4, 1e5, 1e6]
TIGHT = (0.99, 1.0, 1.01)  # three processes, 1% apart


def _pts(medians, noise=TIGHT):
    return [[m * k for k in noise] for m in medians]


def test_a_crossover_between_two_significant_points():
    tests = point_tests(SIZES, _pts([1, 2, 4]), _pts([2, 2, 2]))
    assert [t.significant for t in tests] == [True, False, True]
    found = crossovers(tests)
    assert len(found) == 1
    c = found[0]
    assert (c.below, c.above, c.cheaper_below, c.cheaper_above) == (1e4, 1e6, "a", "b")
    assert c.about == pytest.approx(1e5)


def test_a_flip_that_is_not_significant_is_no_crossover():
    # a is cheaper at 1e4 (significantly); b's medians are lower at 1e5 and 1e6, but its
    # processes there scatter over a factor of 3: no significant point on the far side.
    noisy = (0.4, 1.0, 1.6)
    tests = point_tests(SIZES, [[1, 1.01, 0.99], _pts([3])[0], _pts([4])[0]],
                        [[2, 2.02, 1.98], _pts([2.5], noisy)[0], _pts([3], noisy)[0]])
    assert [t.cheaper for t in tests] == ["a", "b", "b"]
    assert [t.significant for t in tests] == [True, False, False]
    assert crossovers(tests) == []
    assert unresolved_flips(tests) == 1


def test_too_few_processes_are_never_significant():
    tests = point_tests([1, 2], [[1, 1], [4, 4]], [[2, 2], [2, 2]])
    assert all(t.p is None and not t.significant for t in tests)
    assert crossovers(tests) == []


def test_the_plain_summary_names_the_flip_or_says_there_is_none():
    cost = Cost("train", "training time per sample", "µs", None)
    a, b = Series("torch"), Series("keras-jax")
    for x, pa, pb in zip(SIZES, _pts([1, 2, 4]), _pts([2, 2, 2])):
        a.points[x], b.points[x] = pa, pb
    text = leader_summary(cost, [a, b], "parameters")
    assert "below about 100k parameters torch is cheapest; above, keras-jax" in text
    a.points = dict(zip(SIZES, _pts([1, 1, 1])))
    assert "no crossover in the range measured (10k to 1M parameters)" in \
        leader_summary(cost, [a, b], "parameters")


# --- names: sweep points and stack variants ---

def test_a_width_point_scales_the_spec_and_its_parameter_count():
    # width 0.25: conv1 3*3*1*8 + 8 = 80; conv2 3*3*8*16 + 16 = 1,168; dense 5*5*16*10
    # + 10 = 4,010 -> 5,258 (width 1: 34,826)
    spec = spec_module("cnn").vary(spec_module("cnn").CNNSpec(), {"width": "0.25"})
    assert spec.filters == (8, 16) and spec.param_count() == 5_258
    assert resolve_models(["cnn[width=2,threads=1]"]) == ["cnn[threads=1,width=2]"]
    assert run_knobs("cnn[threads=1,width=2]") == {"threads": 1}
    with pytest.raises(ValueError, match="valid: width"):
        resolve_models(["cnn[depth=3]"])


def test_sweep_plan_crosses_the_axes_and_keeps_batch_inside_the_cell():
    axes = parse_vary(["width=0.25,1", "batch=256,1,32", "threads=1"])
    p = sweep_plan(["cnn"], axes)
    assert p.models == ("cnn[threads=1,width=0.25]", "cnn[threads=1,width=1]")
    assert p.infer_batches == (1, 32, 256)
    with pytest.raises(TwinbenchError, match="valid: width, train_batch, threads, batch"):
        sweep_plan(["cnn"], parse_vary(["length=8,16"]))
    with pytest.raises(TwinbenchError, match="AXIS=V1,V2"):
        parse_vary(["width"])


def test_stack_variants_are_checked_named_and_set_by_option():
    assert resolve_stacks(["torch[channels_last=1]", "torch[channels_last=1]"]) == [
        "torch[channels_last=1]", "torch[channels_last=1]#2"]
    info = stack_info("keras-tensorflow[jit_compile=1]")
    assert info.jit_compile is True and info.option("jit_compile") == "1"
    assert info.base == "keras-tensorflow"
    with pytest.raises(ValueError, match="valid: channels_last"):
        stack_info("torch[mode=default]")
    with pytest.raises(ValueError, match="takes 1, 8, 32"):
        stack_info("keras-jax[steps_per_execution=4]")
    opts = parse_stack_options(["torch:channels_last=1"])
    assert with_options(["torch", "keras-jax"], opts) == ["torch[channels_last=1]", "keras-jax"]
    assert tune_stacks(["torch-compile"]) == [
        "torch-compile", "torch-compile[channels_last=1]", "torch-compile[mode=reduce-overhead]",
        "torch-compile[mode=max-autotune-no-cudagraphs]"]
    # a text model has no image layout: channels_last is not tuned for it
    assert tune_stacks(["torch"], {"text"}) == ["torch"]
    assert tune_stacks(["torch"], {"text", "image"}) == ["torch", "torch[channels_last=1]"]
    with pytest.raises(TwinbenchError, match="no option 'mode'"):
        parse_stack_options(["torch:mode=default"])


def test_cli_names_keep_commas_inside_brackets():
    from twinbench.cli.common import split

    assert split("torch[channels_last=1,mode=x],keras-jax") == (
        "torch[channels_last=1,mode=x]", "keras-jax")


# --- a small sweep, stored and resumed ---

@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory: pytest.TempPathFactory):
    """Two width points on torch; the wider one's process exits at start, then the run is
    resumed without the fault."""
    from twinbench.api import resume_plan
    from twinbench.store.db import Store

    out, db = tmp_path_factory.mktemp("sweep"), tmp_path_factory.mktemp("db") / "h.db"
    store = Store(db)
    mp = pytest.MonkeyPatch()
    mp.setenv("TWINBENCH_FAULT", "cnn[width=0.5]/torch:exit@start")
    try:
        first = twinbench.run(stacks=("torch",), models=("cnn[width=0.25]", "cnn[width=0.5]"),
                              infer_batches=(1, 4), out=out, threads=1, store=store, **QUICK)
    finally:
        mp.undo()
    resumed = twinbench.run(planned=resume_plan(store, first.run_id), store=store)
    return first, resumed, store


def test_sweep_points_are_stored_and_a_resume_reruns_only_the_failed_one(small_sweep):
    first, resumed, store = small_sweep
    assert [(c.model, c.status) for c in first.cells] == [
        ("cnn[width=0.25]", "ok"), ("cnn[width=0.5]", "failed")]
    assert [(c.model, c.status) for c in resumed.cells] == [
        ("cnn[width=0.25]", "ok"), ("cnn[width=0.5]", "ok")]
    assert resumed.cells[0].wall_s == first.cells[0].wall_s  # kept, not rerun
    stored = store.cells(first.run_id, "full")
    assert sorted((c["model"], c["status"]) for c in stored) == [
        ("cnn[width=0.25]", "ok"), ("cnn[width=0.5]", "ok")]
    wide = resumed.cells[1]
    # width 0.5: conv1 9*16 + 16 = 160; conv2 9*16*32 + 32 = 4,640; dense 800*10 + 10
    assert wide.params == 160 + 4_640 + 8_010
    assert wide.settings["sweep_point"] == {"width": "0.5", "infer_batches": [1, 4]}
    assert set(wide.metrics["infer_samples_per_s_by_batch"]) == {"1", "4"}


def test_the_stored_sweep_is_a_map_with_one_point_per_width(small_sweep):
    sweeps = scaling_map(small_sweep[1].cells)
    by_axis = {sw.axis: sw for sw in sweeps}
    assert set(by_axis) == {"parameters", "infer_batch"}
    train = next(m for m in by_axis["parameters"].maps if m.cost.name == "train")
    (series,) = train.series
    assert sorted(series.points) == [5_258, 12_810]
    assert train.fits["torch"] is not None  # two sizes, one process each: a slope, no CI


# --- the report's scaling and tune sections, from constructed cells ---

def _sweep_cells() -> list:
    """3 sizes x 2 stacks x 3 processes: torch's training time per sample grows as
    params^1, keras-jax's as params^0.6; they tie at 1e5 parameters."""
    import numpy as np

    from report_fixtures import cell

    rng, cells = np.random.default_rng(0), []
    for p, width in ((1e4, "0.25"), (1e5, "1"), (1e6, "8")):
        for stack, rate in (("torch", 1e8 / p), ("keras-jax", 1e6 / p**0.6)):
            for r in range(3):
                c = cell(stack, rate, 1.0, rng, spread=0.01, repeat=r, model=f"cnn[width={width}]")
                cells.append(c.model_copy(update={"params": int(p)}))
    return cells


# The constructed cells' b256 figure is the same in every process of a point (10 x the
# rate), which scipy's t-test flags as near-identical data; real processes never tie.
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_the_report_plots_fits_and_states_the_crossover():
    from twinbench.report.scaling import sections

    (sec,) = sections(_sweep_cells())
    assert sec["title"] == "Scaling: cnn on digits/digits: cost vs parameters"
    assert len(sec["figures"]) == 5  # one log-log plot per cost
    exps = {(r[0], r[1]): r[5] for r in sec["tables"][0]["rows"]}
    assert exps[("training time per sample", "torch")].startswith("1.00 [")
    assert exps[("training time per sample", "keras-jax")].startswith("0.60 [")
    (line,) = [r[0] for r in sec["tables"][2]["rows"] if "training" in r[0]]
    assert "torch is cheaper at 10k parameters, keras-jax at 1M" in line
    said = dict((r[0], r[1]) for r in sec["tables"][1]["rows"])
    assert said["training time per sample"].startswith(
        "below about 100k parameters torch is cheapest; above, keras-jax")


def test_tune_names_the_best_verified_variant_and_its_option():
    import numpy as np

    from report_fixtures import cell

    from twinbench.analysis.tune import tune_rows

    rng = np.random.default_rng(1)
    cells = [cell(s, rate, 1.0, rng, spread=0.01, repeat=r)
             for s, rate in (("torch", 1000.0), ("torch[channels_last=1]", 1300.0))
             for r in range(3)]
    cells.append(cell("torch-compile[mode=reduce-overhead]", 0, 1.0, rng, status="unverified",
                      reason="parity probe: forward_max_abs 1e-2"))
    (torch_row, compile_row) = tune_rows(cells)
    assert torch_row.best == "torch[channels_last=1]" and torch_row.significant is True
    assert torch_row.speedup == pytest.approx(1.3, rel=0.01)
    assert torch_row.ci95[0] < 1.3 < torch_row.ci95[1]
    assert torch_row.option == "--stack-option torch:channels_last=1"
    assert compile_row.best is None and "unverified" in compile_row.failed[0]


def test_sequence_length_is_a_text_axis_with_its_own_data_file():
    from twinbench.runner.prepare import data_key, data_path

    p = sweep_plan(["bilstm"], parse_vary(["length=16,64"]))
    assert p.models == ("bilstm[length=16]", "bilstm[length=64]")
    with pytest.raises(TwinbenchError, match="valid: width, train_batch, threads, batch"):
        sweep_plan(["cnn"], parse_vary(["length=16"]))
    with pytest.raises(ValueError, match="text models only"):
        resolve_models(["cnn[length=16]"])
    assert data_key("sms-spam", 64) == "sms-spam-len64" and data_key("sms-spam", None) == "sms-spam"
    files = {"digits": "a", "sms-spam-len64": "b"}
    assert data_path(files, "sms-spam", "bilstm[length=64]") == "b"
    assert data_path(files, "digits", "mine.py:Net") == "a"  # a user's model: no knobs
