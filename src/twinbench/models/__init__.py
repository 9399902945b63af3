"""Model families. Each has a framework-free `spec.py` and twins in `torch_model.py` and
`keras_model.py` with the same class name, layer names and layer order."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

FAMILIES: tuple[str, ...] = ("cnn",)


def spec_module(family: str) -> ModuleType:
    """The framework-free spec module of a family (`twinbench.models.<family>.spec`)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model {family!r}; valid: {', '.join(FAMILIES)}")
    return import_module(f"twinbench.models.{family}.spec")


def twin_module(family: str, framework: str) -> ModuleType:
    """The twin of a family for `framework` in {"torch", "keras"}; imports that framework."""
    spec_module(family)
    return import_module(f"twinbench.models.{family}.{framework}_model")
