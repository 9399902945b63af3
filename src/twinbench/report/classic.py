"""The classic "PyTorch vs Keras" comparison table, rebuilt from this run's evidence: one row
per aspect, each cell a statement backed by a number from the run and a link to it."""

from __future__ import annotations

from twinbench.report.verdicts import Verdict
from twinbench.results import Cell, Results
from twinbench.stacks import stack_info

FRAMEWORKS = {"torch": "PyTorch", "keras": "Keras 3"}


def framework_of(stack: str) -> str | None:
    try:
        return FRAMEWORKS[stack_info(stack).framework]
    except KeyError:  # a stack this version does not know (a foreign results.json)
        return None


def _parity_evidence(parity_cells: list[Cell]) -> tuple[int, int, float | None]:
    """(twins that passed, twins checked, worst gradient relative error)."""
    checked = [c for c in parity_cells if "pass" in c.parity]
    worst = [c.parity.get("checks", {}).get("grad_max_rel", {}).get("value") for c in checked]
    worst = [w for w in worst if isinstance(w, (int, float))]
    return sum(bool(c.parity["pass"]) for c in checked), len(checked), max(worst, default=None)


def _row(aspect: str, torch: str, keras: str, link: str, label: str) -> dict:
    return {"aspect": aspect, "PyTorch": torch, "Keras 3": keras, "link": link,
            "link_label": label}


def _speed(verdicts: list[Verdict]) -> dict[str, str]:
    """Where a stack of each framework won a speed verdict (significantly), and how many
    comparisons named no winner."""
    wins: dict[str, list[str]] = {"PyTorch": [], "Keras 3": []}
    ties, total = 0, 0
    for v in (v for v in verdicts if v.anchor in ("v-training", "v-realtime")):
        for it in (i for i in v.items if i.test is not None):
            total += 1
            fw = framework_of(it.winner) if it.winner else None
            if fw:
                wins[fw].append(f"{v.scenario} on {it.scope} ({it.winner})")
            else:
                ties += 1
    tail = f"; no clear winner in {ties} of {total} speed comparisons" if ties else ""
    return {fw: (f"fastest in {', '.join(w)}" if w else "fastest nowhere") + tail
            for fw, w in wins.items()}


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
                 "#parity", "parity table")]
    per = {fw: ", ".join(f"{t['family']} {s['model_lines']}" for t in twins if "sides" in t
                         for s in t["sides"] if s["framework"] == fw) or "-"
           for fw in FRAMEWORKS.values()}
    rows.append(_row("model construction",
                     f"nn.Module subclass; model code lines: {per['PyTorch']}",
                     f"keras.Model subclass; model code lines: {per['Keras 3']}",
                     "#code", "twins side by side"))
    tr = {t["framework"]: t for t in training}
    rows.append(_row("training API",
                     _train_text(tr.get("PyTorch"), "explicit loop", cells, "PyTorch"),
                     _train_text(tr.get("Keras 3"), "compile + fit", cells, "Keras 3"),
                     "#code-training", "training code"))
    grad = (f"worst gradient relative error across twins {worst:.1e} (tolerance 1e-4)"
            if worst is not None else "not probed in this run")
    rows.append(_row("gradients", f"automatic: loss.backward(); {grad}",
                     f"automatic inside fit (the backend's autodiff); no manual gradients; "
                     f"{grad}", "#parity", "parity table"))
    device = (results.config.get("device") if results else None) or "cpu"
    cpu = (results.environment.get("cpu_model") if results else None) or "unknown CPU"
    gpu = (f"not measured in this run: it ran on the CPU ({cpu})" if device == "cpu"
           else f"measured on {device}: see the speed verdicts")
    rows.append(_row("GPU", gpu, gpu, "#environment", "environment"))
    rows.append(_row("portability", *_portability_text(portability), "#v-portability",
                     "portability verdict"))
    speed = _speed(verdicts)
    rows.append(_row("speed", speed["PyTorch"], speed["Keras 3"], "#verdicts", "verdicts"))
    return rows


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
        es = [e for k, v in portability.items() if framework_of(k[3]) == fw for e in v]
        ok = sorted({e.get("format", "?") for e in es if e.get("status") == "ok"})
        out[fw] = (f"{sum(e.get('status') == 'ok' for e in es)} of {len(es)} exports reloaded "
                   f"and matched; formats: {', '.join(ok) or 'none'}")
    return out["PyTorch"], out["Keras 3"]

