"""PyTorch twin of `transformer` (see spec.py). Diff me against keras_model.py."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from twinbench.data.text import PAD
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
