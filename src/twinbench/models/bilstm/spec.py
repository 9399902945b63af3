"""`bilstm`: Embedding -> bidirectional LSTM (last valid state of each direction) -> Dense.

Padding (id 0) is masked: Keras with `mask_zero=True`, PyTorch by packing the sequence
with its lengths, so a padded step never updates the state in either direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from twinbench.models.spec_base import SpecBase, text_spec_for

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


def spec_for(data) -> BiLSTMSpec:
    return text_spec_for(BiLSTMSpec, data)
