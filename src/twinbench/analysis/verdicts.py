"""Scenario verdicts: one sentence per scenario and scope (task / data set / model), with
the numbers, their CIs and the test behind them. A verdict names a winner only when the
difference is significant between processes (Welch's t-test on log per-process values,
p < 0.01, an effect of at least 3%, 3 or more uncontended processes a side); with fewer
processes the ranking is shown as indicative and the command that would decide it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twinbench.analysis.aggregate import (
    METRICS,
    Group,
    Metric,
    compare,
    dig,
    is_contended,
    ranked,
    scopes,
)
from twinbench.measure.stats import MIN_EFFECT, MIN_PROCESSES, PROCESS_ALPHA, PROCESS_TEST
from twinbench.results import Cell, Results


@dataclass
class Item:
    scope: str  # "digits / digits / cnn", with the node when the run recorded one
    sentence: str
    winner: str | None = None
    test: dict | None = None
    notes: list[str] = field(default_factory=list)
    indicative: bool = False  # a ranking from too few processes: never a winner


@dataclass
class Verdict:
    scenario: str
    anchor: str
    items: list[Item] = field(default_factory=list)
    not_measured: str | None = None  # "not measured in this run: <command>"


def fmt_num(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_value(s: dict, m: Metric, short: bool = False) -> str:
    """"4,189 samples/s (95% CI 4,100–4,250, steps within one process)"; short (tables):
    "4,189 [4,100–4,250 steps]"."""
    unit = f" {m.unit}" if m.unit else ""
    if short:
        if not s.get("ci95"):
            return fmt_num(s["value"])
        lo, hi = s["ci95"]
        return f"{fmt_num(s['value'])} [{fmt_num(lo)}–{fmt_num(hi)} {s['spans'].split()[0]}]"
    if s.get("ci95"):
        lo, hi = s["ci95"]
        how = f", {s['ci_method']}" if s.get("ci_method") else ""
        return (f"{fmt_num(s['value'])}{unit} (95% CI {fmt_num(lo)}–{fmt_num(hi)}, "
                f"{s['spans']}{how})")
    return f"{fmt_num(s['value'])}{unit} ({s['spans']})"


def scope_name(key: tuple) -> str:
    node, task, dataset, model = key
    base = f"{task} / {dataset} / {model}"
    return f"{base} on {node}" if node else base


def not_compared(groups: list[Group]) -> list[str]:
    """Stacks in a scope whose cells are shown but never compared, and why."""
    out = []
    for g in groups:
        bad = [c for c in g.cells if c.status != "ok"]
        if bad and not g.ok:
            c = bad[0]
            out.append(f"{g.stack} not compared: {c.status}"
                       + (f" ({(c.reason or '')[:120]})" if c.reason else ""))
        for c in (c for c in g.ok if is_contended(c)):
            share = dig(c.metrics, ("contention", "other_cpu_share")) or 0.0
            out.append(f"{g.stack} repeat {c.repeat} left out of the verdicts: contended "
                       f"(other processes used {share:.0%} of its CPUs while it was timed)")
        if g.control_of:
            out.append(f"{g.stack} is an A/A control copy of {g.control_of}: not ranked; "
                       f"see the A/A control")
    return out


# The metrics an A/A control pair is compared on: what the verdicts rank most.
AA_METRICS = ("train_samples_per_s", "latency_b1_p50_ms", "infer_samples_per_s_b256")


def aa_pairs(groups: list[Group]) -> list[tuple[Group, Group]]:
    """(original, copy) for every A/A control copy (`torch#2`) whose original ran here."""
    by_stack = {g.stack: g for g in groups}
    return [(by_stack[g.control_of], g) for g in groups
            if g.control_of and g.control_of in by_stack]


def aa_rows(groups: list[Group]) -> list[dict]:
    """Every A/A pair x metric: the copy / original ratio and its per-process test."""
    rows = []
    for a, b in aa_pairs(groups):
        for name in AA_METRICS:
            cmp = compare(b, a, METRICS[name])
            if cmp is not None:
                # cmp's a is the copy, b the original: ratio = copy / original
                rows.append({**cmp, "scope": scope_name(a.scope),
                             "label": METRICS[name].label})
    return rows


def aa_verdict(groups: list[Group]) -> Verdict:
    """The A/A control: a stack against its own copy. Any winner here is a false one."""
    v = Verdict("A/A control (this machine's noise floor)", "v-aa")
    for r in aa_rows(groups):
        diff = f"{abs(r['ratio'] - 1):.1%}"
        if r["p"] is None:
            text = (f"{r['a']} / {r['b']} on {r['label']}: {r['ratio']:.3f} "
                    f"({r['n_b']} vs {r['n_a']} process, untested): the same stack differs "
                    f"by {diff} between processes here, so a smaller difference between two "
                    f"stacks means nothing on this machine.")
        elif r["significant"]:
            text = (f"FALSE WINNER: {r['a']} / {r['b']} on {r['label']} = "
                    f"{r['ratio']:.3f}, {_test_text(r)}. The same stack differs from itself "
                    f"beyond the test's level: this machine's noise exceeds what the test "
                    f"assumes, and the verdicts on this metric are suspect.")
        else:
            text = (f"{r['a']} / {r['b']} on {r['label']} = {r['ratio']:.3f} "
                    f"({diff} apart; {_test_text(r)}): no difference between a stack and "
                    f"itself, as it should be.")
        v.items.append(Item(r["scope"], text, None, r))
    if not v.items:
        v.not_measured = ("no A/A control in this run: name a stack twice "
                          "(`--stacks torch,torch,keras-jax --repeats 3`) to measure this "
                          "machine's noise floor beside the verdicts")
    return v


def effect(ratio: float) -> str:
    """best / runner-up as people read it: "12% higher", "2.5x lower"."""
    direction = "higher" if ratio > 1 else "lower"
    r = max(ratio, 1 / ratio) if ratio > 0 else float("inf")
    return f"{r:.2g}x {direction}" if r >= 1.5 else f"{abs(ratio - 1) * 100:.1f}% {direction}"


def _test_text(cmp: dict) -> str:
    return f"{cmp['test']} p = {cmp['p']:.2g} on {cmp['basis']}"


def decide_command(key: tuple, stacks: list[str]) -> str:
    """The run that would decide an indicative ranking: these stacks, 3 fresh processes
    each (MIN_PROCESSES), on this scope only."""
    from twinbench.models import FAMILIES

    _node, task, dataset, model = key
    data = "--data <the same --data>" if task == "custom" else \
        f"--tasks {task} --dataset {dataset}"  # custom: a user's data (twinbench.byo)
    models = f"--models {model}" if model in FAMILIES else "--model <the same --model>"
    return f"twinbench run {data} {models} --stacks {','.join(stacks)} --repeats {MIN_PROCESSES}"


def indicative_item(order: list[tuple[Group, dict]], m: Metric, key: tuple) -> Item:
    """A ranking from fewer than MIN_PROCESSES processes per stack: shown, never a winner."""
    n = min(s["repeats"] for _, s in order)
    ranking = ", ".join(f"{g.stack} {fmt_num(s['value'])}" for g, s in order)
    unit = f" {m.unit}" if m.unit else ""
    text = (f"Indicative ranking on {m.label} ({n} process{'es' if n != 1 else ''} per stack, "
            f"so no winner is named), best first: {ranking}{unit}. The differences between "
            f"stacks are not tested against process-to-process noise; "
            f"`{decide_command(key, [g.stack for g, _ in order])}` decides.")
    it = Item("", text, None, compare(order[0][0], order[1][0], m))
    it.indicative = True
    return it


def rank_sentence(groups: list[Group], m: Metric, key: tuple = ("", "", "", "")
                  ) -> Item | None:
    """The best stack on `m` against the runner-up, tested per process, or an indicative
    ranking when a stack has fewer than MIN_PROCESSES processes; None if no stack has `m`."""
    order = ranked(groups, m)
    if not order:
        return None
    (gb, sb), rest = order[0], order[1:]
    if not rest:
        return Item("", f"Only {gb.stack} measured {m.label}: {fmt_value(sb, m)}.")
    g2, s2 = rest[0]
    cmp = compare(gb, g2, m)
    if cmp["p"] is None:
        return indicative_item(order, m, key)
    both = (f"{gb.stack} at {fmt_value(sb, m)} is {effect(cmp['ratio'])} than {g2.stack} at "
            f"{fmt_value(s2, m)}")
    if cmp["winner"]:
        w, other = (gb, g2) if cmp["winner"] == gb.stack else (g2, gb)
        text = (f"{w.stack} is best on {m.label}: {both}; {_test_text(cmp)}.")
        return Item("", text, w.stack, cmp)
    text = (f"No clear winner on {m.label}: {both} ({_test_text(cmp)}); a winner needs "
            f"p < {PROCESS_ALPHA} and a difference of at least {MIN_EFFECT:.0%}.")
    return Item("", text, None, cmp)


def metric_verdict(scenario: str, anchor: str, by_scope: dict[tuple, list[Group]],
                   metrics: list[str], missing: str,
                   extra: Callable[[list[Group]], list[str]] = lambda gs: []) -> Verdict:
    v = Verdict(scenario, anchor)
    for key, groups in by_scope.items():
        notes = not_compared(groups) + extra(groups)
        items = [i for name in metrics if (i := rank_sentence(groups, METRICS[name], key))]
        if not items and extra(groups):  # nothing to rank, but something to say
            items = [Item("", "No stack to rank: " + "; ".join(extra(groups)) + ".")]
        elif not items and any(g.ok and not g.compared for g in groups):
            items = [Item("", "No verdict: every measured process of these stacks ran "
                              "contended; rerun on a quiet machine (`twinbench run "
                              "--wait-quiet 60`).")]
        for item in items:
            item.scope, item.notes = scope_name(key), notes
        v.items += items
    if not v.items:
        v.not_measured = missing
    return v


def tta_notes(groups: list[Group]) -> list[str]:
    """Each stack's MLPerf-style score over its repeats (unreached runs count as infinitely
    slow; olympic mean from 5 runs), and the runs that never reached the target."""
    from twinbench.measure.stats import time_to_accuracy_score

    out = []
    for g in groups:
        runs = [c.metrics.get("time_to_accuracy") for c in g.ok]
        if runs and all(isinstance(t, dict) for t in runs):
            sc = time_to_accuracy_score([t.get("s") for t in runs])
            score = f"{sc['score_s']:.3g} s" if sc["score_s"] is not None else "not reached"
            out.append(f"{g.stack}: time-to-accuracy score (MLPerf Training rule) {score} "
                       f"({sc['method']} of {sc['runs']} "
                       f"runs, {sc['reached']} reached {runs[0].get('target')})")
    for c in (c for g in groups for c in g.ok):
        tta = c.metrics.get("time_to_accuracy")
        if isinstance(tta, dict) and tta.get("s") is None:
            out.append(f"{c.stack} (repeat {c.repeat}) never reached accuracy "
                       f"{tta.get('target')} in its {len(c.metrics.get('epochs', []))} epochs")
    return out


def portability_verdict(entries: dict[tuple, list[dict]]) -> Verdict:
    """entries: (task, dataset, model, stack) -> the stack's portability entries."""
    v = Verdict("portability", "v-portability")
    by_model: dict[tuple, dict[str, list[dict]]] = {}
    for (task, dataset, model, stack), es in entries.items():
        by_model.setdefault((task, dataset, model), {})[stack] = es
    for (task, dataset, model), stacks in by_model.items():
        # A runtime skipped (not installed here) was not checked: outside the counts.
        counts = {s: (sum(e.get("status") == "ok" for e in es),
                      sum(e.get("status") != "skipped" for e in es))
                  for s, es in stacks.items()}
        parts = [f"{s} {ok} of {n}" for s, (ok, n) in counts.items()]
        best = max(counts.values(), key=lambda c: c[0])[0]
        top = [s for s, (ok, _) in counts.items() if ok == best]
        lead = (f"{top[0]} reaches the most runtimes" if len(top) == 1
                else "No single stack reaches the most runtimes")
        text = (f"{lead}: formats that exported, reloaded in their runtime and matched the "
                f"source twin's outputs: {', '.join(parts)}. These are counts of pass/fail "
                f"checks, so no significance test applies.")
        v.items.append(Item(f"{task} / {dataset} / {model}", text, None))  # counts
    if not v.items:
        v.not_measured = ("not measured in this run: `twinbench export` exports every twin, "
                          "reloads each artifact in its runtime and compares its outputs")
    return v


def code_verdict(twins: list[dict], training: list[dict]) -> Verdict:
    """Line counts are exact, not sampled: a difference of 3% or more names the shorter."""
    v = Verdict("code size", "v-code")
    for t in twins:
        if "sides" not in t or t.get("generated"):  # a user's model: one side generated
            continue
        (fa, a), (fb, b) = [(s["framework"], s) for s in t["sides"]]
        ma, mb = a["model_lines"], b["model_lines"]
        shorter = None if abs(ma - mb) < 0.03 * max(ma, mb) else (fa if ma < mb else fb)
        lead = f"{shorter} is shorter" if shorter else "No clear winner"
        text = (f"{lead}: the model definition takes {ma} code lines in {fa} and {mb} in {fb} "
                f"(whole files {a['code_lines']} vs {b['code_lines']}; the {fa} twin's "
                f"weight-layout converters, which only the parity checks need, are in "
                f"torch_weights.py beside it). Counts are exact, so no test applies.")
        # exact counts, not a measurement: said in the sentence, never a "winner" badge
        v.items.append(Item(t["family"], text, None))
    if len(training) == 2:
        (ta, tb) = training
        text = (f"Training: {ta['framework']} needs an explicit loop ({ta['name']}, "
                f"{ta['code_lines']} code lines: zero_grad, forward, loss, backward, step); "
                f"{tb['framework']} calls model.fit ({tb['name']}, {tb['code_lines']} lines). "
                f"Both include twinbench's per-step timing.")
        shorter = ta["framework"] if ta["code_lines"] < tb["code_lines"] else tb["framework"]
        v.items.append(Item("training loop", text, None))
    return v


def all_verdicts(groups: list[Group], cells: list[Cell], portability: dict[tuple, list[dict]],
                 twins: list[dict], training: list[dict]) -> list[Verdict]:
    by_scope = scopes(groups)
    realtime = metric_verdict(
        "real-time inference", "v-realtime", by_scope,
        ["latency_b1_p99_ms", "loadgen_single_stream_p90_ms", "loadgen_server_qps"],
        "not measured in this run: `twinbench run` times batch-1 inference")
    if not any(dig(c.metrics, ("loadgen",)) for c in cells):
        realtime.items.append(Item("LoadGen", "LoadGen scenarios (not MLPerf results): not "
                                   "measured in this run "
                                   "(`twinbench run --loadgen`)."))
    tta = metric_verdict("time to accuracy", "v-tta", by_scope, ["time_to_accuracy_s"],
                         "not measured in this run: `twinbench run --target-accuracy 0.9`",
                         tta_notes)
    return [
        aa_verdict(groups),
        realtime,
        metric_verdict("training throughput", "v-training", by_scope, ["train_samples_per_s"],
                       "not measured in this run: `twinbench run`"),
        tta,
        metric_verdict("startup and compile cost", "v-startup", by_scope,
                       ["first_step_s", "import_s"], "not measured in this run: `twinbench run`"),
        metric_verdict("memory", "v-memory", by_scope, ["peak_rss_mb"],
                       "not measured in this run: `twinbench run`"),
        portability_verdict(portability),
        code_verdict(twins, training),
    ]


def _parity_line(cells: list[Cell], probes: list[Cell]) -> str:
    """What was proven before anything was timed."""
    checked = [c for c in probes if "pass" in c.parity]
    if not checked:
        return "no parity probe recorded"
    passed = sum(bool(c.parity["pass"]) for c in checked)
    names = [k for c in checked for k in c.parity.get("checks", {})]
    checks = ", ".join(dict.fromkeys(names)) or "-"
    ref = next((c.parity.get("reference") for c in checked), "torch")
    return (f"{passed} of {len(checked)} twins matched the {ref} twin before timing "
            f"(checks: {checks})")


def reliability(groups: list[Group]) -> list[str]:
    """The lines a reader needs before trusting a verdict: how many processes each verdict
    rests on, this machine's A/A floor, and the contended cells."""
    out = []
    ok = [c for g in groups for c in g.ok]
    n = min((len(g.ok) for g in groups if g.ok), default=0)
    if n < MIN_PROCESSES:
        out.append(f"{n} process{'es' if n != 1 else ''} per stack: rankings are indicative "
                   f"and no winner is named; `twinbench run ... --repeats {MIN_PROCESSES}` "
                   f"decides (winners need {MIN_PROCESSES} processes a side)")
    else:
        out.append(f"{n}+ processes per stack: winners are tested per process "
                   f"({PROCESS_TEST}, p < {PROCESS_ALPHA}, at least {MIN_EFFECT:.0%} apart)")
    aa = aa_rows(groups)
    if aa:
        worst = max(aa, key=lambda r: abs(r["ratio"] - 1))
        false = [r for r in aa if r["significant"]]
        out.append(f"A/A floor: a stack against its own copy differs by up to "
                   f"{abs(worst['ratio'] - 1):.1%} ({worst['a']} / {worst['b']} on "
                   f"{worst['label']}); "
                   + (f"{len(false)} FALSE WINNER(S) among {len(aa)} A/A comparisons"
                      if false else f"no false winner in {len(aa)} A/A comparisons"))
    else:
        out.append("A/A floor: not measured (name a stack twice, `--stacks "
                   "torch,torch,...`, to see how much a stack differs from itself here)")
    cont = [c for c in ok if is_contended(c)]
    measured = [c for c in ok if dig(c.metrics, ("contention", "available"))]
    out.append(f"contended cells: {len(cont)} of {len(measured)} measured (other work above "
               f"its threshold share of their CPUs while timed)"
               + (": " + ", ".join(f"{c.stack} r{c.repeat}" for c in cont)
                  + ", shown but left out of the verdicts" if cont else ""))
    return out


def overview(results: Results | None, groups: list[Group], probes: list[Cell]) -> dict:
    """What ran, on what, proven how: the report's first lines."""
    cells = results.cells if results else []
    env = results.environment if results else {}
    cfg = results.config if results else {}
    scopes_ = list(dict.fromkeys(f"{c.task} / {c.dataset} / {c.model}" for c in cells))
    return {
        "ran": [
            f"tasks: {', '.join(scopes_) or '-'}",
            f"stacks: {', '.join(dict.fromkeys(c.stack for c in cells)) or '-'}",
            f"repeats: {max((c.repeat for c in cells), default=0) + 1} fresh process(es) "
            f"per cell; "
            f"{len(cells)} cells, {sum(c.status == 'ok' for c in cells)} ok",
            f"machine: {env.get('cpu_model') or '?'}, {env.get('cores') or '?'} cores, "
            f"{cfg.get('threads') or '?'} threads per cell, device {cfg.get('device', 'cpu')}",
            f"parity: {_parity_line(cells, probes)}",
            *_suite_line(cfg),
        ],
        "reliability": reliability(groups),
    }


def _suite_line(cfg: dict) -> list[str]:
    """The suite and the run settings that its file fixed (the quick suite's shortened
    inference phases), with the values the run used."""
    suite = cfg.get("suite") or {}
    fixed = {k: v for k, v in (suite.get("settings") or {}).items() if v is not None}
    if not suite:
        return []
    def setting(k: str, v: object) -> str:
        used = cfg.get(k, v)
        return f"{k} {v}" + ("" if used == v else f" (this run: {used})")

    line = f"suite: {suite.get('name', '?')}"
    if fixed:
        line += "; its file sets " + ", ".join(setting(k, v) for k, v in fixed.items())
    return [line]
