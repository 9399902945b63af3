"""The report: statistics behind the verdicts, the verdict rule on synthetic result sets,
the files written, HTML/Markdown escaping of a hostile run, and the `report` command."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from report_fixtures import HOSTILE, hostile_results, results, write_run
from typer.testing import CliRunner

from twinbench.cli import app
from twinbench.analysis import aggregate as agg
from twinbench.report.browser import find_chromium
from twinbench.report.build import ReportError, build_report, context, load_run
from twinbench.report.codesize import code_lines, model_lines
from twinbench.analysis.verdicts import aa_verdict, metric_verdict, not_compared, rank_sentence

TRAIN = agg.METRICS["train_samples_per_s"]
P99 = agg.METRICS["latency_b1_p99_ms"]


def groups_of(res):
    return {g.stack: g for g in agg.group_cells(res.cells)}


def _recentre(res, centres: dict) -> None:
    """Move chosen (stack, repeat) cells' per-step samples to a new centre (1% noise)."""
    for c in res.cells:
        centre = centres.get((c.stack, c.repeat))
        if centre:
            tp = np.random.default_rng(c.repeat).normal(centre, 0.01 * centre, 200)
            c.metrics["samples"]["train_samples_per_s"] = tp.tolist()
            c.metrics["train_samples_per_s"]["median"] = float(np.median(tp))


def test_one_process_per_stack_names_no_winner_and_says_what_decides():
    # 25% apart with 5% step noise: the pooled steps would give p < 1e-50, but each
    # stack is one process. The ranking is indicative, with the command that decides it.
    res = results({"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)})
    item = rank_sentence(list(groups_of(res).values()), TRAIN, ("", "digits", "digits", "cnn"))
    assert item.winner is None and item.indicative and item.test["p"] is None
    assert item.sentence.startswith("Indicative ranking on training throughput")
    assert "1 process per stack" in item.sentence
    assert ("`twinbench run --tasks digits --dataset digits --models cnn "
            "--stacks torch,keras-jax --repeats 3` decides") in item.sentence
    med = np.median(groups_of(res)["torch"].raw(TRAIN))  # the cell's own headline
    assert f"{med:,.0f}" in item.sentence


def test_three_processes_far_apart_name_the_winner_with_the_per_process_test():
    # about 3x apart (keras-tensorflow-xla vs keras-tensorflow on the cnn, measured)
    res = results({"torch": (1000.0, 1.0), "keras-jax": (330.0, 3.0)}, repeats=3)
    item = rank_sentence(list(groups_of(res).values()), TRAIN)
    assert item.winner == "torch" and not item.indicative
    assert item.test["p"] < 0.01 and item.test["basis"] == "per-process values (3 vs 3 processes)"
    assert "Welch's t-test on log per-process values" in item.sentence
    assert "torch is best on training throughput" in item.sentence and "95% CI" in item.sentence
    lat = rank_sentence(list(groups_of(res).values()), P99)
    assert lat.winner == "torch" and "lower" in lat.sentence


def test_overlapping_processes_give_no_clear_winner():
    # a's processes centre on 1000, 1000, 1300 and b's on 960, 960, 1100: medians 4% apart,
    # pooled steps at a tiny p, but the processes differ as much as the stacks.
    res = results({"a": (1000.0, 1.0), "b": (960.0, 1.0)}, repeats=3, spread=0.01)
    _recentre(res, {("a", 2): 1300.0, ("b", 2): 1100.0})
    item = rank_sentence(list(groups_of(res).values()), TRAIN)
    assert item.winner is None and item.sentence.startswith("No clear winner")
    assert item.test["p"] >= 0.01 and not item.indicative


def test_significant_but_small_difference_is_no_winner():
    # 1.5% apart with almost no process-to-process noise: p is tiny, the effect under 3%.
    res = results({"torch": (1000.0, 1.0), "keras-jax": (1015.0, 1.0)}, repeats=3,
                  spread=0.01)
    item = rank_sentence(list(groups_of(res).values()), TRAIN)
    assert item.test["p"] < 1e-3 and item.winner is None
    assert "No clear winner" in item.sentence


def test_summary_says_what_its_ci_spans():
    one = groups_of(results({"torch": (1000.0, 1.0)}))["torch"]
    s = agg.summary(one, TRAIN)
    assert s["spans"] == "steps within one process" and s["repeats"] == 1
    assert s["ci95"][0] <= s["value"] <= s["ci95"][1]
    p99 = agg.summary(one, P99)
    assert p99["value"] == pytest.approx(np.percentile(one.raw(P99), 99))
    three = groups_of(results({"torch": (1000.0, 1.0)}, repeats=3))["torch"]
    assert agg.summary(three, TRAIN)["spans"] == "repeats across processes"
    no_raw = groups_of(results({"torch": (1000.0, 1.0)}, raw=False))["torch"]
    assert agg.summary(no_raw, TRAIN)["ci95"] is None


def test_the_test_needs_three_processes_a_side():
    g2 = groups_of(results({"a": (1000.0, 1.0), "b": (500.0, 1.0)}, repeats=2))
    two = agg.compare(g2["a"], g2["b"], TRAIN)
    assert two["indicative"] and two["p"] is None and two["winner"] is None
    assert two["basis"].startswith("indicative: 2 vs 2 uncontended processes")
    g3 = groups_of(results({"a": (1000.0, 1.0), "b": (900.0, 1.0)}, repeats=3))
    cmp = agg.compare(g3["a"], g3["b"], TRAIN)
    assert cmp["winner"] == "a" and cmp["test"] == "Welch's t-test on log per-process values"


def test_aa_control_copy_is_not_ranked_and_names_no_winner():
    res = results({"torch": (1000.0, 1.0), "torch#2": (1000.0, 1.0), "keras-jax": (330.0, 3.0)},
                  repeats=3)
    gs = list(groups_of(res).values())
    assert [g.stack for g, _ in agg.ranked(gs, TRAIN)] == ["torch", "keras-jax"]
    item = rank_sentence(gs, TRAIN)
    assert item.winner == "torch" and "torch#2" not in item.sentence
    aa = aa_verdict(gs)
    assert aa.items and all(i.winner is None for i in aa.items)
    assert not any("FALSE WINNER" in i.sentence for i in aa.items)
    assert "torch#2 / torch on training throughput" in aa.items[0].sentence
    assert aa_verdict([g for g in gs if g.stack != "torch#2"]).not_measured


def test_contended_cells_are_shown_but_left_out_of_verdicts():
    res = results({"torch": (1000.0, 1.0), "keras-jax": (330.0, 3.0)}, repeats=3)
    for c in res.cells:
        c.metrics["contention"] = {"contended": c.stack == "keras-jax" and c.repeat == 0,
                                   "other_cpu_share": 0.48}
    g = groups_of(res)
    assert len(g["keras-jax"].values(TRAIN)) == 3  # shown
    assert len(g["keras-jax"].values(TRAIN, contended=False)) == 2  # not tested
    assert agg.summary(g["keras-jax"], TRAIN)["contended"] == 1
    cmp = agg.compare(g["torch"], g["keras-jax"], TRAIN)
    assert cmp["indicative"] and cmp["winner"] is None  # 3 vs 2 uncontended processes
    notes = not_compared(list(g.values()))
    assert notes == ["keras-jax repeat 0 left out of the verdicts: contended (other processes "
                     "used 48% of its CPUs while it was timed)"]
    for c in res.cells:  # every process of every stack contended: no ranking, no verdict
        c.metrics["contention"]["contended"] = True
    gs = agg.group_cells(res.cells)
    assert agg.ranked(gs, TRAIN) == []
    v = metric_verdict("training throughput", "v-training", agg.scopes(gs),
                       ["train_samples_per_s"], "not measured")
    assert v.items[0].sentence.startswith("No verdict: every measured process") and \
        v.items[0].winner is None


def test_noise_warning_above_ten_percent_cv():
    noisy = agg.group_cells(results({"a": (1000.0, 1.0)}, spread=0.2).cells)
    quiet = agg.group_cells(results({"a": (1000.0, 1.0)}, spread=0.02).cells)
    assert any(w["metric"] == "train_samples_per_s" for w in agg.noise_warnings(noisy))
    assert not any(w["metric"] == "train_samples_per_s" for w in agg.noise_warnings(quiet))


def test_unverified_cells_are_not_compared():
    res = results({"torch": (1000.0, 1.0), "keras-jax": (500.0, 1.0)})
    res.cells[1].status, res.cells[1].reason = "unverified", "grad_max_rel 0.3"
    item = rank_sentence(list(groups_of(res).values()), TRAIN)
    assert item.sentence.startswith("Only torch")


def test_code_line_counts_by_hand():
    src = '"""doc\nstring"""\n\nimport x  # c\n# only a comment\n\nclass A:\n    """d"""\n' \
          '    def f(self,\n          y):\n        return (y +\n                1)\n\n' \
          'def build():\n    return A()\n\ndef to_torch():\n    pass\n'
    # code: import, class, def f (2 lines), return (2 lines), def build, return, def to_torch, pass
    assert code_lines(src) == 10
    assert model_lines(src) == 7  # class A (5 lines) + build (2): no import, no to_torch


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("run"), hostile_results())
    return run, build_report(run)


def test_report_files_are_written_and_self_contained(written):
    run, paths = written
    html = paths["html"].read_text()
    assert paths["html"] == run / "report.html" and paths["md"] == run / "report.md"
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in html  # plotly.js inline, and nothing outside it loads a URL
    page = html.replace(get_plotlyjs(), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script src" not in page and "http" not in page
    assert html.count('class="plotly-graph-div"') >= 4
    for anchor in ("verdicts", "classic", "code", "parity", "environment", "noise",
                   "v-portability"):
        assert f'id="{anchor}"' in html
    # every evidence link of the classic table points at an anchor on the page
    for link in re.findall(r'<a href="#([\w-]+)"', html):
        assert f'id="{link}"' in html, link
    md = paths["md"].read_text()
    assert "## Verdicts per scenario" in md and "Indicative ranking on training throughput" in md
    if find_chromium():  # kaleido renders the PNGs with the local chromium
        pngs = re.findall(r"\]\((report_files/[\w-]+\.png)\)", md)
        assert pngs and all((run / p).stat().st_size > 1000 for p in pngs)
    else:
        assert "charts not rendered as PNG" in md


def test_not_measured_sections_name_their_command(written):
    md = written[1]["md"].read_text()
    assert "not measured in this run: `twinbench export`" in md
    assert "`twinbench run --target-accuracy 0.9`" in md
    assert "`twinbench pipelines --tasks digits,text`" in md


def test_hostile_strings_are_escaped_never_raw(written):
    _, paths = written
    # Markdown also backslash-escapes its own punctuation: "(" would end a link text
    for name, shown in (("html", "alert(1)"), ("md", "alert\\(1\\)")):
        text = paths[name].read_text()
        assert HOSTILE not in text, name
        assert f"&lt;script&gt;{shown}&lt;/script&gt;" in text, name
    html = paths["html"].read_text()
    assert "boom &lt;script&gt;" in html  # the failed cell's error text, escaped


def test_portability_and_pipelines_when_present(tmp_path):
    res = results({"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)})
    run = write_run(tmp_path / "run", res)
    export = res.model_copy(deep=True)
    for c in export.cells:
        ok = c.stack == "torch"
        c.portability = [{"format": "onnx", "runtime": "onnxruntime", "status": "ok"},
                         {"format": "saved", "runtime": "tf", "status": "ok" if ok else "failed"}]
    export.write(run, "export.json")
    (run / "pipelines.json").write_text(json.dumps({
        "run_id": "p", "environment": {}, "config": {}, "cells": [
            {"task": "digits", "model": "-", "stack": "-", "pipeline": "numpy",
             "measure": "pipeline", "status": "ok",
             "metrics": {"samples_per_s": {"median": 1234.6}}}]}))
    ctx = context(load_run(run))
    port = next(v for v in ctx["verdicts"] if v.anchor == "v-portability")
    assert port.items[0].winner is None  # counts: said in the sentence, never a badge
    assert "torch reaches the most runtimes" in port.items[0].sentence
    assert "torch 2 of 2" in port.items[0].sentence
    assert "keras-jax 1 of 2" in port.items[0].sentence
    assert ctx["sections"][0]["portability"]
    (row,) = ctx["pipelines"]["rows"]
    assert row[:5] == ["digits", "numpy", "(alone)", "ok", "1,235"]
    assert ctx["sections"][-1]["anchor"] == "pipelines-chart"  # its samples/s chart


def test_missing_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no such run folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(ReportError, match="none of results.json, verify.json, pipelines.json"):
        load_run(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ReportError, match="not a twinbench results file"):
        load_run(tmp_path)


def test_report_command_exit_codes(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "no such run folder" in bad.output
    assert "Traceback" not in bad.output
    run = write_run(tmp_path / "run", results({"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)}))
    ok = runner.invoke(app, ["report", str(run), "--no-markdown"])
    assert ok.exit_code == 0, ok.output
    assert (run / "report.html").exists() and not (run / "report.md").exists()


def test_run_writes_the_report_and_a_report_failure_never_fails_the_run(tmp_path, capsys):
    from twinbench.cli import _report_after_run

    run = write_run(tmp_path / "run", results({"torch": (1000.0, 1.0)}), verify=False)
    _report_after_run(run)
    assert (run / "report.html").exists() and (run / "report.md").exists()
    _report_after_run(tmp_path / "missing")  # must warn, not raise
    assert "report not written" in capsys.readouterr().err


def test_cells_on_different_nodes_are_never_compared():
    res = results({"torch": (1000.0, 1.0), "keras-jax": (500.0, 1.0)})
    res.cells[0].node = {"fingerprint": "node-a"}
    res.cells[1].node = {"fingerprint": "node-b"}
    by_scope = agg.scopes(agg.group_cells(res.cells))
    assert sorted(k[0] for k in by_scope) == ["node-a", "node-b"]
    assert all(len(gs) == 1 for gs in by_scope.values())


def test_time_to_accuracy_and_loadgen_verdicts():
    from twinbench.analysis.verdicts import all_verdicts

    res = results({"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)}, raw=False)
    res.cells[0].metrics["time_to_accuracy"] = {"target": 0.9, "s": 12.0, "epoch": 2}
    res.cells[1].metrics["time_to_accuracy"] = {"target": 0.9, "s": None, "epoch": None}
    for c, qps in zip(res.cells, (500.0, 900.0)):
        c.metrics["loadgen"] = {"server": {"qps": qps, "p99_ms": 5.0, "valid": True}}
    vs = {v.anchor: v for v in all_verdicts(agg.group_cells(res.cells), res.cells, {}, [], [])}
    tta = vs["v-tta"].items[0]
    assert tta.sentence.startswith("Only torch measured time to target accuracy: 12.0 s")
    assert any("keras-jax (repeat 0) never reached accuracy 0.9" in n for n in tta.notes)
    assert any(n.startswith("torch: time-to-accuracy score (MLPerf Training rule) 12 s")
               for n in tta.notes)
    qps = [i for i in vs["v-realtime"].items if "LoadGen Server" in i.sentence]
    assert qps and "keras-jax" in qps[0].sentence and qps[0].winner is None  # untested
    assert "LoadGen scenario, not an MLPerf result" in qps[0].sentence
    invalid = res.model_copy(deep=True)
    invalid.cells[1].metrics["loadgen"]["server"]["valid"] = False
    assert agg.metric_value(agg.METRICS["loadgen_server_qps"], invalid.cells[1].metrics) is None


def test_a_verify_only_folder_gets_a_parity_report(tmp_path):
    run = write_run(tmp_path / "run", results({"torch": (1000.0, 1.0), "keras-jax": (800.0, 2.0)}))
    (run / "results.json").unlink()
    paths = build_report(run)
    md = paths["md"].read_text()
    assert "| cnn | keras-jax vs torch | 1.0e-06 ok | pass |" in md
    assert "not measured in this run: `twinbench run`" in md


def test_portability_names_each_runtimes_language_and_the_languages_checked():
    from twinbench.analysis.classic import _portability_row
    from twinbench.report.tables import portability_table
    from twinbench.analysis.verdicts import portability_verdict

    lat = {"p50": 0.06, "p99": 0.6}
    torch = [{"format": "onnx", "runtime": "onnxruntime", "status": "ok"},  # old JSON: no
             {"format": "onnx", "runtime": "onnxruntime-node", "language": "JavaScript",
              "status": "ok", "max_abs_diff": 1.4e-6, "latency_b1_ms": lat},
             {"format": "onnx", "runtime": "onnxruntime-java", "language": "Java",
              "status": "skipped", "reason": "not installed: run `make setup-runtimes`"},
             {"format": "torchscript-trace", "runtime": "libtorch", "language": "C++",
              "status": "failed", "reason": "boom"}]
    keras = [{"format": "onnx", "runtime": "onnxruntime-node", "language": "JavaScript",
              "status": "ok"}]
    port = {("digits", "digits", "cnn", "torch"): torch,
            ("digits", "digits", "cnn", "keras-jax"): keras}
    row = _portability_row(port)
    assert row["verdict"] == "refuted"  # a PyTorch twin ran and matched outside Python
    assert "Python 1 of 1 matched (onnxruntime)" in row["PyTorch"]
    assert "JavaScript 1 of 1 matched (onnxruntime-node)" in row["PyTorch"]
    assert "Java not checked (onnxruntime-java skipped: not installed" in row["PyTorch"]
    assert "C++ 0 of 1 matched (libtorch)" in row["PyTorch"]
    assert "C++ not checked (no runtime for its formats)" in row["Keras 3"]
    assert "not checked by this version" not in row["PyTorch"] + row["Keras 3"]
    # a skipped runtime is outside the verdict's counts: torch 2 of 3, not 2 of 4
    assert "torch 2 of 3" in portability_verdict(port).items[0].sentence
    t = portability_table({"torch": torch})
    assert [r[3] for r in t["rows"]] == ["Python", "JavaScript", "Java", "C++"]
    assert t["rows"][1][5:9] == ["1.4e-06", "-", "0.060", "0.600"]
