"""`bilstm`: Embedding -> bidirectional LSTM (last valid state of each direction) -> Dense.

Padding (id 0) is masked: Keras with `mask_zero=True`, PyTorch by packing the sequence
with its lengths, so a padded step never updates the state in either direction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from twinbench.models.spec_base import SpecBase, scaled, vary_fields, text_spec_for
from twinbench.variants import number

# Knobs a sweep may vary (`bilstm[width=0.5]`), each computed into the spec.
KNOBS = {"width": "multiplies the embedding and the LSTM units (32, 32 at width 1)"}
KIND = "text"
PROBE_TASK = "text"
DIRECTIONS = ("forward_lstm", "backward_lstm")


@dataclass(frozen=True)
class BiLSTMSpec(SpecBase):
    vocab: int = 2000
    length: int = 32
    classes: int = 2
    embed: int = 32
    units: int = 32

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        gates = 4 * self.units  # (i, f, c, o)
        shapes = {"embedding/embeddings": ((self.vocab, self.embed), "embedding_uniform")}
        for d in DIRECTIONS:
            cell = f"bilstm/{d}/lstm_cell"
            shapes[f"{cell}/kernel"] = ((self.embed, gates), "glorot_uniform")
            shapes[f"{cell}/recurrent_kernel"] = ((self.units, gates), "orthogonal")
            shapes[f"{cell}/bias"] = ((gates,), "lstm_bias")
        shapes["dense/kernel"] = ((2 * self.units, self.classes), "glorot_uniform")
        shapes["dense/bias"] = ((self.classes,), "zeros")
        return shapes


    def forward_flops(self, length: float | None = None) -> float:
        """FLOPs of one sample of `length` valid tokens (default: full length), 2 per
        multiply-add: each direction runs one input and one recurrent projection to the 4
        gates per valid token. The twins skip padded steps, so cost follows the length."""
        gates = 4 * self.units
        per_step = 2 * self.embed * gates + 2 * self.units * gates
        steps = self.length if length is None else length
        return len(DIRECTIONS) * steps * per_step + 2 * 2 * self.units * self.classes

    def data_forward_flops(self, x) -> float:  # x: (N, L) ids
        from twinbench.data.text import lengths

        return self.forward_flops(float(lengths(x).mean()))


def spec_for(data) -> BiLSTMSpec:
    return text_spec_for(BiLSTMSpec, data)


def vary(spec: BiLSTMSpec, knobs: dict[str, str]) -> BiLSTMSpec:
    """The spec with a sweep point's knobs applied (KNOBS)."""
    def one(s: BiLSTMSpec, key: str, value: str) -> BiLSTMSpec:
        w = number("bilstm", key, value)
        return dataclasses.replace(s, embed=scaled(BiLSTMSpec.embed, w),
                                   units=scaled(BiLSTMSpec.units, w))

    return vary_fields(spec, knobs, KNOBS, one)
