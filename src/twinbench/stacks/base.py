"""The small interface every stack adapter implements. Imported only in a cell process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from twinbench.config import OptimizerConfig
from twinbench.recipe import LossConfig
from twinbench.measure.timing import StepTimer

# An inference path: a native-layout numpy batch in, host numpy logits out (synchronised).
InferFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Probe:
    """What a twin computes on the canonical weights and one fixed batch (dropout off)."""

    logits: np.ndarray
    loss: float
    grads: dict[str, np.ndarray]  # canonical names and layout


class Stack(Protocol):
    def configure_threads(self, threads: int) -> dict[str, object]:
        """Apply the thread count before the first op; return what was set."""

    def set_device(self, device: str) -> dict[str, object]:
        """Place timed work on "cpu" or "cuda" (raise if the framework sees no such device);
        return the device and allocator settings actually in force."""

    def peak_device_memory_mb(self) -> float | None:
        """Peak accelerator memory from the framework's own allocator; None on CPU."""

    def to_native(self, x: np.ndarray) -> np.ndarray:
        """Canonical NHWC/ids input -> this framework's layout (done once, untimed)."""

    def build(self, weights: dict[str, np.ndarray]) -> None:
        """Build the twin, load canonical weights, create the optimizer."""

    def export_weights(self) -> dict[str, np.ndarray]: ...

    def param_count(self) -> int: ...

    def train_epoch(self, x: np.ndarray, y: np.ndarray, timer: StepTimer) -> float:
        """One epoch over (x, y) in the given order; return the mean training loss."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits for a whole array, the idiomatic batched way."""

    def inference_paths(self) -> tuple[str, dict[str, InferFn]]:
        """(idiomatic path name, every documented path)."""

    def probe(self, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> Probe:
        """Forward, loss and gradients on a fresh twin holding `weights`."""

    def forward(self, weights: dict[str, np.ndarray], xs: list[np.ndarray]
                ) -> list[np.ndarray]:
        """Logits of each input on one dropout-free twin holding `weights`, inference mode,
        no gradients (the padding check needs only these)."""

    def train_steps(self, weights: dict[str, np.ndarray], batches: list,
                    cfg: OptimizerConfig, loss_cfg: LossConfig | None = None
                    ) -> tuple[list[float], list[dict[str, np.ndarray]], list[float]]:
        """Steps on a fresh dropout-free twin: each step's loss, canonical weights after,
        each step's learning rate (as the framework's optimizer computed it). `loss_cfg`:
        a recipe's loss instead of the twin's own."""

    def export(self, fmt: str, path: Path, x: np.ndarray) -> dict:
        """Write the trained twin as format `fmt` to `path` (example input `x`, native
        layout); return what was used (exporter, opset, input dtype). Raises on failure."""

    def versions(self) -> dict[str, str]: ...
