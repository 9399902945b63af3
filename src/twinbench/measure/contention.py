"""Contention, measured rather than guessed: how much of a cell's CPUs other work used while
the cell was timed. Framework-free; Linux `/proc` (elsewhere: recorded as unavailable).

Other work = busy time of the cell's CPUs (every process, from the per-CPU lines of
/proc/stat) minus the CPU time of the cell's own process tree (psutil). Steal time (a
hypervisor giving the CPU to another guest) is counted apart and added to it. Written by
hand rather than with psutil.cpu_times(percpu=True) only because the cell's own share must
come off the same counters in the same window.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

# A cell is `contended` when other work took more than this share of its CPUs' time while
# it was timed. Quiet here: 0-3% (the driver's 0.1 s polling, system daemons); one busy
# process pinned to one of a 2-CPU cell's cores: about 50%.
CONTENDED_SHARE = 0.10
QUIET_WINDOW_S = 0.5  # --wait-quiet samples the machine over windows this long


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float  # time.monotonic()
    busy_s: float  # non-idle seconds of the watched CPUs, all processes
    steal_s: float  # seconds stolen from the watched CPUs by the hypervisor
    own_s: float  # CPU seconds of this process and its children


def _proc_stat(cpus: Sequence[int]) -> tuple[float, float]:
    """(busy, steal) seconds of these CPUs since boot. Per-CPU line fields: user nice
    system idle iowait irq softirq steal guest guest_nice (guest is inside user)."""
    tick = os.sysconf("SC_CLK_TCK")
    want = set(cpus)
    busy = steal = 0
    with open("/proc/stat") as f:
        for line in f:
            if not (line.startswith("cpu") and line[3:4].isdigit()):
                continue
            fields = line.split()
            if int(fields[0][3:]) in want:
                v = [int(x) for x in fields[1:9]]
                busy += v[0] + v[1] + v[2] + v[5] + v[6]
                steal += v[7]
    return busy / tick, steal / tick


def _own_cpu_s() -> float:
    """CPU seconds of this process, its reaped children and its live children (compile
    workers, data loaders): the cell's own work, wherever on its CPUs it ran."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            ct = child.cpu_times()
            total += ct.user + ct.system
        except psutil.Error:
            pass
    return total


def available() -> bool:
    return os.path.exists("/proc/stat") and hasattr(os, "sched_getaffinity")


def snapshot(cpus: Sequence[int]) -> CpuSnapshot:
    busy, steal = _proc_stat(cpus)
    return CpuSnapshot(time.monotonic(), busy, steal, _own_cpu_s())


def other_share(a: CpuSnapshot, b: CpuSnapshot, n_cpus: int) -> tuple[float, float]:
    """(share of the CPUs' time other processes used, share stolen) between a and b."""
    capacity = max(b.wall - a.wall, 1e-9) * n_cpus
    other = max(0.0, (b.busy_s - a.busy_s) - (b.own_s - a.own_s))
    return min(other / capacity, 1.0), min(max(b.steal_s - a.steal_s, 0.0) / capacity, 1.0)


class ContentionMeter:
    """start() before the timed phases, result() after: the cell's contention record."""

    def __init__(self, cpus: Sequence[int], threshold: float = CONTENDED_SHARE) -> None:
        self.cpus, self.threshold = sorted(cpus), threshold
        self.start_snap: CpuSnapshot | None = None
        self.load_start: list[float] | None = None

    def start(self) -> None:
        if available():
            self.start_snap, self.load_start = snapshot(self.cpus), list(os.getloadavg())

    def result(self) -> dict:
        if self.start_snap is None:
            return {"available": False, "contended": None,
                    "reason": "no /proc/stat on this system: contention not measured"}
        end = snapshot(self.cpus)
        other, steal = other_share(self.start_snap, end, len(self.cpus))
        return {"available": True, "other_cpu_share": round(other, 4),
                "steal_share": round(steal, 4), "cpus": self.cpus,
                "window_s": round(end.wall - self.start_snap.wall, 3),
                "loadavg_start": self.load_start, "loadavg_end": list(os.getloadavg()),
                "threshold": self.threshold, "contended": other + steal > self.threshold,
                "method": "busy time of the cell's CPUs (/proc/stat) minus the cell "
                          "process tree's CPU time, plus steal, over the timed phases"}


def wait_quiet(cpus: Sequence[int], timeout_s: float,
               threshold: float = CONTENDED_SHARE) -> dict:
    """Wait until other work uses at most `threshold` of these CPUs over one window, or
    `timeout_s` passes (then the cell runs anyway and its contention record says so)."""
    if not available():
        return {"waited_s": 0.0, "quiet": None}
    t0 = time.monotonic()
    while True:
        a = snapshot(cpus)
        time.sleep(QUIET_WINDOW_S)
        other, steal = other_share(a, snapshot(cpus), len(cpus))
        quiet = other + steal <= threshold
        if quiet or time.monotonic() - t0 >= timeout_s:
            return {"waited_s": round(time.monotonic() - t0, 3), "quiet": quiet,
                    "last_other_share": round(other + steal, 4), "timeout_s": timeout_s}
