"""Did every stack train the same recipe? Per cell of a run: the learning rate of every
optimizer step (each stack's own record: torch's Stepper, Keras's schedule at each
iteration) and the first steps' training losses, against the reference stack's cell of
the same task and model. Framework-free: reads results.json cells."""

from __future__ import annotations

from typing import NamedTuple

from twinbench.models import families, spec_module
from twinbench.parity.compare import TOLERANCES

REFERENCE = "torch"
LR_TOLERANCE = TOLERANCES["recipe_lr_max_rel"]  # float32 schedule vs float64: 1e-7 apart


def loss_tolerance(model: str) -> float:
    """The first losses' tolerance: the parity one for a recipe's losses, the model
    family's own where it has one (resnet: 5e-2, justified in its spec: 10 steps through
    19 BatchNorm layers in float32), else 1e-3 relative."""
    own = {}
    if model.split("[")[0] in families():
        own = getattr(spec_module(model), "PARITY_TOLERANCES", None) or {}
    return own.get("recipe_loss_max_rel", TOLERANCES["recipe_loss_max_rel"])


class Agreement(NamedTuple):
    task: str
    model: str
    stack: str
    recipe: str
    steps: int  # optimizer steps the stack recorded
    lr_changes: int  # steps at which its learning rate changed
    lr_max_rel: float | None  # worst step against the reference, relative to its peak
    loss_max_rel: float | None  # worst of the first losses against the reference
    losses: int  # first steps compared
    loss_tolerance: float  # the family's parity tolerance for them (`loss_tolerance`)
    ok: bool


def expand(run_lengths: list[list[float]], n: int) -> list[float]:
    """[[first step, value], ...] -> the value of each of n steps."""
    out: list[float] = []
    for i, (start, value) in enumerate(run_lengths):
        end = run_lengths[i + 1][0] if i + 1 < len(run_lengths) else n
        out += [float(value)] * (int(end) - int(start))
    return out


def agreement(cells: list[dict]) -> list[Agreement]:
    rows = []
    traced = [c for c in cells if (c.get("metrics") or {}).get("recipe_trace")]
    for c in traced:
        ref = next((r for r in traced if (r["task"], r["model"]) == (c["task"], c["model"])
                    and r["stack"] == REFERENCE), traced[0])
        mine, theirs = c["metrics"]["recipe_trace"], ref["metrics"]["recipe_trace"]
        a, b = (expand(t["learning_rate"], t["count"]) for t in (mine, theirs))
        lr = (max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)
              if len(a) == len(b) and b else None)
        la, lb = mine["first_losses"], theirs["first_losses"]
        n = min(len(la), len(lb))
        loss = max(abs(x - y) / abs(y) for x, y in zip(la[:n], lb[:n])) if n else None
        tol = loss_tolerance(c["model"])
        ok = lr is not None and lr <= LR_TOLERANCE and loss is not None and loss <= tol
        rows.append(Agreement(c["task"], c["model"], c["stack"],
                              (c.get("settings") or {}).get("recipe", {}).get("name", "?"),
                              mine["count"], len(mine["learning_rate"]) - 1, lr, loss, n, tol,
                              ok))
    return rows
