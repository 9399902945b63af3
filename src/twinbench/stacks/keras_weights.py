"""Canonical weights in and out of a Keras twin: each variable's canonical name is its path
below the model ("stage2_block1/bn1/moving_mean"). Shared by the adapter and the export
of an inference copy."""

from __future__ import annotations

import keras
import numpy as np


def variables_by_name(model: keras.Model) -> dict[str, keras.Variable]:
    """Canonical name -> variable: the variable path without the model's own prefix."""
    return {v.path.split("/", 1)[1]: v for v in model.weights}


def load_canonical(model: keras.Model, weights: dict[str, np.ndarray],
                   names=variables_by_name) -> None:
    """Assign canonical arrays to a model's variables; `names` maps the model's variables
    to canonical names (a user's model names its own: twinbench.byo.twins)."""
    variables = names(model)
    if set(variables) != set(weights):
        raise ValueError(f"weight names differ: model {sorted(variables)} vs {sorted(weights)}")
    for name, var in variables.items():
        if tuple(var.shape) != weights[name].shape:
            raise ValueError(f"{name}: shape {tuple(var.shape)} vs {weights[name].shape}")
        var.assign(weights[name])
