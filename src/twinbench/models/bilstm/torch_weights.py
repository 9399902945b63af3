"""Weight-layout converters of the `bilstm` torch twin: canonical (Keras-layout) arrays
<-> its state_dict. Framework-free (numpy only). They live apart from `torch_model.py`
so that the two twins diff as a lesson: a PyTorch user would not write these; the
parity harness needs them to load one set of weights into both."""

from __future__ import annotations

import numpy as np

from twinbench.models import layout
from twinbench.models.bilstm.spec import BiLSTMSpec

SUFFIX = {"forward_lstm": "l0", "backward_lstm": "l0_reverse"}


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
