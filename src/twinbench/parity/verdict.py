"""The parity verdict, in the driver: every probed twin against the reference twin's probe
of the same model (`check_parity`), and a timed cell marked `unverified` when its twin's
probe failed (`attach_parity`). Framework-free: probes are numpy files."""

from __future__ import annotations

from pathlib import Path

from twinbench.models import spec_module
from twinbench.parity.compare import QUICK_CHECKS, compare, first_failure, load_probe
from twinbench.results import Cell
from twinbench.stacks import UNCOMPILED
from twinbench.variants import parts

REFERENCE_STACK = "torch"  # parity reference; falls back to the first stack that ran


def _tolerances(c: Cell) -> dict | None:
    """A family's own PARITY_TOLERANCES; a user's model's are in its settings (the cell
    read them from its inspection, see twinbench.byo.record.parity_tolerances)."""
    from twinbench.models import families, family

    if family(c.model) in families():  # a sweep point (cnn[width=2]) has its family's
        return getattr(spec_module(c.model), "PARITY_TOLERANCES", None)
    return (c.settings.get("byo") or {}).get("parity_tolerances")


def check_parity(cells: list[Cell]) -> None:
    """Compare every probed cell with the reference stack's probe of the same model."""
    for key in {(c.task, c.dataset, c.model) for c in cells}:
        ok = [c for c in cells if (c.task, c.dataset, c.model) == key and c.status == "ok"
              and "probe_path" in c.parity]
        if not ok:
            continue
        ref = next((c for c in ok if c.stack == REFERENCE_STACK), ok[0])
        ref_probe = load_probe(Path(ref.parity["probe_path"]))
        for c in ok:
            checks = {"param_count": {"value": abs(c.params - ref.params), "tolerance": 0,
                                      "pass": c.params == ref.params},
                      **compare(load_probe(Path(c.parity["probe_path"])), ref_probe,
                                _tolerances(c))}
            c.parity.update({"reference": ref.stack, "checks": checks,
                             "pass": all(v["pass"] for v in checks.values()),
                             "failure": first_failure(checks)})
        for c in ok:
            _name_a_compiler_fault(c, {o.stack: o for o in ok})


def _name_a_compiler_fault(c: Cell, by_stack: dict[str, Cell]) -> None:
    """A compiled twin that fails where the same twin uncompiled passes: the twin is right
    and the compiler changed its function (e.g. torch 2.13's inductor, measured: zero conv
    gradients for the PyTorch MNIST example's network). Said in the failure."""
    base = parts(c.stack.split("#")[0])[0]  # torch-compile[mode=...] -> torch-compile
    eager = by_stack.get(UNCOMPILED.get(base, ""))
    if c.parity.get("pass", True) or eager is None or not eager.parity.get("pass"):
        return
    c.parity["compiler_fault"] = True
    c.parity["failure"] += (f"; {eager.stack} passes with the same twin, so {c.stack}'s "
                            f"compiler changed the function (not a twin or conversion fault)")


def attach_parity(c: Cell, probes: list[Cell]) -> None:
    """Copy the probe's verdict onto its timed cell; a failed check marks it unverified."""
    key = (c.task, c.dataset, c.model, c.stack)
    probe = next((p for p in probes if (p.task, p.dataset, p.model, p.stack) == key), None)
    if probe is None or c.status != "ok":
        return
    if probe.status != "ok":
        c.parity = {"pass": False, "failure": f"parity probe {probe.status}: {probe.reason}"}
    else:
        full = probe.parity.get("parity_level") == "full"  # a user's model: every check
        c.parity = {**probe.parity, "checks_run": list(probe.parity.get("checks", {}))
                    if full else list(QUICK_CHECKS)}
    if not c.parity.get("pass", False):
        c.status, c.reason = "unverified", c.parity["failure"]
