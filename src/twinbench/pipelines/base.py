"""What every pipeline implementation offers the measurement process (child side)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from twinbench.measure.timing import StepTimer
from twinbench.pipelines.spec import EpochPlan


class Pipeline(Protocol):
    settings: dict[str, Any]  # every knob of this pipeline, as applied

    def iterate(self, plan: EpochPlan) -> Iterator[Any]:
        """One epoch of batches, in the pipeline's own types (what a training loop gets)."""

    def to_numpy(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """A batch as canonical numpy: images NHWC float32, ids int64; labels int64."""

    def train(self, stack: Any, plan: EpochPlan, timer: StepTimer) -> float:
        """One training epoch of `stack` (a `twinbench.stacks` adapter, built) fed by this
        pipeline; returns the epoch's mean training loss."""


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x
