"""PyTorch twin of `bilstm` (see spec.py). Diff me against keras_model.py.

- torch's LSTM has two bias vectors per direction, Keras's one: the hidden-side bias is
  held at zero and frozen (`freeze_second_bias`), so both train one bias.
- Masking: the batch is packed with its lengths; `h_n` then holds each direction's state
  at the last valid token (backward: at the first token), as Keras's masked LSTM returns.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from twinbench.data.text import PAD
from twinbench.models import layout
from twinbench.models.bilstm.spec import BiLSTMSpec
from twinbench.models.torch_layers import freeze_second_bias

SUFFIX = {"forward_lstm": "l0", "backward_lstm": "l0_reverse"}


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


def to_torch(spec: BiLSTMSpec, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = {"embedding.weight": w["embedding/embeddings"],
             "dense.weight": layout.dense_to_torch(w["dense/kernel"]),
             "dense.bias": w["dense/bias"]}
    for d, sfx in SUFFIX.items():
        cell = f"bilstm/{d}/lstm_cell"
        conv = layout.lstm_to_torch(w[f"{cell}/kernel"], w[f"{cell}/recurrent_kernel"],
                                    w[f"{cell}/bias"])
        state.update({f"bilstm.{k}_{sfx}": v for k, v in conv.items()})
    return state


def from_torch(spec: BiLSTMSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of `to_torch`; also maps gradients (the frozen bias has none)."""
    w = {"embedding/embeddings": state["embedding.weight"],
         "dense/kernel": layout.dense_from_torch(state["dense.weight"]),
         "dense/bias": state["dense.bias"]}
    for d, sfx in SUFFIX.items():
        sub = {k: state[f"bilstm.{k}_{sfx}"] for k in ("weight_ih", "weight_hh", "bias_ih",
                                                         "bias_hh") if f"bilstm.{k}_{sfx}" in state}
        cell = f"bilstm/{d}/lstm_cell"
        w[f"{cell}/kernel"], w[f"{cell}/recurrent_kernel"], w[f"{cell}/bias"] = \
            layout.lstm_from_torch(sub)
    return w
