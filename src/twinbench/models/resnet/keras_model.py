"""Keras 3 twin of ResNet for CIFAR-10 (see spec.py). Diff me against torch_model.py.

A `Block` layer mirrors the torch twin's `Block` module, so each variable's path below the
model is its canonical name ("stage2_block1/bn1/moving_mean"; torch:
"blocks.stage2_block1.bn1.running_mean"). Keras-side choices that keep the twins equal:
- padding "same" everywhere, as Keras users write it; the torch twin pads stride-2
  convolutions asymmetrically to match (bottom/right only on even sizes).
- BatchNormalization gets the spec's momentum and epsilon explicitly (Keras's defaults,
  0.99 and 1e-3, are not torch's 0.1 and 1e-5 in either convention).
- The shortcut (option A) subsamples with a strided slice and appends zero channels with
  `keras.ops.pad`; the torch twin does the same two steps.
"""

from __future__ import annotations

import keras
from keras import layers

from twinbench.models.resnet.spec import ResNetSpec


def _bn(spec: ResNetSpec, name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=spec.bn_momentum, epsilon=spec.bn_epsilon,
                                     name=name)


def _conv(filters: int, stride: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=name)


class Block(layers.Layer):
    def __init__(self, spec: ResNetSpec, c_in: int, c_out: int, stride: int,
                 name: str) -> None:
        super().__init__(name=name)
        self.stride, self.extra = stride, c_out - c_in
        self.conv1 = _conv(c_out, stride, "conv1")
        self.bn1 = _bn(spec, "bn1")
        self.conv2 = _conv(c_out, 1, "conv2")
        self.bn2 = _bn(spec, "bn2")

    def call(self, x, training=False):  # x: (B, H, W, C_in)
        h = keras.ops.relu(self.bn1(self.conv1(x), training=training))  # (B, H/s, W/s, C_out)
        h = self.bn2(self.conv2(h), training=training)
        shortcut = x[:, ::self.stride, ::self.stride, :] if self.stride > 1 else x
        if self.extra:  # option A: zero channels appended
            shortcut = keras.ops.pad(shortcut, [[0, 0], [0, 0], [0, 0], [0, self.extra]])
        return keras.ops.relu(h + shortcut)


class ResNet(keras.Model):
    def __init__(self, spec: ResNetSpec, seed: int = 0, **kwargs: object) -> None:
        super().__init__(name="resnet", **kwargs)
        self.conv1 = _conv(spec.filters[0], 1, "conv1")
        self.bn1 = _bn(spec, "bn1")
        self.blocks = [Block(spec, c_in, c_out, stride, name)
                       for name, c_in, c_out, stride in spec.blocks()]
        self.pool = layers.GlobalAveragePooling2D(name="pool")
        self.dense = layers.Dense(spec.classes, name="dense")

    def call(self, x, training=False):  # x: (B, H, W, C)
        x = keras.ops.relu(self.bn1(self.conv1(x), training=training))  # (B, H, W, 16)
        for block in self.blocks:
            x = block(x, training=training)
        return self.dense(self.pool(x))  # (B, 64) -> (B, classes) logits


def build(spec: ResNetSpec, seed: int) -> ResNet:
    model = ResNet(spec, seed=seed)
    model(keras.ops.zeros((1, *spec.input_hwc)))  # creates the variables
    return model
