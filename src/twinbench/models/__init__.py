"""Model families. Each has a framework-free `spec.py` and twins in `torch_model.py` and
`keras_model.py` with the same class name, layer names and layer order."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

FAMILIES: dict[str, str] = {
    "cnn": "twinbench.models.cnn",
    "bilstm": "twinbench.models.bilstm",
    "textcnn": "twinbench.models.textcnn",
    "transformer": "twinbench.models.transformer",
    "resnet": "twinbench.models.resnet",
}
# Deliberately broken twins that `verify` must catch; offered only to the tests.
FIXTURES: dict[str, str] = {
    "cnn-broken-flatten": "twinbench.models.fixtures.cnn_broken_flatten",
    "resnet-broken-momentum": "twinbench.models.fixtures.resnet_broken_momentum",
}


def families() -> dict[str, str]:
    from twinbench.hooks import testing_hook  # stdlib only: cheap to import

    if testing_hook("TWINBENCH_FIXTURES") == "1":
        return {**FAMILIES, **FIXTURES}
    return FAMILIES


def resolve_models(names: list[str] | None) -> list[str]:
    known = families()
    if not names or names == ["all"]:
        return list(FAMILIES)
    for n in names:
        if n not in known:
            raise ValueError(f"unknown model {n!r}; valid: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(names))


def spec_module(family: str) -> ModuleType:
    """The framework-free spec module of a family (`<package>.spec`)."""
    resolve_models([family])
    return import_module(f"{families()[family]}.spec")


def twin_module(family: str, framework: str) -> ModuleType:
    """The twin of a family for `framework` in {"torch", "keras"}; imports that framework."""
    resolve_models([family])
    return import_module(f"{families()[family]}.{framework}_model")
