"""PyTorch twin of `bilstm` (see spec.py). Diff me against keras_model.py.

- torch's LSTM has two bias vectors per direction, Keras's one: the hidden-side bias is
  held at zero and frozen (`freeze_second_bias`), so both train one bias.
- Masking: the batch is packed with its lengths; `h_n` then holds each direction's state
  at the last valid token (backward: at the first token), as Keras's masked LSTM returns.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from twinbench.data.text import PAD
from twinbench.models.bilstm.spec import BiLSTMSpec
from twinbench.models.torch_layers import freeze_second_bias

class BiLSTM(nn.Module):
    def __init__(self, spec: BiLSTMSpec) -> None:
        super().__init__()
        self.embedding = nn.Embedding(spec.vocab, spec.embed)
        self.bilstm = nn.LSTM(spec.embed, spec.units, batch_first=True, bidirectional=True)
        freeze_second_bias(self.bilstm)
        self.dense = nn.Linear(2 * spec.units, spec.classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # ids: (B, L) int64
        lengths = (ids != PAD).sum(dim=1)  # (B,)
        x = self.embedding(ids)  # (B, L, 32)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.bilstm(packed)  # h: (2, B, 32), forward then backward
        return self.dense(torch.cat([h[0], h[1]], dim=1))  # (B, classes) logits


def build(spec: BiLSTMSpec, seed: int) -> BiLSTM:
    return BiLSTM(spec)
