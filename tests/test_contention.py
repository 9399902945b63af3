"""Contention is measured, not guessed: a busy process on a cell's CPU makes the meter
report it (and `contended`), an idle one does not; --wait-quiet waits for a quiet CPU and
gives up at its timeout. Linux only (/proc/stat)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from twinbench.measure import contention

pytestmark = pytest.mark.skipif(not contention.available(), reason="needs Linux /proc/stat")

HOG = "import time\nt = time.time()\nwhile time.time() - t < {s}: pass\n"


class _Hog:
    """A busy loop pinned to one CPU, as `python -c 'while 1: pass'` under taskset, and
    not our child (a shell starts it in the background and exits): the meter counts the
    cell's own children as the cell's work."""

    def __init__(self, cpu: int, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        cmd = f"{sys.executable} -c '{HOG.format(s=seconds)}' >/dev/null 2>&1 &"
        subprocess.run(["sh", "-c", cmd], check=True,
                       preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))

    def wait(self) -> None:
        time.sleep(max(0.0, self.end - time.monotonic()) + 0.1)


def _hog(cpu: int, seconds: float) -> _Hog:
    return _Hog(cpu, seconds)


def test_a_busy_process_on_the_cells_cpu_is_measured_as_contention():
    cpu = min(os.sched_getaffinity(0))
    meter = contention.ContentionMeter([cpu])
    hog = _hog(cpu, 1.0)
    time.sleep(0.2)  # the hog's start-up
    meter.start()
    time.sleep(0.6)  # the "cell" idles: every busy tick of this CPU is the hog's
    r = meter.result()
    hog.wait()
    assert r["available"] and r["contended"] is True
    assert r["other_cpu_share"] > 0.5, r
    assert r["cpus"] == [cpu] and len(r["loadavg_start"]) == 3


def _other_share(cpu: int, busy: bool, seconds: float = 0.5) -> float:
    meter = contention.ContentionMeter([cpu])
    meter.start()
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        if not busy:
            time.sleep(0.05)
    return meter.result()["other_cpu_share"]


def test_the_cells_own_work_is_not_contention():
    """The cell's own busy work adds nothing to `other_cpu_share`: a busy window reads no
    more than an idle window next to it. Meant to hold whatever else runs (other tests in
    parallel): other work shares the CPU with the busy loop, so it reads less there, not
    more; a meter that counted the cell's own time would read ~1.0 busy on a quiet CPU."""
    cpu = min(os.sched_getaffinity(0))
    idle = _other_share(cpu, busy=False)
    busy = _other_share(cpu, busy=True)
    assert busy < idle + 0.3, (busy, idle)


def test_other_share_by_hand():
    a = contention.CpuSnapshot(wall=0.0, busy_s=10.0, steal_s=1.0, own_s=2.0)
    b = contention.CpuSnapshot(wall=2.0, busy_s=13.0, steal_s=1.2, own_s=3.0)
    # 2 CPUs for 2 s = 4 CPU-s; busy 3, own 1 -> other 2 = 50%; steal 0.2 = 5%
    other, steal = contention.other_share(a, b, 2)
    assert other == pytest.approx(0.5) and steal == pytest.approx(0.05)


def test_wait_quiet_returns_on_a_quiet_cpu_and_gives_up_on_a_busy_one():
    cpu = min(os.sched_getaffinity(0))
    hog = _hog(cpu, 2.5)
    time.sleep(0.2)
    busy = contention.wait_quiet([cpu], timeout_s=1.0)
    hog.wait()
    assert busy["quiet"] is False and busy["waited_s"] >= 1.0
    assert busy["last_other_share"] > contention.CONTENDED_SHARE
