"""PyTorch twin of `textcnn` (see spec.py). Diff me against keras_model.py.

torch's Conv1d works on (B, C, L) where Keras's Conv1D works on (B, L, C): the embedded
batch is transposed once, and kernels are converted (k, in, out) -> (out, in, k).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from twinbench.data.text import PAD
from twinbench.models.textcnn.spec import TextCNNSpec


def masked_max(h: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Max over valid positions of ReLU outputs h: (B, F, P) -> (B, F)."""
    last = torch.clamp(lengths - width + 1, min=1)  # (B,) valid positions per text
    valid = torch.arange(h.shape[2], device=h.device)[None, :] < last[:, None]  # (B, P)
    return (h * valid[:, None, :]).amax(dim=2)


class TextCNN(nn.Module):
    def __init__(self, spec: TextCNNSpec) -> None:
        super().__init__()
        self.widths = spec.widths
        self.embedding = nn.Embedding(spec.vocab, spec.embed)
        self.convs = nn.ModuleDict(
            {f"conv{w}": nn.Conv1d(spec.embed, spec.filters, w) for w in spec.widths})
        self.dropout = nn.Dropout(spec.dropout)
        self.dense = nn.Linear(len(spec.widths) * spec.filters, spec.classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # ids: (B, L) int64
        lengths = (ids != PAD).sum(dim=1)  # (B,)
        x = self.embedding(ids).transpose(1, 2)  # (B, 64, L)
        pooled = [masked_max(F.relu(self.convs[f"conv{w}"](x)), lengths, w)  # (B, 64) each
                  for w in self.widths]
        x = self.dropout(torch.cat(pooled, dim=1))  # (B, 192)
        return self.dense(x)  # (B, classes) logits


def build(spec: TextCNNSpec, seed: int) -> TextCNN:
    return TextCNN(spec)
