"""`twinbench sweep` and `twinbench tune` as plans of ordinary cells.

A sweep point is a model name with its knobs (`cnn[width=0.5]`, `cnn[train_batch=32]`);
a stack variant is a stack name with its options (`torch[channels_last=1]`). Both are
ordinary cells: verified against the reference twin, each in its own process, stored in
the history, resumed by `twinbench run --resume`, runnable on the Ray executor. The
inference batch axis (`batch`) is measured inside every cell (RunConfig.infer_batches),
so it adds no cells.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from twinbench import variants
from twinbench.errors import TwinbenchError
from twinbench.models import RUN_KNOBS, resolve_models, spec_module
from twinbench.stacks import OPTIONS, STACKS, resolve_stacks

INFER_AXIS = "batch"  # measured in each cell: 1 and 256 always, these besides


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep runs: the model names of its points and the in-cell batch sizes."""

    models: tuple[str, ...]
    infer_batches: tuple[int, ...]


def parse_vary(texts: list[str]) -> dict[str, list[str]]:
    """`--vary width=0.25,0.5,1` (repeatable) -> {"width": ["0.25", "0.5", "1"]}."""
    axes: dict[str, list[str]] = {}
    for text in texts:
        key, eq, values = text.partition("=")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not eq or not key.strip() or not vals:
            raise TwinbenchError(f"--vary {text!r}: expected AXIS=V1,V2,... "
                                 "(e.g. width=0.25,0.5,1)")
        if key.strip() in axes:
            raise TwinbenchError(f"--vary {key.strip()!r} given twice")
        axes[key.strip()] = list(dict.fromkeys(vals))
    return axes


def axes_of(family: str) -> list[str]:
    """The axes a family can be swept on: its spec knobs, the run knobs, `batch`."""
    text = spec_module(family).KIND == "text"
    run = [k for k in RUN_KNOBS if text or k != "length"]  # length: text models only
    return [*getattr(spec_module(family), "KNOBS", {}), *run, INFER_AXIS]


def sweep_plan(models: list[str], axes: dict[str, list[str]]) -> SweepPlan:
    """The cross product of the axes for each model family, as point names."""
    infer = tuple(sorted({int(variants.number("batch", INFER_AXIS, v, int))
                          for v in axes.get(INFER_AXIS, [])}))
    knob_axes = {k: v for k, v in axes.items() if k != INFER_AXIS}
    names: list[str] = []
    try:
        for family in resolve_models(models):
            unknown = [k for k in knob_axes if k not in axes_of(family)]
            if unknown:
                raise TwinbenchError(f"--vary {unknown[0]!r} does not apply to {family}; "
                                     f"valid: {', '.join(axes_of(family))}")
            for combo in itertools.product(*knob_axes.values()):
                names.append(variants.join(family, dict(zip(knob_axes, combo))))
        return SweepPlan(tuple(resolve_models(names)), infer)
    except ValueError as e:
        raise TwinbenchError(str(e)) from None


def parse_stack_options(texts: list[str]) -> dict[str, dict[str, str]]:
    """`--stack-option torch:channels_last=1` (repeatable) -> {"torch": {...}}, each
    checked against the stack's OPTIONS."""
    out: dict[str, dict[str, str]] = {}
    for text in texts:
        stack, colon, rest = text.partition(":")
        key, eq, value = rest.partition("=")
        if not colon or not eq:
            raise TwinbenchError(f"--stack-option {text!r}: expected STACK:OPTION=VALUE "
                                 "(e.g. torch:channels_last=1)")
        out.setdefault(stack.strip(), {})[key.strip()] = value.strip()
    for stack, opts in out.items():
        try:
            resolve_stacks([variants.join(stack, opts)])
        except ValueError as e:
            raise TwinbenchError(f"--stack-option: {e}") from None
    return out


# Options that change nothing on some kinds of model: a text model has no image tensor
# for channels_last to lay out, so tuning it there would time the default twice.
ONLY_FOR_KIND = {"channels_last": "image"}


def tune_stacks(stacks: list[str], kinds: set[str] | None = None) -> list[str]:
    """Each stack with every one of its variants that differs from its default in one
    option (one option at a time: the cells stay few, and a speedup names its cause).
    `kinds`: the kinds of model tuned ("image", "text"); an option that acts on none of
    them is left out."""
    out: list[str] = []
    for name in stacks:
        out.append(name)
        for key, (values, _) in OPTIONS[name].items():
            if kinds is not None and key in ONLY_FOR_KIND and ONLY_FOR_KIND[key] not in kinds:
                continue
            out += [variants.join(name, {key: v}) for v in values if v != default_option(name, key)]
    return out


def default_option(stack: str, key: str) -> str:
    """The value a stack runs an option at when not given (its plain name)."""
    info = STACKS[stack]
    return {"channels_last": "0", "mode": "default", "steps_per_execution": "1",
            "jit_compile": "1" if info.jit_compile else "0", "onednn": "1"}[key]
