"""`textcnn` (Kim 2014): Embedding -> parallel Conv1D of widths 3, 4 and 5 (ReLU) ->
global max pooling over valid positions -> concat -> Dropout -> Dense.

Masking: a conv output position is valid if its window ends inside the text, or is the
first position of a text shorter than the window. Invalid positions are zeroed before the
max; after the ReLU every value is >= 0, so this is exactly the max over valid positions,
and appending padding never changes the output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from twinbench.models.spec_base import SpecBase, scaled, vary_fields, text_spec_for
from twinbench.variants import number

# Knobs a sweep may vary (`textcnn[width=0.5]`), each computed into the spec.
KNOBS = {"width": "multiplies the embedding and each width's filters (64, 64 at width 1)"}
KIND = "text"
PROBE_TASK = "text"


@dataclass(frozen=True)
class TextCNNSpec(SpecBase):
    vocab: int = 2000
    length: int = 32
    classes: int = 2
    embed: int = 64
    filters: int = 64
    widths: tuple[int, ...] = (3, 4, 5)
    dropout: float = 0.5

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        shapes = {"embedding/embeddings": ((self.vocab, self.embed), "embedding_uniform")}
        for w in self.widths:
            shapes[f"conv{w}/kernel"] = ((w, self.embed, self.filters), "glorot_uniform")
            shapes[f"conv{w}/bias"] = ((self.filters,), "zeros")
        shapes["dense/kernel"] = ((len(self.widths) * self.filters, self.classes),
                                  "glorot_uniform")
        shapes["dense/bias"] = ((self.classes,), "zeros")
        return shapes


    def forward_flops(self) -> int:
        """FLOPs of one full-length sample (2 per multiply-add): a valid 1-D conv per
        width over the embedded sequence, then the dense layer."""
        convs = sum(2 * (self.length - w + 1) * w * self.embed * self.filters
                    for w in self.widths)
        return convs + 2 * len(self.widths) * self.filters * self.classes


def spec_for(data) -> TextCNNSpec:
    return text_spec_for(TextCNNSpec, data)


def vary(spec: TextCNNSpec, knobs: dict[str, str]) -> TextCNNSpec:
    """The spec with a sweep point's knobs applied (KNOBS)."""
    def one(s: TextCNNSpec, key: str, value: str) -> TextCNNSpec:
        w = number("textcnn", key, value)
        return dataclasses.replace(s, embed=scaled(TextCNNSpec.embed, w),
                                   filters=scaled(TextCNNSpec.filters, w))

    return vary_fields(spec, knobs, KNOBS, one)
