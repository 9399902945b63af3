"""PyTorch twin of the small MNIST convnet (see spec.py). Diff me against keras_model.py.

Differences from the Keras twin, each handled so both compute the same function:
- Inputs are NCHW here, NHWC in Keras. The stack transposes the data once, up front.
- Flatten runs over (C, H, W) here and (H, W, C) in Keras, so the Dense kernel's rows are
  permuted when canonical weights are loaded (torch_weights.py,
  `layout.dense_after_flatten_to_torch`).
- Weights are (out, in[, kh, kw]) here, (in, out) / (kh, kw, in, out) in Keras.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from twinbench.models.cnn.spec import CNNSpec


class CNN(nn.Module):
    def __init__(self, spec: CNNSpec) -> None:
        super().__init__()
        c_in = spec.input_hwc[2]
        self.conv1 = nn.Conv2d(c_in, spec.filters[0], spec.kernel)
        self.pool1 = nn.MaxPool2d(spec.pool)
        self.conv2 = nn.Conv2d(spec.filters[0], spec.filters[1], spec.kernel)
        self.pool2 = nn.MaxPool2d(spec.pool)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(spec.dropout)
        h, w, c = spec.feature_hwc()
        self.dense = nn.Linear(h * w * c, spec.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        x = self.pool1(F.relu(self.conv1(x)))  # (B, 32, 13, 13)
        x = self.pool2(F.relu(self.conv2(x)))  # (B, 64, 5, 5)
        x = self.flatten(x)  # (B, 1600), (c, h, w) order
        x = self.dropout(x)
        return self.dense(x)  # (B, 10) logits


def build(spec: CNNSpec, seed: int) -> CNN:
    return CNN(spec)
