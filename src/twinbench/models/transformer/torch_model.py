"""PyTorch twin of `transformer` (see spec.py). Diff me against keras_model.py."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from twinbench.data.text import PAD
from twinbench.models import layout
from twinbench.models.transformer.spec import TransformerSpec


class TransformerBlock(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(spec.dim, spec.heads, batch_first=True)
        self.norm1 = nn.LayerNorm(spec.dim, eps=spec.epsilon)
        self.ffn1 = nn.Linear(spec.dim, spec.ff)
        self.ffn2 = nn.Linear(spec.ff, spec.dim)
        self.norm2 = nn.LayerNorm(spec.dim, eps=spec.epsilon)
        self.dropout = nn.Dropout(spec.dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:  # x: (B, L, 64)
        a, _ = self.attention(x, x, x, key_padding_mask=pad, need_weights=False)  # True: pad
        x = self.norm1(x + self.dropout(a))
        f = self.ffn2(F.relu(self.ffn1(x)))  # (B, L, 128) -> (B, L, 64)
        return self.norm2(x + self.dropout(f))


class Transformer(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(spec.vocab, spec.dim)
        self.position_embedding = nn.Embedding(spec.length, spec.dim)
        self.blocks = nn.ModuleList(TransformerBlock(spec) for _ in range(spec.blocks))
        self.dense = nn.Linear(spec.dim, spec.classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # ids: (B, L) int64
        pad = ids == PAD  # (B, L)
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions)[None]  # (B, L, 64)
        for block in self.blocks:
            x = block(x, pad)
        keep = (~pad).to(x.dtype)[..., None]  # (B, L, 1)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)  # masked mean: (B, 64)
        return self.dense(pooled)  # (B, classes) logits


def build(spec: TransformerSpec, seed: int) -> Transformer:
    return Transformer(spec)


SIMPLE = {"ffn1/kernel": "ffn1.weight", "ffn1/bias": "ffn1.bias", "ffn2/kernel": "ffn2.weight",
          "ffn2/bias": "ffn2.bias", "norm1/gamma": "norm1.weight", "norm1/beta": "norm1.bias",
          "norm2/gamma": "norm2.weight", "norm2/beta": "norm2.bias"}


def _t(name: str, v: np.ndarray) -> np.ndarray:
    return layout.dense_to_torch(v) if name.endswith("kernel") else v


def to_torch(spec: TransformerSpec, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = {"token_embedding.weight": w["token_embedding/embeddings"],
             "position_embedding.weight": w["position_embedding/embeddings"],
             "dense.weight": layout.dense_to_torch(w["dense/kernel"]),
             "dense.bias": w["dense/bias"]}
    for i in range(spec.blocks):
        b, t = f"block{i + 1}", f"blocks.{i}"
        mha = {k[len(b) + 11:]: v for k, v in w.items() if k.startswith(f"{b}/attention/")}
        state.update({f"{t}.attention.{k}": v for k, v in layout.mha_to_torch(mha).items()})
        state.update({f"{t}.{tk}": _t(ck, w[f"{b}/{ck}"]) for ck, tk in SIMPLE.items()})
    return state


def from_torch(spec: TransformerSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    w = {"token_embedding/embeddings": state["token_embedding.weight"],
         "position_embedding/embeddings": state["position_embedding.weight"],
         "dense/kernel": layout.dense_from_torch(state["dense.weight"]),
         "dense/bias": state["dense.bias"]}
    for i in range(spec.blocks):
        b, t = f"block{i + 1}", f"blocks.{i}"
        mha = {k[len(t) + 11:]: v for k, v in state.items() if k.startswith(f"{t}.attention.")}
        w.update({f"{b}/attention/{k}": v
                  for k, v in layout.mha_from_torch(mha, spec.heads).items()})
        w.update({f"{b}/{ck}": _t(ck, state[f"{t}.{tk}"]) for ck, tk in SIMPLE.items()})
    return w
