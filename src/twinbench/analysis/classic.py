"""The classic "PyTorch vs Keras" comparison table, rebuilt from this run's evidence: one row
per aspect, each cell a statement backed by a number from the run and a link to it."""

from __future__ import annotations

from twinbench.analysis.verdicts import Verdict
from twinbench.export.formats import language
from twinbench.results import Cell, Results
from twinbench.stacks import stack_info

FRAMEWORKS = {"torch": "PyTorch", "keras": "Keras 3"}
LANGUAGES = ("Python", "JavaScript", "Java", "C++")


def framework_of(stack: str) -> str | None:
    try:
        return FRAMEWORKS[stack_info(stack).framework]
    except (KeyError, ValueError):  # a stack this version does not know (a foreign file)
        return None


def _parity_evidence(parity_cells: list[Cell]) -> tuple[int, int, float | None]:
    """(twins that passed, twins checked, worst gradient relative error)."""
    checked = [c for c in parity_cells if "pass" in c.parity]
    worst = [c.parity.get("checks", {}).get("grad_max_rel", {}).get("value") for c in checked]
    worst = [w for w in worst if isinstance(w, (int, float))]
    return sum(bool(c.parity["pass"]) for c in checked), len(checked), max(worst, default=None)


# The seed article's table, as its claims were quoted when this project started (the
# article's own wording where the issues quote it). Each row: claim -> evidence -> verdict.
CLAIMS = {
    "data structure": "PyTorch computes on its own tensors; Keras takes NumPy arrays",
    "model building": "PyTorch builds models by subclassing nn.Module; Keras stacks layers",
    "training": "PyTorch needs a hand-written training loop; Keras trains with fit()",
    "gradients": "Keras needs manual gradients",
    "GPU": "PyTorch can use N GPUs in parallel; Keras trains on the GPU",
    "portability": "PyTorch is portable to Python; Keras to Python, JavaScript and Java",
    "community": "the frameworks differ in the size and activity of their community",
    "API": "Keras has the simpler, higher-level API",
    "speed": "PyTorch is fast: ahead on training time and speed",
    "parameters": "the more parameters, the longer training takes; PyTorch is ahead on "
                  "parameters",
}
SUPPORTED, REFUTED, NOT_MEASURED = "supported", "refuted", "not measured here"


def _row(aspect: str, torch: str, keras: str, link: str, label: str,
         verdict: str = SUPPORTED) -> dict:
    return {"aspect": aspect, "claim": CLAIMS[aspect], "PyTorch": torch, "Keras 3": keras,
            "verdict": verdict, "link": link, "link_label": label}


def _speed(verdicts: list[Verdict]) -> tuple[dict[str, str], str]:
    """Per framework, each stack's (so each Keras backend's) wins among the speed verdicts
    tested per process, and the claim's verdict: refuted when a Keras stack won any,
    supported when only torch stacks won, not measured when none was decided."""
    wins: dict[str, dict[str, int]] = {"PyTorch": {}, "Keras 3": {}}
    decided = indicative = 0
    for v in (v for v in verdicts if v.anchor in ("v-training", "v-realtime")):
        for it in (i for i in v.items if i.test is not None):
            indicative += it.indicative
            decided += not it.indicative
            for stack in (it.test.get("a"), it.test.get("b")):
                fw = framework_of(stack or "")
                if fw:
                    wins[fw].setdefault(stack, 0)
            if it.winner and framework_of(it.winner):
                wins[framework_of(it.winner)][it.winner] += 1
    tail = (f" (of {decided} speed verdicts tested per process; {indicative} more "
            f"indicative only, under 3 processes per stack)")
    text = {fw: (", ".join(f"{s} won {n}" for s, n in w.items()) or "no stack compared")
            + tail for fw, w in wins.items()}
    keras_won = any(wins["Keras 3"].values())
    verdict = (REFUTED if keras_won else SUPPORTED if any(wins["PyTorch"].values())
               else NOT_MEASURED)
    return text, verdict


def classic_rows(results: Results | None, parity_cells: list[Cell], twins: list[dict],
                 training: list[dict], portability: dict[tuple, list[dict]],
                 verdicts: list[Verdict]) -> list[dict]:
    cells = results.cells if results else []
    shapes = sorted({str(tuple(c.data["input_shape"])) for c in cells
                     if isinstance(getattr(c, "data", None), dict) and "input_shape" in c.data})
    ok, n, worst = _parity_evidence(parity_cells)
    parity_txt = (f"{ok} of {n} twins matched the torch twin's outputs and gradients on the "
                  f"same batch" if n else "no parity probe in this run")
    rows = [_row("data structure",
                 f"torch.Tensor made from the shared numpy arrays; images transposed to NCHW "
                 f"(inputs {', '.join(shapes) or '-'} in Keras's layout). {parity_txt}.",
                 f"the same numpy arrays, NHWC, handed to model.fit. {parity_txt}.",
                 "#parity", "parity table", SUPPORTED if cells else NOT_MEASURED)]
    per = {fw: ", ".join(f"{t['family']} {s['model_lines']}" for t in twins if "sides" in t
                         and not t.get("generated")
                         for s in t["sides"] if s["framework"] == fw) or "-"
           for fw in FRAMEWORKS.values()}
    rows.append(_row("model building",
                     f"nn.Module subclass; model code lines: {per['PyTorch']}",
                     f"keras.Model subclass of layers; model code lines: {per['Keras 3']}",
                     "#code", "twins side by side"))
    tr = {t["framework"]: t for t in training}
    rows.append(_row("training",
                     _train_text(tr.get("PyTorch"), "explicit loop", cells, "PyTorch"),
                     _train_text(tr.get("Keras 3"), "compile + fit", cells, "Keras 3"),
                     "#code-training", "training code"))
    rows += [_gradients_row(worst, parity_cells), _gpu_row(results),
             _portability_row(portability), _community_row(), _api_row(per, tr)]
    speed, verdict = _speed(verdicts)
    rows.append(_row("speed", speed["PyTorch"], speed["Keras 3"], "#verdicts", "verdicts",
                     verdict))
    rows.append(_parameters_row(cells))
    return rows


def _parameters_row(cells: list[Cell]) -> dict:
    """From a sweep over model size (`twinbench sweep --vary width=...`): each stack's
    exponent of training time per sample against the parameter count, and where the
    fastest stack changes. Supported when every fitted exponent's CI lies above 0,
    refuted when one lies below; not measured without a size sweep."""
    from twinbench.analysis.scaling import scaling_map

    maps = [(sw, m) for sw in scaling_map(cells) if sw.axis == "parameters"
            for m in sw.maps if m.cost.name == "train"]
    if not maps:
        text = "not measured in this run (`twinbench sweep --vary width=...`)"
        return _row("parameters", text, text, "#verdicts", "verdicts", NOT_MEASURED)
    per: dict[str, list[str]] = {fw: [] for fw in FRAMEWORKS.values()}
    cis = []
    for sw, m in maps:
        for stack, fit in m.fits.items():
            if fit is None or framework_of(stack) is None:
                continue
            ci = f" [{fit.ci95[0]:.2f}, {fit.ci95[1]:.2f}]" if fit.ci95 else " (no CI)"
            per[framework_of(stack)].append(f"{stack} {fit.exponent:.2f}{ci}")
            cis.append(fit.ci95)
    summary = "; ".join(m.summary for _, m in maps)
    verdict = (REFUTED if any(c and c[1] < 0 for c in cis) else
               SUPPORTED if cis and all(c and c[0] > 0 for c in cis) else NOT_MEASURED)
    return _row("parameters",
                "training time per sample ∝ params^exponent: " + (", ".join(
                    per["PyTorch"]) or "-") + f". {summary}",
                "training time per sample ∝ params^exponent: " + (", ".join(
                    per["Keras 3"]) or "-") + f". {summary}",
                "#scaling-0", "scaling sections", verdict)  # report.scaling's first


def _gradients_row(worst: float | None, parity_cells: list[Cell]) -> dict:
    """'Keras needs manual gradients' is refuted by the twin's fit code (no gradient line)
    and by Keras twins whose gradients matched torch autograd's."""
    keras_ok = [c for c in parity_cells if framework_of(c.stack) == "Keras 3"
                and c.parity.get("pass")]
    grad = (f"worst gradient relative error across twins {worst:.1e} (tolerance 1e-4)"
            if worst is not None else "not probed in this run")
    keras = (f"automatic: fit() differentiates with the backend's autodiff (TensorFlow, JAX "
             f"or torch); the twin's fit code has no gradient line (training code); "
             f"{len(keras_ok)} Keras twins' gradients matched torch autograd's: {grad}")
    return _row("gradients", f"automatic: loss.backward(); {grad}", keras,
                "#code-training", "training code and parity",
                REFUTED if keras_ok else NOT_MEASURED)


def _gpu_row(results: Results | None) -> dict:
    device = (results.config.get("device") if results else None) or "cpu"
    cpu = (results.environment.get("cpu_model") if results else None) or "unknown CPU"
    gpu = (f"not measured in this run: it ran on the CPU ({cpu})" if device == "cpu" else
           f"ran on {device}: see the speed verdicts (one device; no multi-GPU run)")
    return _row("GPU", gpu, gpu, "#environment", "environment", NOT_MEASURED)


def _portability_row(portability: dict[tuple, list[dict]]) -> dict:
    """The article ties Keras to JavaScript and Java and PyTorch to Python: refuted when a
    PyTorch twin reloaded and matched in another language; supported when Keras twins did
    in JavaScript and Java and PyTorch twins, checked there, did not."""
    torch, keras = _portability_text(portability)
    reached = {fw: _languages_ok(portability, fw) for fw in FRAMEWORKS.values()}
    checked = {fw: _languages_checked(portability, fw) for fw in FRAMEWORKS.values()}
    if reached["PyTorch"] - {"Python"}:
        verdict = REFUTED
    elif {"JavaScript", "Java"} <= reached["Keras 3"] and checked["PyTorch"] - {"Python"}:
        verdict = SUPPORTED
    else:
        verdict = NOT_MEASURED
    return _row("portability", torch, keras, "#v-portability", "portability verdict", verdict)


def _entries_of(portability: dict[tuple, list[dict]], fw: str) -> list[dict]:
    return [e for k, v in portability.items() if framework_of(k[3]) == fw for e in v]


def _lang(e: dict) -> str:
    return str(e.get("language") or language(str(e.get("runtime"))))


def _languages_ok(portability: dict[tuple, list[dict]], fw: str) -> set[str]:
    return {_lang(e) for e in _entries_of(portability, fw) if e.get("status") == "ok"}


def _languages_checked(portability: dict[tuple, list[dict]], fw: str) -> set[str]:
    return {_lang(e) for e in _entries_of(portability, fw) if e.get("status") != "skipped"}


def _languages_text(es: list[dict]) -> str:
    """Per language: how many (format, runtime) entries matched, in which runtimes; or why
    the language was not checked."""
    parts = []
    for lang in LANGUAGES:
        mine = [e for e in es if _lang(e) == lang]
        ran = [e for e in mine if e.get("status") != "skipped"]
        if ran:
            ok = sum(e.get("status") == "ok" for e in ran)
            runtimes = ", ".join(sorted({str(e.get("runtime")) for e in ran}))
            parts.append(f"{lang} {ok} of {len(ran)} matched ({runtimes})")
        elif mine:
            why = str(mine[0].get("reason") or "not installed")
            parts.append(f"{lang} not checked ({mine[0].get('runtime')} skipped: "
                         f"{why[:120]})")
        else:
            parts.append(f"{lang} not checked (no runtime for its formats)")
    return "languages checked: " + "; ".join(parts)


def _community_row() -> dict:
    text = ("not measurable offline: contributors, downloads, questions answered and issue "
            "response times need the network; measured offline: only the versions installed "
            "here (environment)")
    return _row("community", text, text, "#environment", "environment", NOT_MEASURED)


def _api_row(per: dict[str, str], tr: dict[str, dict]) -> dict:
    """Judged on what can be counted: the training code the claim is about."""
    t, k = tr.get("PyTorch"), tr.get("Keras 3")
    if not (t and k):
        return _row("API", "-", "-", "#code", "twins side by side", NOT_MEASURED)
    verdict = SUPPORTED if k["code_lines"] < t["code_lines"] else REFUTED
    return _row("API", f"training loop: {t['code_lines']} code lines; model code lines: "
                       f"{per['PyTorch']}",
                f"fit-based training: {k['code_lines']} code lines; model code lines: "
                f"{per['Keras 3']}", "#code-training", "training code", verdict)


def _train_text(t: dict | None, style: str, cells: list[Cell], fw: str) -> str:
    accs = [f"{c.stack} {c.metrics['accuracy']:.3f} ({c.task})" for c in cells
            if c.status == "ok" and framework_of(c.stack) == fw and c.repeat == 0
            and isinstance(c.metrics.get("accuracy"), (int, float))]
    code = f"{style}, {t['code_lines']} code lines ({t['name']})" if t else style
    return f"{code}; test accuracy reached: {', '.join(accs) or 'not measured'}"


def _portability_text(portability: dict[tuple, list[dict]]) -> tuple[str, str]:
    if not portability:
        return ("not measured in this run (`twinbench export`)",) * 2
    out = {}
    for fw in FRAMEWORKS.values():
        es = _entries_of(portability, fw)
        ran = [e for e in es if e.get("status") != "skipped"]
        ok = sorted({e.get("format", "?") for e in ran if e.get("status") == "ok"})
        out[fw] = (f"{sum(e.get('status') == 'ok' for e in ran)} of {len(ran)} reloads "
                   f"matched; formats: {', '.join(ok) or 'none'}; {_languages_text(es)}")
    return out["PyTorch"], out["Keras 3"]
