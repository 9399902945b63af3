"""Executors: where and when the cells of a run execute.

The driver hands an executor a list of `Submission`s and receives each cell's raw result
as it finishes (not necessarily in order). `LocalExecutor` runs them one at a time on
this machine, each in a fresh process; `runner.ray_executor.RayExecutor` spreads them over
a Ray cluster, one whole node per timed cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from twinbench.config import CellJob
from twinbench.stacks import StackInfo

CellKey = tuple[str, str, str, str, int]  # (task, dataset, model, stack, repeat)


@dataclass(frozen=True)
class Submission:
    key: CellKey
    job: CellJob
    info: StackInfo
    cell_dir: Path


class Executor(Protocol):
    name: str

    def run(self, subs: list[Submission], timeout_s: float,
            on_start: Callable[[Submission], None] = lambda s: None,
            ) -> Iterator[tuple[Submission, dict]]:
        """Yield (submission, raw result dict) as each cell finishes; call `on_start` as
        each one starts."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """One cell at a time on this machine: timed cells never share the CPUs."""

    name = "local"

    def __init__(self, memory_mb: float | None = None) -> None:
        self.memory_mb = memory_mb

    def run(self, subs: list[Submission], timeout_s: float,
            on_start: Callable[[Submission], None] = lambda s: None,
            ) -> Iterator[tuple[Submission, dict]]:
        from twinbench.environment import node_fingerprint
        from twinbench.runner.local import run_cell

        node = node_fingerprint()  # every cell runs on this machine
        for s in subs:
            on_start(s)
            raw = run_cell(s.job, s.info, s.cell_dir, timeout_s, memory_mb=self.memory_mb)
            yield s, {**raw, "node": node}

    def close(self) -> None:
        pass
