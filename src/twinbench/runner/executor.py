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
from twinbench.results import CellKey
from twinbench.process.progress import CellProgress
from twinbench.stacks import StackInfo



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
            on_progress: Callable[[Submission, CellProgress], None] | None = None,
            ) -> Iterator[tuple[Submission, dict]]:
        """Yield (submission, raw result dict) as each cell finishes; call `on_start` as
        each one starts and `on_progress` as it reports a phase (where the executor can
        see it)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Cells on this machine, each in a fresh process. `jobs` = 1 (always, for timed
    cells): one at a time, so they never share the CPUs. `jobs` > 1 is for untimed parity
    probes only: that many processes at once, each watched from a thread of the driver."""

    name = "local"

    def __init__(self, memory_mb: float | None = None, jobs: int = 1,
                 batch_probes: bool = True) -> None:
        self.memory_mb, self.jobs, self.batch_probes = memory_mb, jobs, batch_probes

    def run(self, subs: list[Submission], timeout_s: float,
            on_start: Callable[[Submission], None] = lambda s: None,
            on_progress: Callable[[Submission, CellProgress], None] | None = None,
            ) -> Iterator[tuple[Submission, dict]]:
        from twinbench.environment import node_fingerprint
        from twinbench.runner.local import run_cell

        node = node_fingerprint()  # every cell runs on this machine
        if self.batch_probes and subs and all(s.job.mode == "probe" for s in subs):
            yield from self._run_probe_batches(subs, timeout_s, on_start, node)
            return
        if self.jobs > 1:  # no progress: several cells, one bar, hooks off the main thread
            yield from self._run_concurrently(subs, timeout_s, on_start, node)
            return
        for s in subs:
            on_start(s)
            shown = (lambda p, s=s: on_progress(s, p)) if on_progress else None
            raw = run_cell(s.job, s.info, s.cell_dir, timeout_s, memory_mb=self.memory_mb,
                           on_progress=shown)
            yield s, {**raw, "node": node}

    def _run_concurrently(self, subs: list[Submission], timeout_s: float,
                          on_start: Callable[[Submission], None], node: dict,
                          ) -> Iterator[tuple[Submission, dict]]:
        import threading
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        from twinbench.runner.local import run_cell

        stop = threading.Event()  # an interrupted driver kills every running cell
        pending = list(subs)
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="cell")
        running: dict = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    s = pending.pop(0)
                    on_start(s)  # in the driver's thread: progress bars are not thread-safe
                    running[pool.submit(run_cell, s.job, s.info, s.cell_dir, timeout_s,
                                        memory_mb=self.memory_mb, stop=stop)] = s
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    yield running.pop(f), {**f.result(), "node": node}
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_probe_batches(self, subs: list[Submission], timeout_s: float,
                           on_start: Callable[[Submission], None], node: dict,
                           ) -> Iterator[tuple[Submission, dict]]:
        """Parity probes, one process per stack for all its model families (untimed:
        `jobs` such processes at once)."""
        import threading
        from concurrent.futures import ThreadPoolExecutor

        from twinbench.runner.local import run_probe_batch

        # One process per stack and thread count: a process's thread pools are set once
        # (a sweep over threads probes each count in its own process).
        groups: dict[tuple[str, int], list[Submission]] = {}
        for s in subs:
            groups.setdefault((s.job.stack, s.job.run.threads), []).append(s)
        if self.jobs == 1:  # in the driver's thread: Ctrl-C reaches the running batch
            for group in groups.values():
                for s in group:
                    on_start(s)
                raws = run_probe_batch([s.job for s in group], group[0].info,
                                       [s.cell_dir for s in group], timeout_s, self.memory_mb)
                yield from ((s, {**raw, "node": node}) for s, raw in zip(group, raws))
            return
        stop = threading.Event()  # an interrupted driver kills every running batch
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="probes")
        try:
            futures = []
            for group in groups.values():
                for s in group:
                    on_start(s)  # in the driver's thread: progress bars are not thread-safe
                futures.append((group, pool.submit(
                    run_probe_batch, [s.job for s in group], group[0].info,
                    [s.cell_dir for s in group], timeout_s, self.memory_mb, stop)))
            for group, f in futures:
                for s, raw in zip(group, f.result()):
                    yield s, {**raw, "node": node}
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass
