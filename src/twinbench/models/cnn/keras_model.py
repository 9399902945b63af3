"""Keras 3 twin of the small MNIST convnet (see spec.py). Diff me against torch_model.py.

Keras's layout is the canonical one (names are the variables' paths, e.g. "conv1/kernel"),
so loading weights is a plain copy. Keras-side choices that
keep the twins equal:
- The Dense layer outputs logits (no softmax); the loss is computed `from_logits`, as
  torch's `cross_entropy` does.
- Dropout gets an explicit seed instead of `keras.utils.set_random_seed`, which would
  import TensorFlow into every backend's process.
"""

from __future__ import annotations

import keras
from keras import layers

from twinbench.models.cnn.spec import CNNSpec
from twinbench.models.keras_saving import saveable


@saveable(CNNSpec)
class CNN(keras.Model):
    def __init__(self, spec: CNNSpec, seed: int = 0, **kwargs: object) -> None:
        super().__init__(name="cnn", **kwargs)
        self.conv1 = layers.Conv2D(spec.filters[0], spec.kernel, name="conv1")
        self.pool1 = layers.MaxPooling2D(spec.pool, name="pool1")
        self.conv2 = layers.Conv2D(spec.filters[1], spec.kernel, name="conv2")
        self.pool2 = layers.MaxPooling2D(spec.pool, name="pool2")
        self.flatten = layers.Flatten(name="flatten")
        self.dropout = layers.Dropout(spec.dropout, seed=seed, name="dropout")
        self.dense = layers.Dense(spec.classes, name="dense")

    def call(self, x, training=False):  # x: (B, 28, 28, 1)
        x = self.pool1(keras.ops.relu(self.conv1(x)))  # (B, 13, 13, 32)
        x = self.pool2(keras.ops.relu(self.conv2(x)))  # (B, 5, 5, 64)
        x = self.flatten(x)  # (B, 1600), (h, w, c) order
        x = self.dropout(x, training=training)
        return self.dense(x)  # (B, 10) logits


def build(spec: CNNSpec, seed: int) -> CNN:
    model = CNN(spec, seed=seed)
    model(keras.ops.zeros((1, *spec.input_hwc)))  # creates the variables
    return model
