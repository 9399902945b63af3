"""Weight-layout converters of the `cnn` torch twin: canonical (Keras-layout) arrays
<-> its state_dict. Framework-free (numpy only). They live apart from `torch_model.py`
so that the two twins diff as a lesson: a PyTorch user would not write these; the
parity harness needs them to load one set of weights into both."""

from __future__ import annotations

import numpy as np

from twinbench.models import layout
from twinbench.models.cnn.spec import CNNSpec

def to_torch(spec: CNNSpec, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical (Keras-layout) arrays -> this model's state_dict names and layouts."""
    return {
        "conv1.weight": layout.conv2d_to_torch(weights["conv1/kernel"]),
        "conv1.bias": weights["conv1/bias"],
        "conv2.weight": layout.conv2d_to_torch(weights["conv2/kernel"]),
        "conv2.bias": weights["conv2/bias"],
        "dense.weight": layout.dense_after_flatten_to_torch(
            weights["dense/kernel"], spec.feature_hwc()
        ),
        "dense.bias": weights["dense/bias"],
    }


def from_torch(spec: CNNSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of `to_torch`; also maps parameter gradients, which share the layouts."""
    return {
        "conv1/kernel": layout.conv2d_from_torch(state["conv1.weight"]),
        "conv1/bias": state["conv1.bias"],
        "conv2/kernel": layout.conv2d_from_torch(state["conv2.weight"]),
        "conv2/bias": state["conv2.bias"],
        "dense/kernel": layout.dense_after_flatten_from_torch(
            state["dense.weight"], spec.feature_hwc()
        ),
        "dense/bias": state["dense.bias"],
    }
