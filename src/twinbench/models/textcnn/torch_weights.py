"""Weight-layout converters of the `textcnn` torch twin: canonical (Keras-layout) arrays
<-> its state_dict. Framework-free (numpy only). They live apart from `torch_model.py`
so that the two twins diff as a lesson: a PyTorch user would not write these; the
parity harness needs them to load one set of weights into both."""

from __future__ import annotations

import numpy as np

from twinbench.models import layout
from twinbench.models.textcnn.spec import TextCNNSpec

def to_torch(spec: TextCNNSpec, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = {"embedding.weight": w["embedding/embeddings"],
             "dense.weight": layout.dense_to_torch(w["dense/kernel"]),
             "dense.bias": w["dense/bias"]}
    for k in spec.widths:
        state[f"convs.conv{k}.weight"] = layout.conv1d_to_torch(w[f"conv{k}/kernel"])
        state[f"convs.conv{k}.bias"] = w[f"conv{k}/bias"]
    return state


def from_torch(spec: TextCNNSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    w = {"embedding/embeddings": state["embedding.weight"],
         "dense/kernel": layout.dense_from_torch(state["dense.weight"]),
         "dense/bias": state["dense.bias"]}
    for k in spec.widths:
        w[f"conv{k}/kernel"] = layout.conv1d_from_torch(state[f"convs.conv{k}.weight"])
        w[f"conv{k}/bias"] = state[f"convs.conv{k}.bias"]
    return w
