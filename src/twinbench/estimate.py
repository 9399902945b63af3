"""How long a plan will take, said before it starts. Per cell: the median wall time of the
same cell in this machine's history (task, data set, model, stack, phase, epochs, batch
size and threads all equal), else the figure measured for its stack on the reference
machine, scaled by its epochs. Framework-free."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from twinbench import variants
from twinbench.models import families, spec_module
from twinbench.plan import Plan
from twinbench.results import CellKey
from twinbench.store.db import Store

# Seconds per cell on the 2-core reference machine, from one `make run` (the quick suite
# with its [settings]: digits/cnn 10 epochs, synthetic-sentiment/bilstm 3 epochs, 1 repeat,
# run 20261130-041734-c1ac, 324 s; scripts/reference_figures.py prints these from its
# folder): (phase, stack, kind) -> (fixed seconds, seconds per epoch). Fixed: process
# start, import, build, latency, b256 and LoadGen; per epoch: one epoch's training and
# evaluation (metrics.epochs). A parity probe is fixed: the probe phase took 24 s for 12
# probes, two at a time (2.0 s a probe).
REFERENCE_SOURCE = "make run (quick suite, 1 repeat) on the 2-core machine, 2026-11-30"
REFERENCE: dict[tuple[str, str, str], tuple[float, float]] = {
    **{("probe", s, k): (2.0, 0.0) for s in ("torch", "torch-compile", "keras-tensorflow",
                                             "keras-tensorflow-xla", "keras-jax",
                                             "keras-torch") for k in ("image", "text")},
    ("full", "torch", "image"): (6.5, 0.40),
    ("full", "torch-compile", "image"): (7.4, 0.82),
    ("full", "keras-tensorflow", "image"): (10.6, 0.49),
    ("full", "keras-tensorflow-xla", "image"): (11.7, 1.84),
    ("full", "keras-jax", "image"): (9.0, 0.84),
    ("full", "keras-torch", "image"): (26.4, 0.71),
    ("full", "torch", "text"): (8.1, 1.35),
    ("full", "torch-compile", "text"): (9.8, 2.07),
    ("full", "keras-tensorflow", "text"): (13.2, 3.33),
    ("full", "keras-tensorflow-xla", "text"): (14.3, 3.49),
    ("full", "keras-jax", "text"): (13.2, 1.59),
    ("full", "keras-torch", "text"): (58.3, 7.24),
}
OVERHEAD_S = 9.0  # data, process starts and the report, per run (330 s in all vs 321 s)
UNKNOWN_CELL_S = 30.0  # a guess for a cell with no figure at all: the line says so


@dataclass(frozen=True)
class Estimate:
    seconds: float
    cells: int
    from_history: int  # cells whose figure is this machine's own past median
    unknown: int  # cells with no figure at all (counted at UNKNOWN_CELL_S)

    def text(self) -> str:
        minutes = self.seconds / 60
        when = f"about {minutes:.0f} min" if minutes >= 1.5 else f"about {self.seconds:.0f} s"
        if self.from_history == self.cells:
            basis = f"all {self.cells} cells from this machine's history"
        elif self.from_history:
            basis = (f"{self.from_history} of {self.cells} cells from this machine's history, "
                     f"the rest from the reference machine")
        else:
            basis = "from the reference machine's figures; this machine has no history yet"
        if self.unknown:  # a guess, and said to be one
            basis += (f"; {self.unknown} cell(s) with no figure at all (a user's model, say), "
                      f"counted at {UNKNOWN_CELL_S:.0f} s each")
        return f"estimate {when} ({basis})"


def _history(store: Store | None) -> dict[tuple, list[float]]:
    out: dict[tuple, list[float]] = {}
    for r in (store.cell_walls() if store is not None else []):
        key = (r["phase"], r["task"], r["dataset"], r["model"], r["stack"].partition("#")[0],
               r["epochs"], r["batch_size"], r["threads"])
        out.setdefault(key, []).append(float(r["wall_s"]))
    return out


def _reference(phase: str, key: CellKey, epochs: int) -> float | None:
    """The reference machine's figure for a cell; a sweep point or stack variant
    (`cnn[width=2]`, `torch[channels_last=1]`) is counted at its family's and stack's
    default (a width of 8 costs more: the history of a first sweep corrects it)."""
    family = variants.parts(key.model)[0]
    if family not in families():  # a user's model (--model): no reference figure
        return None
    kind = spec_module(family).KIND
    stack = variants.parts(key.stack.partition("#")[0])[0]
    ref = REFERENCE.get((phase, stack, kind))
    if ref is None:
        return None
    fixed, per_epoch = ref
    return fixed + per_epoch * epochs  # a probe has no epochs (per_epoch 0)


def estimate(p: Plan, store: Store | None, epochs_of, batch_of) -> Estimate:
    """`epochs_of(task)` and `batch_of(task)`: the epochs and batch size a task's cells
    run with (the plan's config over the task's defaults)."""
    hist = _history(store)
    total, known, unknown = OVERHEAD_S, 0, 0
    cells = [("probe", k) for k in p.probe_cells()] + [("full", k) for k in p.cells]
    for phase, k in cells:
        e = epochs_of(k.task) if phase == "full" else None
        past = hist.get((phase, k.task, k.dataset, k.model, k.stack.partition("#")[0],
                         e, batch_of(k.task) if phase == "full" else None,
                         p.config.threads if phase == "full" else None))
        if phase == "probe":  # a probe's figure does not depend on epochs or batch
            past = past or _probe_history(hist, k)
        if past:
            total, known = total + statistics.median(past), known + 1
            continue
        ref = _reference(phase, k, e or 1)
        unknown += ref is None
        total += ref if ref is not None else UNKNOWN_CELL_S
    return Estimate(total, len(cells), known, unknown)


def _probe_history(hist: dict[tuple, list[float]], k: CellKey) -> list[float]:
    return [w for key, ws in hist.items() if key[0] == "probe" and key[1:5] ==
            (k.task, k.dataset, k.model, k.stack.partition("#")[0]) for w in ws]


def plan_line(p: Plan, store: Store | None) -> str:
    """The line every run prints before it starts: what it will run, how long that should
    take, and which flags narrow it."""
    from twinbench.plan import task_info

    cfg = p.config
    tasks = list(dict.fromkeys(k.task for k in p.cells))
    stacks = list(dict.fromkeys(k.stack for k in p.cells))
    est = estimate(p, store,
                   lambda t: cfg.epochs or task_info(cfg, t).epochs,
                   lambda t: cfg.batch_size or task_info(cfg, t).batch_size)
    models = list(dict.fromkeys(k.model for k in p.cells))
    points = f"{len(models)} model point(s) x " if len(models) > len(tasks) else ""
    return (f"plan: {len(p.cells)} timed cells and {len(p.probe_cells())} parity probes "
            f"({len(tasks)} task(s) x {points}{len(stacks)} stack(s) x {cfg.repeats} "
            f"repeat(s)) -> "
            f"{p.out_dir}; {est.text()}; narrow it with --tasks, --stacks, --repeats or "
            f"--epochs")


# Seconds per pipeline measurement on the reference machine, from `twinbench pipelines`
# with its quick plan (2026-11-30: 65 s in all for 4 pipelines alone and 8 feeding a
# stack; the measurements' own wall times averaged 2.1 s and 6.8 s, the rest is data
# preparation and process starts, shared out here).
PIPELINE_S = {"alone": 3.0, "train": 6.6}


def pipelines_line(n_alone: int, n_train: int, out: str, full: bool) -> str:
    seconds = n_alone * PIPELINE_S["alone"] + n_train * PIPELINE_S["train"]
    narrow = ("narrow it with --tasks, --stacks or --pipelines" if full else
              "--full runs every task, pipeline and stack (over 60 processes)")
    return (f"plan: {n_alone + n_train} measurements ({n_alone} pipelines alone, {n_train} "
            f"feeding a stack's training) -> {out}; estimate about {seconds / 60:.1f} min "
            f"(from the reference machine); {narrow}")
