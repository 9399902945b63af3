"""The stacks a user can name, and whether each is installed.

This module is framework-free: it finds frameworks with `importlib.util.find_spec` and
reads versions from package metadata, so listing stacks imports none of them. The
adapters (`torch_stack`, `keras_stack`) are imported only inside a cell's own process.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
from dataclasses import dataclass

from twinbench import variants


@dataclass(frozen=True)
class StackInfo:
    name: str
    framework: str  # "torch" or "keras": which twin file the stack runs
    backend: str  # the framework that executes: "torch", "tensorflow" or "jax"
    compile_mode: str  # what a step runs as, written for people
    jit_compile: bool | None  # the explicit Keras `jit_compile`; None for plain torch
    torch_compile: bool
    modules: tuple[str, ...]  # importable modules it needs
    extra: str  # `pip install 'twinbench[<extra>]'` installs them
    # A variant's options (`torch[channels_last=1]`), sorted (knob, value) pairs; see OPTIONS.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def base(self) -> str:
        """The stack this one is a variant or A/A copy of: `torch[channels_last=1]#2` ->
        `torch`."""
        return variants.split(self.name.partition("#")[0])[0]

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    @property
    def keras_backend(self) -> str | None:
        return self.backend if self.framework == "keras" else None

    @property
    def foreign_modules(self) -> tuple[str, ...]:
        """Frameworks that must stay out of this stack's process (they would inflate its
        import time and memory). Keras imports jax on every backend unless kept out."""
        return tuple(m for m in ("torch", "tensorflow", "jax", "keras") if m not in self.modules)


STACKS: dict[str, StackInfo] = {
    s.name: s
    for s in (
        StackInfo("torch", "torch", "torch", "eager", None, False, ("torch",), "torch"),
        StackInfo(
            "torch-compile", "torch", "torch",
            "torch.compile (inductor, mode=default)", None, True, ("torch",), "torch",
        ),
        StackInfo(
            "keras-tensorflow", "keras", "tensorflow",
            "tf.function graph, jit_compile=False", False, False,
            ("keras", "tensorflow"), "tensorflow",
        ),
        StackInfo(
            "keras-tensorflow-xla", "keras", "tensorflow",
            "tf.function + XLA, jit_compile=True", True, False,
            ("keras", "tensorflow"), "tensorflow",
        ),
        StackInfo(
            "keras-jax", "keras", "jax", "jax.jit (XLA), jit_compile=True", True, False,
            ("keras", "jax"), "jax",
        ),
        StackInfo(
            "keras-torch", "keras", "torch", "eager, jit_compile=False", False, False,
            ("keras", "torch"), "all",
        ),
    )
}

# A compiled stack and the stack that runs the same twin uncompiled: when the eager one
# passes parity and the compiled one fails, the compiler changed the function.
UNCOMPILED = {"torch-compile": "torch", "keras-tensorflow-xla": "keras-tensorflow"}

DISTRIBUTIONS = {
    "torch": "torch", "tensorflow": "tensorflow-cpu", "jax": "jax", "keras": "keras",
}


def module_version(module: str) -> str | None:
    """Installed version of a framework, from metadata (no import); None if missing."""
    if importlib.util.find_spec(module) is None:
        return None
    for dist in (DISTRIBUTIONS.get(module, module), module):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def missing_modules(info: StackInfo) -> list[str]:
    return [m for m in info.modules if module_version(m) is None]


# Stack options a sweep can vary and a run can fix, per stack: knob -> (allowed values,
# what it does). Each is applied in the cell's process (stacks/torch_stack.py,
# stacks/keras_stack.py, runner.local.cell_env) and recorded in the cell's settings.
_TORCH = {"channels_last": (("0", "1"), "images in channels-last memory format (model and "
                                        "batches)")}
_KERAS = {"steps_per_execution": (("1", "8", "32"), "training steps per compiled call"),
          "jit_compile": (("0", "1"), "Keras jit_compile (XLA) off or on")}
_TF = {"onednn": (("0", "1"), "TF_ENABLE_ONEDNN_OPTS, set before TensorFlow is imported")}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")
OPTIONS: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "torch": _TORCH,
    "torch-compile": {**_TORCH, "mode": (COMPILE_MODES, "torch.compile mode")},
    "keras-tensorflow": {**_KERAS, **_TF},
    "keras-tensorflow-xla": {**_KERAS, **_TF},
    "keras-jax": {"steps_per_execution": _KERAS["steps_per_execution"]},
    "keras-torch": {},  # Keras on torch refuses steps_per_execution > 1 (Keras 3)
}


def stack_info(name: str) -> StackInfo:
    """The StackInfo of a stack name: an A/A control copy (`torch#2`) runs exactly as its
    original, under its own name; a variant (`keras-jax[steps_per_execution=8]`) carries
    its options, checked against OPTIONS."""
    plain, sep, _ = name.partition("#")
    base, knobs = variants.split(plain)
    if base not in STACKS:
        raise ValueError(f"unknown stack {base!r}; valid: {', '.join(STACKS)}")
    info = STACKS[base]
    allowed = OPTIONS[base]
    for key, value in knobs.items():
        if key not in allowed:
            raise ValueError(f"stack {base!r} has no option {key!r}; valid: "
                             f"{', '.join(allowed) or 'none'}")
        if value not in allowed[key][0]:
            raise ValueError(f"{base}: {key} takes {', '.join(allowed[key][0])}, not {value!r}")
    if not sep and not knobs:
        return info
    return _with_options(dataclasses.replace(info, name=name), tuple(sorted(knobs.items())))


def _with_options(info: StackInfo, options: tuple[tuple[str, str], ...]) -> StackInfo:
    """The info with its options applied to the fields that describe its compilation."""
    opts = dict(options)
    jit, mode = info.jit_compile, info.compile_mode
    if "jit_compile" in opts:
        jit = opts["jit_compile"] == "1"
        mode = f"{'tf.function + XLA' if jit else 'tf.function graph'}, jit_compile={jit}"
    if "mode" in opts:
        mode = f"torch.compile (inductor, mode={opts['mode']})"
    extra = [f"{k}={v}" for k, v in options if k not in ("jit_compile", "mode")]
    mode = f"{mode}; {', '.join(extra)}" if extra else mode
    return dataclasses.replace(info, options=options, jit_compile=jit, compile_mode=mode)


def with_options(stacks: list[str], options: dict[str, dict[str, str]]) -> list[str]:
    """Stack names with `--stack-option STACK:KNOB=VALUE` applied: `torch` with
    {"torch": {"channels_last": "1"}} becomes `torch[channels_last=1]`."""
    out = []
    for name in stacks:
        plain, sep, copy = name.partition("#")
        base, knobs = variants.split(plain)
        full = variants.join(base, {**knobs, **options.get(base, {})})
        out.append(f"{full}{sep}{copy}")
    return out


def resolve_stacks(names: list[str] | None) -> list[str]:
    """Validate stack names (None or "all" means every stack); the error lists valid ones.
    A name given twice is an A/A control: its second occurrence becomes `<name>#2` (third
    `#3`), a separate stack that runs the same code, so the report can show how much one
    stack differs from itself on this machine."""
    if not names or names == ["all"]:
        return list(STACKS)
    canonical = []
    for n in names:
        if "#" in n:
            raise ValueError(f"unknown stack {n!r}; valid: {', '.join(STACKS)} (for an A/A "
                             "control, name the stack twice: torch,torch)")
        base, knobs = variants.split(n)
        stack_info(n)  # unknown stacks and options fail here, naming the valid ones
        canonical.append(variants.join(base, knobs))
    out: list[str] = []
    for n in canonical:
        k = sum(o.partition("#")[0] == n for o in out)
        out.append(n if k == 0 else f"{n}#{k + 1}")
    return out
