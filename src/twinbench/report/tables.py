"""The report's tables as plain data: {"title", "headers", "rows", "note"}, every cell a
string (the templates escape them). Framework-free."""

from __future__ import annotations

import json
import statistics
from typing import Any

from twinbench.analysis.aggregate import METRICS, Group, dig, is_contended, summary
from twinbench.analysis.verdicts import fmt_num, fmt_value
from twinbench.results import Cell, Results

CI_NOTE = ("Values: the median across repeats, or one process's value. [a–b steps]: the "
           "95% bootstrap CI over the training steps (or calls) of one process; [a–b "
           "repeats]: over repeats in fresh processes.")


def table(title: str, headers: list[str], rows: list[list[Any]], note: str | None = None
          ) -> dict:
    return {"title": title, "headers": headers,
            "rows": [["-" if v is None else str(v) for v in r] for r in rows], "note": note}


def _summary_text(g: Group, name: str) -> str:
    s = summary(g, METRICS[name])
    return fmt_value(s, METRICS[name], short=True) if s else "-"


def _status(g: Group) -> str:
    counts: dict[str, int] = {}
    for c in g.cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    return ", ".join(f"{k} x{v}" if len(g.cells) > 1 else k for k, v in counts.items())


def _parity_word(g: Group) -> str:
    p = g.cells[0].parity
    if "pass" not in p:
        return "-"
    return f"ok vs {p.get('reference')}" if p["pass"] else f"FAIL {p.get('failure')}"


def accuracy_table(gs: list[Group]) -> dict:
    rows = []
    for g in gs:
        last = [c.metrics["epochs"][-1].get("test_loss") for c in g.ok if c.metrics.get("epochs")]
        reason = next((c.reason for c in g.cells if c.reason), None)
        rows.append([g.stack, _status(g), _summary_text(g, "accuracy"),
                     fmt_num(last[0]) if last and last[0] is not None else "-",
                     f"{g.cells[0].params:,}" if g.cells[0].params else "-", _parity_word(g),
                     (reason or "")[:200]])
    return table("Accuracy", ["stack", "status", "test accuracy", "final test loss", "params",
                              "parity", "reason"], rows, CI_NOTE)


def speed_table(gs: list[Group]) -> dict:
    rows = []
    for g in gs:
        c = (g.ok or g.cells)[0]
        m = c.metrics
        idio = m.get("latency_b1_idiomatic")
        idio_p50 = dig(m, ("latency_b1_by_path", idio or "", "p50"))
        rows.append([g.stack, _summary_text(g, "train_samples_per_s"),
                     _summary_text(g, "latency_b1_p50_ms"), _summary_text(g, "latency_b1_p99_ms"),
                     dig(m, ("latency_b1_ms", "path")),
                     f"{fmt_num(idio_p50)} ({idio})" if idio else "-",
                     _summary_text(g, "infer_samples_per_s_b256")])
    headers = ["stack", "train samples/s", "b1 p50 ms (fastest path)", "b1 p99 ms (fastest path)",
               "fastest path", "b1 p50 ms (idiomatic path)", "b256 samples/s"]
    return table("Throughput and latency", headers, rows, CI_NOTE)


def memory_table(gs: list[Group]) -> dict:
    rows = [[g.stack, _summary_text(g, "peak_rss_mb"), _summary_text(g, "import_s"),
             _summary_text(g, "first_step_s"), _summary_text(g, "time_to_accuracy_s")]
            for g in gs]
    return table("Memory, startup and time to accuracy",
                 ["stack", "peak RSS MiB", "import s", "spawn to first step s",
                  "time to accuracy s"], rows, CI_NOTE)


FLOPS_KEYS = ("forward_per_sample", "train_gflops_s", "infer_gflops_s", "peak_gflops_s",
              "train_pct_peak", "infer_pct_peak")


def flops_table(gs: list[Group]) -> dict:
    rows = [[g.stack, *[fmt_num(dig(c.metrics, ("flops", k))) for k in FLOPS_KEYS]]
            for g in gs for c in g.ok[:1] if isinstance(c.metrics.get("flops"), dict)]
    note = None if rows else ("not measured in this run: its cells carry no FLOP counts "
                              "(`twinbench run` records them where the version counts FLOPs)")
    return table("FLOPs and % of peak (first repeat)", ["stack", *FLOPS_KEYS], rows, note)


def parity_table(cells: list[Cell], title: str = "Parity (verify)") -> dict:
    checks: list[str] = []
    for c in cells:
        checks += [k for k in c.parity.get("checks", {}) if k not in checks]
    rows = []
    for c in cells:
        vals = []
        for k in checks:
            v = c.parity.get("checks", {}).get(k)
            vals.append("-" if not isinstance(v, dict) else
                        f"{v.get('value', 0):.1e} {'ok' if v.get('pass') else 'FAIL'}")
        verdict = ("pass" if c.parity.get("pass") else f"FAIL {c.parity.get('failure') or ''}"
                   ) if "pass" in c.parity else f"{c.status} {(c.reason or '')[:120]}"
        rows.append([c.model, f"{c.stack} vs {c.parity.get('reference', '-')}", *vals, verdict])
    note = None if cells else "no parity probe in this run: `twinbench verify`"
    return table(title, ["model", "pair", *checks, "verdict"], rows, note)


def scope_tables(gs: list[Group], parity_cells: list[Cell]) -> list[dict]:
    return [accuracy_table(gs), speed_table(gs), inference_routes_table(gs),
            loadgen_report_table(gs), memory_table(gs), flops_table(gs),
            parity_table(parity_cells, "Parity of these twins (verify)")]


def _num(v: Any, spec: str, scale: float = 1.0) -> str:
    return format(v * scale, spec) if isinstance(v, (int, float)) else "-"


def portability_table(port: dict[str, list[dict]]) -> dict:
    """stack -> portability entries: one row per (format, runtime), with the runtime's
    language and its batch-1 latency timed inside that runtime."""
    from twinbench.export.formats import language

    rows = []
    for stack, es in port.items():
        for e in es:
            lat = e.get("latency_b1_ms") if isinstance(e.get("latency_b1_ms"), dict) else {}
            rows.append([stack, e.get("format"), e.get("runtime"),
                         e.get("language") or language(str(e.get("runtime"))), e.get("status"),
                         _num(e.get("max_abs_diff"), ".1e"), _num(e.get("load_s"), ",.0f", 1e3),
                         _num(lat.get("p50"), ".3f"), _num(lat.get("p99"), ".3f"),
                         str(e.get("reason") or "")[:200]])
    return table("Portability: each artifact reloaded in each runtime", [
        "stack", "format", "runtime", "language", "status", "max abs diff", "load ms",
        "b1 p50 ms", "b1 p99 ms", "reason"], rows,
        "Latency: batch-1 calls timed inside the runtime itself (the JavaScript, Java and "
        "C++ harnesses time their own calls). skipped: the runtime is not installed here.")


def pipelines_table(raw: dict | None) -> dict:
    """pipelines.json: one row per measurement, the columns of `twinbench pipelines`."""
    from twinbench.report.pipelines import rows as pipeline_rows

    if not raw or not isinstance(raw.get("cells"), list):
        return table("Input pipelines", [], [], "not measured in this run: "
                     "`twinbench pipelines --tasks digits,text` measures each framework's "
                     "input pipeline, alone and feeding each stack")
    try:
        rs = pipeline_rows(Results.model_validate(raw))
    except ValueError as e:  # an unreadable file: say so, keep the rest of the report
        return table("Input pipelines", [], [], f"pipelines.json unreadable: {e}")
    head = ["task", "pipeline", "feeds", "status", "samples/s", "step ms (IQR)",
            "ms/step (epoch)", "CPU s per 1k samples", "cores busy", "batches",
            "same loss as numpy", "note"]
    out = [[r["task"], r["pipeline"], r["stack"] or "(alone)", r["status"],
            fmt_num(r["samples_per_s"]),
            "-" if r["step_ms"] is None else f"{r['step_ms']:.2f} ({r['step_ms_iqr']:.2f})",
            fmt_num(r["ms_per_step_epoch"]), fmt_num(r["cpu_s_per_1k_samples"]),
            fmt_num(r["cores_busy"]), r["equivalence"],
            {None: "-", True: "yes", False: "no"}[r["same_loss_as_numpy"]],
            r["note"] or (r["reason"] or "")] for r in rs]
    return table("Input pipelines", head, out, "samples/s alone: the ceiling a pipeline puts "
                 "on training; step ms: the training step fed by it, waiting included")


def _scalar(v: Any) -> str:
    return fmt_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def cells_table(cells: list[Cell]) -> dict:
    rows = [[c.task, c.dataset, c.model, c.stack, c.repeat, c.status,
             fmt_num(c.wall_s) if c.wall_s else "-", (c.reason or "")[:300]] for c in cells]
    return table("Every cell", ["task", "dataset", "model", "stack", "repeat", "status",
                                "wall s", "reason"], rows)


def environment_tables(res: Results) -> list[dict]:
    env = res.environment
    keys = ("cpu_model", "cores", "affinity", "memory_gb", "os", "python", "twinbench",
            "git_commit")
    machine = table("Machine and software", ["what", "value"],
                    [[k, _compact(env.get(k))] for k in keys])
    packages = table("Package versions", ["package", "version"],
                     [[k, v] for k, v in (env.get("packages") or {}).items()])
    variables = table("Thread and framework environment variables", ["variable", "value"],
                      [[k, v] for k, v in (env.get("env") or {}).items()],
                      None if env.get("env") else "none set")
    config = table("Run configuration", ["knob", "value"],
                   [[k, _compact(v)] for k, v in res.config.items()])
    return [machine, packages, variables, config]


def _compact(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


def settings_table(cells: list[Cell]) -> dict:
    """Per stack, the settings as applied in its first cell."""
    seen: dict[str, Cell] = {}
    for c in cells:
        if c.settings and c.stack not in seen:
            seen[c.stack] = c
    rows = [[s, c.settings.get("threads"), _compact(c.settings.get("thread_settings")),
             c.settings.get("compile_mode"), c.settings.get("jit_compile_resolved"),
             c.settings.get("batch_size"), c.settings.get("epochs"),
             _compact(c.settings.get("versions")),
             _compact(c.settings.get("foreign_imports_refused"))] for s, c in seen.items()]
    return table("Settings per stack (as applied)",
                 ["stack", "threads", "thread settings", "compile mode", "jit_compile resolved",
                  "batch", "epochs", "versions", "foreign imports refused"], rows)


def noise_table(warnings: list[dict]) -> dict:
    rows = [[f"{w['task']} / {w['dataset']} / {w['model']}", w["stack"], w["label"],
             f"{w['cv'] * 100:.0f}%", w["spans"]] for w in warnings]
    return table("Noise warnings (coefficient of variation above 10%)",
                 ["scope", "stack", "metric", "CV", "sample"], rows,
                 None if rows else "no metric's coefficient of variation exceeds 10%")


# --- The first screen (issue 16): one scoreboard per scope, then the tables behind it ---

# What "compiled" means on each stack's batch-1 inference route.
COMPILED_MEANS = {
    "torch": "no compiled route: eager no_grad and inference_mode",
    "torch-compile": "torch.compile (inductor) forward under inference_mode",
    "keras-tensorflow": "tf.function around the model, jit_compile=False (graph)",
    "keras-tensorflow-xla": "tf.function around the model, jit_compile=True (XLA)",
    "keras-jax": "jax.jit of the model's stateless forward",
    "keras-torch": "torch.compile of the Keras model under no_grad",
}


def _median(values: list[Any]) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(statistics.median(vals)) if vals else None


def _per_repeat(g: Group, path: tuple[str, ...]) -> str:
    """The median over the group's ok repeats of one metrics value, formatted."""
    return fmt_num(_median([dig(c.metrics, path) for c in g.ok]))


def _idiomatic_b1(g: Group) -> str:
    vals = [dig(c.metrics, ("latency_b1_by_path", c.metrics.get("latency_b1_idiomatic") or "",
                            "p50")) for c in g.ok]
    route = next((c.metrics.get("latency_b1_idiomatic") for c in g.ok), None)
    return f"{fmt_num(_median(vals))} ({route})" if route else "-"


def _fastest_b1(g: Group) -> str:
    route = next((dig(c.metrics, ("latency_b1_ms", "path")) for c in g.ok), None)
    val = _per_repeat(g, ("latency_b1_ms", "p50"))
    return f"{val} ({route})" if route else "-"


def _train_wall(g: Group) -> str:
    """Wall time of all epochs, training plus each epoch's evaluation."""
    return fmt_num(_median([(c.metrics.get("epochs") or [{}])[-1].get("elapsed_s")
                            for c in g.ok]))


def _board_status(g: Group) -> str:
    n_cont = sum(is_contended(c) for c in g.ok)
    text = _status(g)
    if n_cont:
        text += f"; CONTENDED x{n_cont} (left out of verdicts)"
    if g.control_of:
        text += f"; A/A copy of {g.control_of}"
    return text


SCOREBOARD_HEADERS = ["stack", "status", "processes", "train wall s", "first step s",
                      "accuracy", "b1 p50 ms (idiomatic)", "b1 p50 ms (fastest)",
                      "b256 samples/s", "peak RSS MiB"]


def scoreboard(gs: list[Group], title: str) -> dict:
    """Stacks x key metrics: medians over each stack's ok processes."""
    rows = [[g.stack, _board_status(g), len(g.ok), _train_wall(g),
             _per_repeat(g, ("first_step_s",)), _per_repeat(g, ("accuracy",)),
             _idiomatic_b1(g), _fastest_b1(g), _per_repeat(g, ("infer_samples_per_s_b256",)),
             _per_repeat(g, ("peak_rss_mb",))] for g in gs]
    note = ("Medians over each stack's processes. train wall: all epochs, with each "
            "epoch's evaluation; first step: spawn to the end of the first training step "
            "(import, build, compile); b1: batch-1 latency by the idiomatic route and by "
            "the fastest one (routes below).")
    return table(title, SCOREBOARD_HEADERS, rows, note)


def inference_routes_table(gs: list[Group]) -> dict:
    """Batch-1 latency of every inference route of every stack (first ok process)."""
    rows = []
    for g in gs:
        c = (g.ok or [None])[0]
        routes = (c.metrics.get("latency_b1_by_path") if c else None) or {}
        for name, r in routes.items():
            if not isinstance(r, dict):
                continue
            rows.append([g.stack, name, "yes" if r.get("idiomatic") else "",
                         fmt_num(r.get("p50")), fmt_num(r.get("p99")), r.get("calls", "-"),
                         r.get("error") or ("stopped by --latency-budget"
                                            if r.get("budget_hit") else "")])
    means = "; ".join(f"{s}: {COMPILED_MEANS.get(s.partition('#')[0], '?')}"
                      for s in dict.fromkeys(g.stack for g in gs))
    return table("Batch-1 latency by inference route (first process)",
                 ["stack", "route", "idiomatic", "p50 ms", "p99 ms", "calls", "note"], rows,
                 f"What 'compiled' means per stack: {means}." if rows else
                 "not measured in this run")


def _scenario_text(r: Any, value: str) -> str:
    if not isinstance(r, dict):
        return "-"
    if r.get("valid"):
        return f"{value} VALID"
    why = ", ".join(r.get("failed_checks") or []) or "no run within the bound"
    return f"{value} INVALID ({r.get('verdict') or 'no result'}: {why})"


def loadgen_report_table(gs: list[Group]) -> dict:
    """LoadGen scenarios per process, with LoadGen's verdict and why a run was INVALID."""
    rows = []
    for g in gs:
        for c in g.ok:
            lg = c.metrics.get("loadgen")
            if not isinstance(lg, dict):
                continue
            if "error" in lg:
                rows.append([g.stack, c.repeat, lg.get("path"), f"failed: {lg['error']}",
                             "-", "-"])
                continue
            ss, sv, off = lg.get("single_stream"), lg.get("server"), lg.get("offline")
            rows.append([g.stack, c.repeat, lg.get("path"),
                         _scenario_text(ss, f"p90 {fmt_num(dig(ss, ('p90_ms',)))} ms"),
                         _scenario_text(sv, f"{fmt_num(dig(sv, ('qps',)))} QPS, p99 "
                                            f"{fmt_num(dig(sv, ('p99_ms',)))} ms <= "
                                            f"{fmt_num(dig(sv, ('bound_ms',)))}"),
                         _scenario_text(off, f"{fmt_num(dig(off, ('samples_per_s',)))} "
                                             f"samples/s")])
    return table("LoadGen scenarios (not MLPerf results)",
                 ["stack", "repeat", "route", "SingleStream", "Server", "Offline"], rows,
                 "MLPerf LoadGen run on this machine with short minimum durations: a LoadGen "
                 "scenario, not an MLPerf result. INVALID names the checks LoadGen failed."
                 if rows else "not measured in this run (`twinbench run --loadgen`)")
