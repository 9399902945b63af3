"""What every measurement child does first, before numpy or any framework is imported:
die with its driver, read its job, pin itself to its CPUs, refuse foreign frameworks.
Stdlib only at module level (the framework guard is installed from here)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from twinbench.hooks import testing_hook

PARENT_ENV = "TWINBENCH_DIE_WITH_PARENT"  # pid the child process must not outlive


def die_with_parent() -> None:
    """Linux: with TWINBENCH_DIE_WITH_PARENT=<pid> (set by `process.spawn.tied_to_parent`),
    the kernel SIGKILLs this process when its parent dies. A driver killed with SIGKILL,
    or a Ray worker lost with its node, then leaves no child running alone, which would
    disturb the next measurement on the machine."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(1)


def start(job_path: str | Path, blocked: Callable[[dict], tuple[str, ...]]
          ) -> tuple[dict[str, Any], Any]:
    """The one bootstrap of every child: die with the driver, read the job (a JSON dict
    with "cpus"), pin to those CPUs before any import starts a thread pool, and install
    the guard that refuses the frameworks `blocked(raw)` names. Returns (raw job, guard)."""
    die_with_parent()  # first: the driver may already be gone
    raw = json.loads(Path(job_path).read_text())
    if raw.get("cpus"):
        os.sched_setaffinity(0, raw["cpus"])
    from twinbench.process import guard

    return raw, guard.install(blocked(raw))


def write_json_atomic(path: Path, obj: dict) -> None:
    """Temp file, then rename: a reader never sees half a file. Shared by every child
    process (cells, export, reload, pipelines); stdlib only, so safe before any import."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)


def faults(raw: dict, where: str, var: str = "TWINBENCH_FAULT") -> list[str]:
    """Test hook. TWINBENCH_FAULT is a comma-separated list of `<target>:<kind>[@<where>]`
    where target is a stack name, `<stack>#<repeat>` for one repeat of it, or
    `<model>/<stack>` for one model (a sweep point: `cnn[width=0.5]/torch`), and where is
    train (default, after build), probe, or start (a full cell, before any import). Acts
    only with TWINBENCH_TESTING=1 (see hooks.testing_hook)."""
    kinds = []
    for spec in filter(None, testing_hook(var).split(",")):
        target, _, kind = spec.partition(":")
        kind, _, at = kind.partition("@")
        if target in (raw["stack"], f"{raw['stack']}#{raw.get('repeat', 0)}",
                      f"{raw.get('model')}/{raw['stack']}") and \
                (at or "train") == where:
            kinds.append(kind)
    return kinds


def inject_fault(raw: dict, where: str) -> None:
    """Act out the faults the test hook names for this child at `where`."""
    for kind in faults(raw, where):
        if kind == "import":
            continue  # handled by the import guard at the child's start
        print(f"twinbench: injected fault {kind!r} at {where}", file=sys.stderr, flush=True)
        if kind == "crash":
            os.abort()
        if kind == "hang":
            time.sleep(10**6)
        if kind == "exit":
            os._exit(3)
        if kind == "kill":  # as the OOM killer or a user's kill -9 would
            os.kill(os.getpid(), 9)
        if kind == "memory":  # grow RSS until the driver's --cell-memory-mb watch kills us
            hog = []
            while True:
                hog.append(b"\x01" * (50 * 2**20))  # written bytes: real RSS, not calloc
                time.sleep(0.05)
        raise RuntimeError(f"injected fault {kind!r}")
