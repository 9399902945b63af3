"""`transformer`: a small post-norm encoder for classification.

    token + position embeddings -> 2 x [multi-head self-attention, residual, LayerNorm,
    feed-forward (ReLU), residual, LayerNorm] -> masked mean pooling -> Dense

Padding (id 0) is masked as attention keys in both frameworks (Keras `attention_mask`,
torch `key_padding_mask`) and left out of the mean, so appending padding never changes
the output. LayerNorm epsilon is set explicitly (Keras's default is 1e-3, torch's 1e-5).
torch packs q/k/v into one projection and needs heads * head_dim == dim.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from twinbench.models.spec_base import SpecBase, scaled, vary_fields, text_spec_for
from twinbench.variants import number

# Knobs a sweep may vary (`transformer[width=0.5]`), each computed into the spec.
KNOBS = {"width": "multiplies the model and feed-forward widths (64, 128 at width 1; the model width stays a multiple of the heads)", "blocks": "encoder blocks (2 by default)"}
KIND = "text"
PROBE_TASK = "text"


@dataclass(frozen=True)
class TransformerSpec(SpecBase):
    vocab: int = 2000
    length: int = 32
    classes: int = 2
    dim: int = 64
    heads: int = 2
    ff: int = 128
    blocks: int = 2
    dropout: float = 0.1
    epsilon: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def block_shapes(self, b: str) -> dict[str, tuple[tuple[int, ...], str]]:
        d, h, k = self.dim, self.heads, self.head_dim
        shapes: dict[str, tuple[tuple[int, ...], str]] = {}
        for n in ("query", "key", "value"):
            shapes[f"{b}/attention/{n}/kernel"] = ((d, h, k), "glorot_uniform")
            shapes[f"{b}/attention/{n}/bias"] = ((h, k), "zeros")
        shapes[f"{b}/attention/attention_output/kernel"] = ((h, k, d), "glorot_uniform")
        shapes[f"{b}/attention/attention_output/bias"] = ((d,), "zeros")
        for norm in ("norm1", "norm2"):
            shapes[f"{b}/{norm}/gamma"] = ((d,), "ones")
            shapes[f"{b}/{norm}/beta"] = ((d,), "zeros")
        for dense, (n_in, n_out) in (("ffn1", (d, self.ff)), ("ffn2", (self.ff, d))):
            shapes[f"{b}/{dense}/kernel"] = ((n_in, n_out), "glorot_uniform")
            shapes[f"{b}/{dense}/bias"] = ((n_out,), "zeros")
        return shapes

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        shapes = {"token_embedding/embeddings": ((self.vocab, self.dim), "embedding_uniform"),
                  "position_embedding/embeddings": ((self.length, self.dim),
                                                    "embedding_uniform")}
        for i in range(1, self.blocks + 1):
            shapes.update(self.block_shapes(f"block{i}"))
        shapes["dense/kernel"] = ((self.dim, self.classes), "glorot_uniform")
        shapes["dense/bias"] = ((self.classes,), "zeros")
        return shapes


    def forward_flops(self) -> int:
        """FLOPs of one full-length sample (2 per multiply-add) per block: q/k/v and output
        projections (4 L d^2), scores QK^T and their product with V (2 L^2 d), the
        feed-forward pair (2 L d ff); then the dense head. Softmax, LayerNorm not counted."""
        n, d = self.length, self.dim
        block = 2 * (4 * n * d * d + 2 * n * n * d + 2 * n * d * self.ff)
        return self.blocks * block + 2 * d * self.classes


def spec_for(data) -> TransformerSpec:
    return text_spec_for(TransformerSpec, data)


def vary(spec: TransformerSpec, knobs: dict[str, str]) -> TransformerSpec:
    """The spec with a sweep point's knobs applied (KNOBS)."""
    def one(s: TransformerSpec, key: str, value: str) -> TransformerSpec:
        if key == "blocks":
            return dataclasses.replace(s, blocks=int(number("transformer", key, value, int)))
        w = number("transformer", key, value)
        return dataclasses.replace(s, dim=scaled(TransformerSpec.dim, w, s.heads),
                                   ff=scaled(TransformerSpec.ff, w))

    return vary_fields(spec, knobs, KNOBS, one)
