"""Clocks for training steps and inference calls.

A training "step" is the interval from `StepTimer.begin()` to `StepTimer.end()`; each
adapter documents where it calls them. The rule for every stack: the step ends only
after its result has reached the host (a synchronising read of the loss), so JAX's
asynchronous dispatch cannot end the clock early.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

now = time.perf_counter


@dataclass
class StepTimer:
    """Collects per-step durations and sample counts; remembers when the first step ended."""

    durations_s: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    first_end_wall: float | None = None  # time.time() when the very first step ended
    _t0: float = 0.0

    def begin(self) -> None:
        self._t0 = now()

    def end(self, batch_samples: int) -> None:
        self.durations_s.append(now() - self._t0)
        self.samples.append(batch_samples)
        if self.first_end_wall is None:
            self.first_end_wall = time.time()

    def throughputs(self, warmup: int, full_batch: int) -> np.ndarray:
        """Samples/s of each step after `warmup` steps, full batches only (a short last
        batch would mix a different shape into the distribution)."""
        d = np.asarray(self.durations_s[warmup:])
        n = np.asarray(self.samples[warmup:])
        keep = n == full_batch
        return n[keep] / d[keep]


def time_calls(fn: Callable[[], object], calls: int, warmup: int,
               budget_s: float | None = None) -> np.ndarray:
    """Milliseconds of up to `calls` calls of `fn` after `warmup` untimed ones; stops
    early once the timed calls have used `budget_s` (the caller records how many ran).
    `fn` must return only once its result is on the host (the paths return numpy)."""
    if warmup < 2:
        raise ValueError("warm up at least twice: first calls trace, compile or allocate")
    for _ in range(warmup):
        fn()
    out = np.empty(calls)
    spent = 0.0
    for i in range(calls):
        t0 = now()
        fn()
        out[i] = now() - t0
        spent += out[i]
        if budget_s is not None and spent >= budget_s:
            return out[: i + 1] * 1e3
    return out * 1e3
