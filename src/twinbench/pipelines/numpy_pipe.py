"""The numpy baseline: the whole epoch transformed at once (vectorised), then sliced.

For a Keras stack the epoch's arrays go to `model.fit` (`shuffle=False`, already in the
epoch's order), as `twinbench run` feeds it; for a PyTorch stack they are sliced into
batches by the adapter's own loop. Either way this is the stack's ordinary training path.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from twinbench.data.dataset import batches
from twinbench.measure.timing import StepTimer
from twinbench.pipelines import PipelineInfo
from twinbench.pipelines.spec import EpochPlan, PipelineData, reference


class NumpyPipeline:
    def __init__(self, info: PipelineInfo, data: PipelineData, batch_size: int,
                 layout: str) -> None:
        self.data, self.batch_size, self.layout = data, batch_size, layout
        self.settings = {"vectorised": "whole epoch", "layout": layout}

    def arrays(self, plan: EpochPlan) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's inputs in order: images (N, H, W, C) (NCHW for torch), or ids."""
        x = reference(self.data, plan.order, plan)
        if self.layout == "nchw" and x.ndim == 4:
            # A copy, not ascontiguousarray: with C = 1 numpy keeps the transposed strides,
            # which torch reads as channels-last and convolves with another kernel
            # (measured: 3e-7 apart from a DataLoader's batch of the same values).
            x = np.array(x.transpose(0, 3, 1, 2), order="C")
        return x, self.data.y[plan.order]

    def iterate(self, plan: EpochPlan) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        x, y = self.arrays(plan)
        for sl in batches(len(y), self.batch_size):
            yield x[sl], y[sl]

    def to_numpy(self, batch) -> tuple[np.ndarray, np.ndarray]:
        x, y = batch
        return (x.transpose(0, 2, 3, 1) if self.layout == "nchw" and x.ndim == 4 else x), y

    def train(self, stack, plan: EpochPlan, timer: StepTimer) -> float:
        x, y = self.arrays(plan)
        return stack.train_epoch(x, y, timer)


def make(info: PipelineInfo, data: PipelineData, batch_size: int, threads: int | None,
         layout: str, seed: int = 0) -> NumpyPipeline:
    return NumpyPipeline(info, data, batch_size, layout)
