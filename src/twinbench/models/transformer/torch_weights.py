"""Weight-layout converters of the `transformer` torch twin: canonical (Keras-layout) arrays
<-> its state_dict. Framework-free (numpy only). They live apart from `torch_model.py`
so that the two twins diff as a lesson: a PyTorch user would not write these; the
parity harness needs them to load one set of weights into both."""

from __future__ import annotations

import numpy as np

from twinbench.models import layout
from twinbench.models.transformer.spec import TransformerSpec

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
