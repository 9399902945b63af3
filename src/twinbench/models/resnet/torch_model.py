"""PyTorch twin of ResNet for CIFAR-10 (see spec.py). Diff me against keras_model.py.

Differences from the Keras twin, each handled so both compute the same function:
- Inputs are NCHW here, NHWC in Keras. The stack transposes the data once, up front.
- Keras's padding "same" with stride 2 pads (0, 1) on even sizes; torch's `padding=1`
  would pad (1, 1). Stride-2 convolutions here have padding 0 and `pad_same` in front.
- BatchNorm is `KerasBatchNorm`: Keras's momentum convention and biased moving variance,
  with the spec's momentum and epsilon.
- Conv weights are (out, in, kh, kw) here, (kh, kw, in, out) in Keras; BatchNorm's
  gamma/beta/moving_mean/moving_variance are weight/bias/running_mean/running_var.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from twinbench.models.resnet.spec import ResNetSpec
from twinbench.models.torch_layers import KerasBatchNorm, pad_same

class Block(nn.Module):
    def __init__(self, spec: ResNetSpec, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, c_out - c_in
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=0 if stride > 1 else 1,
                               bias=False)
        self.bn1 = KerasBatchNorm(c_out, spec.bn_momentum, spec.bn_epsilon)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = KerasBatchNorm(c_out, spec.bn_momentum, spec.bn_epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C_in, H, W)
        h = pad_same(x, 3, self.stride) if self.stride > 1 else x
        h = F.relu(self.bn1(self.conv1(h)))  # (B, C_out, H/s, W/s)
        h = self.bn2(self.conv2(h))
        shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:  # option A: zero channels appended
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return F.relu(h + shortcut)


class ResNet(nn.Module):
    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(spec.input_hwc[2], spec.filters[0], 3, padding=1, bias=False)
        self.bn1 = KerasBatchNorm(spec.filters[0], spec.bn_momentum, spec.bn_epsilon)
        self.blocks = nn.ModuleDict({name: Block(spec, c_in, c_out, stride)
                                     for name, c_in, c_out, stride in spec.blocks()})
        self.dense = nn.Linear(spec.filters[-1], spec.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 16, H, W)
        for block in self.blocks.values():
            x = block(x)
        return self.dense(x.mean(dim=(2, 3)))  # (B, 64) -> (B, classes) logits


def build(spec: ResNetSpec, seed: int) -> ResNet:
    return ResNet(spec)
