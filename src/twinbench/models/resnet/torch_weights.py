"""Weight-layout converters of the `resnet` torch twin: canonical (Keras-layout) arrays
<-> its state_dict. Framework-free (numpy only). They live apart from `torch_model.py`
so that the two twins diff as a lesson: a PyTorch user would not write these; the
parity harness needs them to load one set of weights into both."""

from __future__ import annotations

import numpy as np

from twinbench.models import layout
from twinbench.models.resnet.spec import ResNetSpec

BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
            "moving_variance": "running_var"}


def torch_name(canonical: str) -> str:
    """"stage2_block1/bn1/moving_mean" -> "blocks.stage2_block1.bn1.running_mean"."""
    *layers, var = canonical.split("/")
    layer = ".".join(["blocks", *layers] if len(layers) > 1 else layers)
    return f"{layer}.{'weight' if var == 'kernel' else BN_NAMES.get(var, var)}"


def _convert(canonical: str, a: np.ndarray, to_torch: bool) -> np.ndarray:
    if a.ndim == 4:
        return layout.conv2d_to_torch(a) if to_torch else layout.conv2d_from_torch(a)
    if a.ndim == 2:  # the Dense kernel: after global pooling, no flatten reorder
        return layout.dense_to_torch(a) if to_torch else layout.dense_from_torch(a)
    return a


def to_torch(spec: ResNetSpec, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical (Keras-layout) arrays -> this model's state_dict names and layouts; each
    BatchNorm also gets torch's step counter (unused by KerasBatchNorm)."""
    state = {torch_name(k): _convert(k, v, True) for k, v in weights.items()}
    for k in weights:
        if k.endswith("/moving_mean"):
            state[torch_name(k).replace("running_mean", "num_batches_tracked")] = (
                np.array(0, dtype=np.int64))
    return state


def from_torch(spec: ResNetSpec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of `to_torch` for the names present (gradients have no moving stats)."""
    back = {torch_name(k): k for k in spec.param_shapes()}
    return {back[k]: _convert(back[k], v, False) for k, v in state.items() if k in back}
