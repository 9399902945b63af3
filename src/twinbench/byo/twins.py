"""The cell side of a user's model: a spec and a "family" per framework with the same
interface as a built-in family's module (`build`, `to_torch`, `from_torch`), so the
stacks run it unchanged. Native stacks build the user's own model; the others the
generated twin. Imported in the cell process only (frameworks come in lazily).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from twinbench.byo.graph import Graph
from twinbench.byo.record import ByoRecord, load_record
from twinbench.byo.source import ModelSource, build_model


@dataclass(frozen=True)
class ByoSpec:
    """A spec (as the built-in families' spec.py give) for one user model on one data
    set. `dropout` off builds the twin with every dropout rate at zero (parity steps)."""

    folder: str
    dropout: bool = True

    @cached_property
    def record(self) -> ByoRecord:
        return load_record(Path(self.folder))

    @property
    def head(self) -> str:
        return self.record.head

    @property
    def padding_invariant(self) -> bool:
        """Padding must change nothing only where the model masks it."""
        return self.record.masks_padding

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {n: (tuple(s), "model's own") for n, s, _ in self.record.variables}

    def param_count(self) -> int:
        return sum(int(np.prod(s)) for _, s, t in self.record.variables if t)

    def init_weights(self, seed: int) -> dict[str, np.ndarray]:
        """The initial weights drawn by the inspection for this seed (see byo/inspect.py)."""
        rec = self.record
        if str(seed) not in rec.weights:
            raise RuntimeError(f"no initial weights for seed {seed}; inspected: "
                               f"{', '.join(rec.weights)}")
        with np.load(Path(self.folder) / rec.weights[str(seed)], allow_pickle=False) as z:
            return {n: z[n] for n, _, _ in rec.variables}

    def without_dropout(self) -> "ByoSpec":
        return dataclasses.replace(self, dropout=False)

    def forward_flops(self) -> float:
        return self.record.flops_per_sample

    def data_forward_flops(self, x: np.ndarray) -> float:
        return self.forward_flops()


def _import_twin(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"twinbench_twin_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def family_for(folder: Path, framework: str) -> Any:
    """The family object a stack of `framework` runs; raises when the model has no twin
    for it (the driver skips those cells before they start, see byo/plan.py)."""
    rec = load_record(folder)
    if rec.framework == framework:
        return KerasNative(folder, rec) if framework == "keras" else TorchNative(folder, rec)
    if rec.twin_file is None:
        raise RuntimeError(rec.refusal or "no twin")
    twin = _import_twin(Path(folder) / rec.twin_file)
    return TorchTwin(rec, twin) if framework == "torch" else KerasTwin(rec, twin)


def _graph(rec: ByoRecord) -> Graph | None:
    return Graph.from_json(rec.graph) if rec.graph else None


class _TorchFamily:
    def __init__(self, rec: ByoRecord) -> None:
        self.rec, self.graph = rec, _graph(rec)
        self.hwc = {k: tuple(v) for k, v in rec.hwc.items()}

    def to_torch(self, spec: ByoSpec, weights: dict) -> dict[str, np.ndarray]:
        from twinbench.byo import torch_state

        if self.graph is None:  # refused: the canonical weights are the state_dict
            return dict(weights)
        return torch_state.to_torch(self.graph, self.rec.prefixes, self.hwc, weights)

    def from_torch(self, spec: ByoSpec, state: dict) -> dict[str, np.ndarray]:
        from twinbench.byo import torch_state

        if self.graph is None:
            return {k: v for k, v in state.items() if k in dict.fromkeys(
                n for n, _, _ in self.rec.variables)}
        return torch_state.from_torch(self.graph, self.rec.prefixes, self.hwc, state)


class TorchTwin(_TorchFamily):
    """The generated PyTorch twin of a Keras model."""

    def __init__(self, rec: ByoRecord, module: Any) -> None:
        super().__init__(rec)
        self.module = module

    def build(self, spec: ByoSpec, seed: int) -> Any:
        return no_torch_dropout(self.module.build(), spec.dropout)


class TorchNative(_TorchFamily):
    """The user's own nn.Module. Its LSTMs' second bias is folded into the first and
    frozen (the two only ever add up; Keras has one), so both frameworks train the
    same parameters."""

    def __init__(self, folder: Path, rec: ByoRecord) -> None:
        super().__init__(rec)
        self.src = ModelSource(**rec.source)

    def build(self, spec: ByoSpec, seed: int) -> Any:
        from torch import nn

        from twinbench.models.torch_layers import freeze_second_bias

        model = build_model(self.src)
        for path in self.rec.folded:
            m = model.get_submodule(path)
            if isinstance(m, nn.LSTM):
                freeze_second_bias(m)
        if spec.dropout:
            return model
        return functional_dropout_off(no_torch_dropout(model, False))


def no_torch_dropout(model: Any, keep: bool) -> Any:
    if not keep:
        from torch import nn

        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    return model


def functional_dropout_off(model: Any) -> Any:
    """`F.dropout` calls in a forward() cannot be switched off from outside: the traced
    graph without them (same parameters), for the dropout-free parity steps."""
    from torch import fx
    from torch.nn import functional as F

    gm = fx.symbolic_trace(model)
    calls = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is F.dropout]
    if not calls:
        return model
    for n in calls:
        n.replace_all_uses_with(n.args[0])
        gm.graph.erase_node(n)
    gm.recompile()
    return gm


class _KerasFamily:
    def __init__(self, rec: ByoRecord) -> None:
        self.rec, self.graph = rec, _graph(rec)
        self.names = [n for n, _, _ in rec.variables]

    def build(self, spec: ByoSpec, seed: int) -> Any:
        model = self.make(seed)
        if not spec.dropout:
            no_keras_dropout(model)
        return model


class KerasNative(_KerasFamily):
    """The user's own Keras model, built afresh in this backend's process. Its variables
    are matched to the canonical names by position (layer names differ between builds
    in one process: "dense", "dense_1", ...)."""

    def __init__(self, folder: Path, rec: ByoRecord) -> None:
        super().__init__(rec)
        self.src = ModelSource(**rec.source)

    def make(self, seed: int) -> Any:
        model = build_model(self.src)
        if not model.built:
            model.build((None, *self.rec.input_shape))
        return model

    def variables_by_name(self, model: Any) -> dict[str, Any]:
        if len(model.weights) != len(self.names):
            raise RuntimeError(f"{len(model.weights)} variables, inspected "
                               f"{len(self.names)}")
        return dict(zip(self.names, model.weights))


class KerasTwin(_KerasFamily):
    """The generated Keras twin of a torch module: variables found by layer name."""

    def __init__(self, rec: ByoRecord, module: Any) -> None:
        super().__init__(rec)
        self.module = module

    def make(self, seed: int) -> Any:
        return self.module.build(seed)

    def variables_by_name(self, model: Any) -> dict[str, Any]:
        out = {}
        for n in self.graph.nodes:
            if n.weights:
                out.update(zip(n.weights, model.get_layer(n.name).weights))
        return out


def no_keras_dropout(model: Any) -> None:
    """Every Dropout rate (and MultiHeadAttention's) at zero, nested models included."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
        if isinstance(layer, keras.layers.MultiHeadAttention):
            layer._dropout = 0.0
