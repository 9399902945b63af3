"""The classic small MNIST convnet, framework-free.

    Conv 32 3x3 relu -> MaxPool 2 -> Conv 64 3x3 relu -> MaxPool 2 -> Flatten
    -> Dropout 0.5 -> Dense 10 (logits)

Every size below is computed from these few numbers; the twins read them from here.
Padding is "valid" everywhere, so no framework's asymmetric "same" padding is involved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from twinbench.models.spec_base import SpecBase, scaled, vary_fields
from twinbench.variants import number


@dataclass(frozen=True)
class CNNSpec(SpecBase):
    input_hwc: tuple[int, int, int] = (28, 28, 1)
    filters: tuple[int, int] = (32, 64)
    kernel: int = 3
    pool: int = 2
    dropout: float = 0.5
    classes: int = 10

    def conv_out(self, size: int) -> int:
        """Spatial size after a valid conv then a floor-mode max pool."""
        return (size - self.kernel + 1) // self.pool

    def feature_hwc(self) -> tuple[int, int, int]:
        """Shape (H, W, C) that Flatten sees: (5, 5, 64) for 28x28 inputs."""
        h, w, _ = self.input_hwc
        for _ in self.filters:
            h, w = self.conv_out(h), self.conv_out(w)
        return h, w, self.filters[-1]

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Canonical (Keras-layout) shape and Keras default initialiser of every parameter,
        in layer order."""
        c_in = self.input_hwc[2]
        shapes: dict[str, tuple[tuple[int, ...], str]] = {}
        for i, c_out in enumerate(self.filters, start=1):
            shapes[f"conv{i}/kernel"] = ((self.kernel, self.kernel, c_in, c_out), "glorot_uniform")
            shapes[f"conv{i}/bias"] = ((c_out,), "zeros")
            c_in = c_out
        h, w, c = self.feature_hwc()
        shapes["dense/kernel"] = ((h * w * c, self.classes), "glorot_uniform")
        shapes["dense/bias"] = ((self.classes,), "zeros")
        return shapes


    def forward_flops(self) -> int:
        """FLOPs of one sample's forward pass: 2 per multiply-add of every conv and dense
        (the torch.utils.flop_counter convention; bias, ReLU and pooling not counted)."""
        h, w, c_in = self.input_hwc
        flops = 0
        for c_out in self.filters:
            h, w = h - self.kernel + 1, w - self.kernel + 1  # valid conv output
            flops += 2 * h * w * self.kernel * self.kernel * c_in * c_out
            h, w, c_in = h // self.pool, w // self.pool, c_out
        fh, fw, fc = self.feature_hwc()
        return flops + 2 * fh * fw * fc * self.classes


KIND = "image"
# Knobs a sweep may vary (`cnn[width=0.5]`): the sizes they change, computed from the spec.
KNOBS = {"width": "multiplies both convolutions' filters (32, 64 at width 1)"}
PROBE_TASK = "digits"  # the data `verify` probes this family on


def spec_for(data) -> CNNSpec:  # data: twinbench.data.dataset.Dataset
    """The spec for a data set: its input shape and class count."""
    return CNNSpec(input_hwc=tuple(int(d) for d in data.x_train.shape[1:]), classes=data.classes)


def vary(spec: CNNSpec, knobs: dict[str, str]) -> CNNSpec:
    """The spec with a sweep point's knobs applied (KNOBS)."""
    def one(s: CNNSpec, key: str, value: str) -> CNNSpec:
        w = number("cnn", key, value)
        return dataclasses.replace(s, filters=tuple(scaled(f, w) for f in CNNSpec.filters))

    return vary_fields(spec, knobs, KNOBS, one)
