"""Model families. Each has a framework-free `spec.py` and twins in `torch_model.py` and
`keras_model.py` with the same class name, layer names and layer order."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from twinbench import variants

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


# Knobs of a sweep point that are not the model's: they set the cell's run configuration
# (`cnn[width=2,train_batch=32]`). Every other knob is a spec knob of the family (KNOBS).
RUN_KNOBS = {"train_batch": "the training batch size", "threads": "the cell's CPU threads",
             "length": "tokens per sequence (text: the data is encoded at this length)"}


def resolve_models(names: list[str] | None) -> list[str]:
    """Validate model names: families, or sweep points `family[knob=value,...]` (kept in
    their canonical spelling, knobs sorted)."""
    known = families()
    if not names or names == ["all"]:
        return list(FAMILIES)
    out = []
    for n in names:
        base, knobs = variants.split(n)
        if base not in known:
            raise ValueError(f"unknown model {base!r}; valid: {', '.join(FAMILIES)}")
        if knobs:
            if "length" in knobs and import_module(f"{known[base]}.spec").KIND != "text":
                raise ValueError(f"{n!r}: length is a knob of text models only")
            run_knobs(n)
            spec_knobs = {k: v for k, v in knobs.items() if k not in RUN_KNOBS}
            if spec_knobs:  # a bad width or depth fails here, before anything runs
                sample = import_module(f"{known[base]}.spec")
                sample.vary(_default_spec(sample), spec_knobs)
        out.append(variants.join(base, knobs))
    return list(dict.fromkeys(out))


def _default_spec(module: ModuleType) -> Any:
    """The family's spec at its defaults (its one dataclass named *Spec)."""
    cls = next(v for k, v in vars(module).items() if k.endswith("Spec") and k != "SpecBase"
               and isinstance(v, type) and v.__module__ == module.__name__)
    return cls()


def family(name: str) -> str:
    """The family of a model name: `cnn[width=2]` -> `cnn`."""
    return variants.parts(name)[0]


def run_knobs(name: str) -> dict[str, int]:
    """A sweep point's run knobs (RUN_KNOBS) as integers; {} for a plain family."""
    out = {}
    for key, value in variants.parts(name)[1].items():
        if key in RUN_KNOBS:
            out[key] = int(variants.number(name, key, value, int))
    return out


def spec_knobs(name: str) -> dict[str, str]:
    """A sweep point's knobs that change the model (the family's KNOBS)."""
    return {k: v for k, v in variants.parts(name)[1].items() if k not in RUN_KNOBS}


def spec_module(name: str) -> ModuleType:
    """The framework-free spec module of a family (`<package>.spec`); a sweep point's is
    its family's."""
    base = family(name)
    resolve_models([base])
    return import_module(f"{families()[base]}.spec")


def twin_module(name: str, framework: str) -> ModuleType:
    """The twin of a family for `framework` in {"torch", "keras"}; imports that framework."""
    base = family(name)
    resolve_models([base])
    return import_module(f"{families()[base]}.{framework}_model")


def spec_for(name: str, data: Any) -> Any:
    """The spec of a model name for a prepared data set: the family's `spec_for(data)`
    with the point's spec knobs applied (`cnn[width=2]`: twice the filters)."""
    module = spec_module(name)
    spec = module.spec_for(data)
    knobs = spec_knobs(name)
    return module.vary(spec, knobs) if knobs else spec
