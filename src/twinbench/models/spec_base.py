"""What every family's spec shares: counting, initialising, and a dropout-free copy."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from twinbench.models.init import init_weights

# Variables that are state, not parameters: BatchNorm's moving statistics. Keras counts
# them in count_params() and torch keeps them as buffers; neither trains them.
NON_TRAINABLE = ("moving_mean", "moving_variance")


def trainable(name: str) -> bool:
    """Whether a canonical variable ("layer/variable") is a trained parameter."""
    return not name.endswith(NON_TRAINABLE)


class SpecBase:
    """Mixed into each frozen spec dataclass, which defines `param_shapes()`."""

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        raise NotImplementedError

    def param_count(self) -> int:
        """Trainable parameters (what every stack's `param_count` reports)."""
        return sum(int(np.prod(shape)) for name, (shape, _) in self.param_shapes().items()
                   if trainable(name))

    def forward_flops(self) -> float:
        """Analytic FLOPs of one sample's forward pass (each family defines it)."""
        raise NotImplementedError

    def data_forward_flops(self, x: np.ndarray) -> float:
        """Mean forward FLOPs per sample of the array `x` (length-dependent models
        override this; the others process the full padded input)."""
        return float(self.forward_flops())

    def init_weights(self, seed: int) -> dict[str, np.ndarray]:
        """Canonical initial weights: the spec's Keras-default initialisers, seeded."""
        return init_weights(self.param_shapes(), seed)

    def without_dropout(self) -> Any:
        """The same twin with dropout off, for deterministic parity training steps."""
        if "dropout" in {f.name for f in dataclasses.fields(self)}:
            return dataclasses.replace(self, dropout=0.0)
        return self


def text_spec_for(cls: type, data: Any) -> Any:
    """A text spec for a prepared Dataset: its vocabulary size, length and classes."""
    return cls(vocab=int(data.provenance["vocab_size"]), length=int(data.x_train.shape[1]),
               classes=int(data.classes))


@dataclasses.dataclass(frozen=True)
class DataShape:
    """What a family's `spec_for(data)` reads of a Dataset, for a process that sizes a
    twin without loading the data (a pipeline measurement): one input row's shape, the
    class count and the vocabulary size."""

    x_train: np.ndarray  # (1, *input shape): only its shape is read
    classes: int
    provenance: dict


def scaled(n: int, width: float, multiple: int = 1) -> int:
    """A size times a width multiplier, rounded to the nearest `multiple`, at least one
    multiple (a width of 0.01 keeps one filter, never zero)."""
    return max(multiple, int(round(n * width / multiple)) * multiple)


def vary_fields(spec: Any, knobs: dict[str, str], known: dict[str, str],
                apply: Any) -> Any:
    """`spec` with each knob applied by `apply(spec, knob, value)`; an unknown knob raises
    ValueError naming the family's knobs (`known`: knob -> what it changes)."""
    for key, value in knobs.items():
        if key not in known:
            raise ValueError(f"unknown knob {key!r} for {type(spec).__name__}; valid: "
                             f"{', '.join(known)}")
        spec = apply(spec, key, value)
    return spec
