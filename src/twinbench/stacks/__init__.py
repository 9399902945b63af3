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


def stack_info(name: str) -> StackInfo:
    """The StackInfo of a stack name, an A/A control copy (`torch#2`) included: the copy
    runs exactly as its original, under its own name."""
    base, sep, _ = name.partition("#")
    info = STACKS[base]
    return dataclasses.replace(info, name=name) if sep else info


def resolve_stacks(names: list[str] | None) -> list[str]:
    """Validate stack names (None or "all" means every stack); the error lists valid ones.
    A name given twice is an A/A control: its second occurrence becomes `<name>#2` (third
    `#3`), a separate stack that runs the same code, so the report can show how much one
    stack differs from itself on this machine."""
    if not names or names == ["all"]:
        return list(STACKS)
    unknown = [n for n in names if n not in STACKS]
    if unknown:
        hint = (" (for an A/A control, name the stack twice: torch,torch)"
                if "#" in unknown[0] else "")
        raise ValueError(
            f"unknown stack {unknown[0]!r}; valid: {', '.join(STACKS)}{hint}"
        )
    out: list[str] = []
    for n in names:
        k = sum(o.partition("#")[0] == n for o in out)
        out.append(n if k == 0 else f"{n}#{k + 1}")
    return out
