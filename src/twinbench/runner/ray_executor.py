"""Runs the cells on a Ray cluster, one whole node per timed cell.

Each cell is a Ray task that holds `twinbench_slot: 1`, a custom resource that every node
declares exactly once (`twinbench worker` starts nodes that way), so two timed cells never
share a machine. On its node the task calls the same `run_cell` as the local executor: a
fresh process per cell, with its timeout and memory watch. Nodes need not share a
filesystem: the prepared data set travels through Ray's object store, and the task sends
back the result together with the files the driver needs (parity probe, job, stdout,
stderr) as bytes. Results stream back as each cell finishes (`ray.wait`).

A task whose node is lost is rerun by Ray on another node (`max_retries`, default 2,
env TWINBENCH_RAY_RETRIES); past that the cell is a `failed` record that says why.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinbench.errors import TwinbenchError
from twinbench.plan import ADDRESS, check_address_form  # noqa: F401 - the form is checked there
from twinbench.runner.executor import Submission

SLOT = "twinbench_slot"  # custom resource: each node declares exactly 1
RETRIES_ENV = "TWINBENCH_RAY_RETRIES"
DEFAULT_RETRIES = 2
POLL_S = 0.5
# Per attempt, on top of --cell-timeout: worker start-up, moving the data, waiting for a
# slot. Only a safety net: the node's own watch kills a cell at --cell-timeout.
MARGIN_S = 300.0
NO_SLOT_GRACE_S = 120.0  # a cluster without any slot this long fails the remaining cells
# Files a node sends back into the driver's cell folder.
SHIPPED = ("job.json", "result.json", "error.json", "probe.npz", "stderr.txt", "stdout.txt")


def _error(message: str) -> Exception:
    return TwinbenchError(message)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise _error("--executor ray needs Ray: pip install 'twinbench[ray]'") from None
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds with a one-line reason: `ray.init` on a dead address retries for
    minutes."""
    m = check_address_form(address)
    if m is None:
        return
    host, port = m.group(2).strip("[]"), int(m.group(3))
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise _error(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); "
                     f"start one with `twinbench worker --head`, see docs/cluster.md") from None


def retries_from_env() -> int:
    """How often Ray reruns a cell whose node or worker was lost."""
    value = os.environ.get(RETRIES_ENV, str(DEFAULT_RETRIES))
    if not value.isdigit():
        raise _error(f"{RETRIES_ENV}={value!r}: valid values are 0, 1, 2, ...")
    return int(value)


@dataclass
class _Flight:
    sub: Submission
    ref: Any  # ray.ObjectRef of the task
    deadline: float  # time.monotonic() past which the driver gives up on it


class RayExecutor:
    """Cells as Ray tasks, one whole-node slot each; see the module docstring."""

    name = "ray"

    def __init__(self, address: str | None, memory_mb: float | None = None,
                 max_retries: int | None = None, ray_module: Any = None) -> None:
        self.ray = ray_module or _import_ray()  # ray_module: a stand-in, for tests
        self.address = address or "a local Ray instance"
        self.memory_mb = memory_mb
        self.max_retries = max_retries if max_retries is not None else retries_from_env()
        self._connect(address)
        self._task = self.ray.remote(_run_on_node)
        try:
            self._check_slots()
        except Exception:
            self.ray.shutdown()
            raise

    def _connect(self, address: str | None) -> None:
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address is not None:
            check_reachable(address)
        try:
            if address is None:  # this machine alone, one slot: cells run one at a time
                self.ray.init(resources={SLOT: 1}, include_dashboard=False, **quiet)
            else:
                self.ray.init(address=address, **quiet)
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds; one line each
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise _error(f"cannot connect to Ray at {self.address}: {first} (with token auth, "
                         "`twinbench worker`'s default, this process needs RAY_AUTH_MODE=token "
                         "and the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                         ) from None

    def _check_slots(self) -> None:
        """At least one node has a slot, and none has more than one (two timed cells
        on one machine would skew each other's numbers)."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        many = [n for n in nodes if n["Resources"].get(SLOT, 0) > 1]
        if many:
            n = many[0]
            raise _error(f"Ray node {n['NodeManagerAddress']} declares "
                         f"{n['Resources'][SLOT]:g} {SLOT}; each node must declare exactly "
                         f"1 (start it with `twinbench worker`)")
        if not any(n["Resources"].get(SLOT, 0) for n in nodes):
            raise _error(f"no node of the Ray cluster at {self.address} has the {SLOT} "
                         f"resource; start each node with `twinbench worker`")

    def slots(self) -> int:
        """Slots of the nodes alive now (0 when the cluster cannot be asked)."""
        try:
            return int(self.ray.cluster_resources().get(SLOT, 0))
        except Exception:  # noqa: BLE001 - a lost head; the no-slot grace handles it
            return 0

    def run(self, subs: list[Submission], timeout_s: float,
            on_start: Callable[[Submission], None] = lambda s: None,
            on_progress: Callable[[Submission, Any], None] | None = None,
            ) -> Iterator[tuple[Submission, dict]]:
        """Submit no more cells than there are slots (so a cell starts when it is
        submitted, and in plan order), and yield each one as it finishes. `on_progress`
        is not called: a cell's progress file is on its node."""
        queue, flights = list(subs), []
        data: dict[Path, Any] = {}
        budget = (self.max_retries + 1) * (timeout_s + MARGIN_S)
        last_slot = time.monotonic()
        try:
            while queue or flights:
                slots = self.slots()
                last_slot = time.monotonic() if slots else last_slot
                while queue and len(flights) < slots:
                    sub = queue.pop(0)
                    on_start(sub)
                    flights.append(self._submit(sub, data, timeout_s, budget))
                yield from self._finished(flights)
                if time.monotonic() - last_slot > NO_SLOT_GRACE_S:
                    reason = (f"no node with a {SLOT} left in the Ray cluster at "
                              f"{self.address} for {NO_SLOT_GRACE_S:g} s (nodes lost)")
                    yield from self._give_up(flights, queue, reason)
                yield from self._overdue(flights)
        finally:
            for f in flights:  # Ctrl-C or a closed generator: stop what still runs
                self._cancel(f)

    def _cancel(self, f: _Flight) -> None:
        """Kill the task's Ray worker; its cell process dies with it (die_with_parent)."""
        try:
            self.ray.cancel(f.ref, force=True)
        except Exception:  # noqa: BLE001, S110 - finished already, or the cluster is gone
            pass

    def _submit(self, sub: Submission, data: dict[Path, Any], timeout_s: float,
                budget: float) -> _Flight:
        if sub.job.data_path not in data:  # one copy per data set into the object store
            data[sub.job.data_path] = self.ray.put(sub.job.data_path.read_bytes())
        gpus = 1 if sub.job.run.device == "cuda" else 0
        ref = self._task.options(
            resources={SLOT: 1}, num_cpus=0, num_gpus=gpus, max_retries=self.max_retries,
            retry_exceptions=False, name=f"twinbench:{'/'.join(map(str, sub.key))}",
        ).remote(sub.job.model_dump_json(), sub.info.name, data[sub.job.data_path],
                 timeout_s, self.memory_mb)
        return _Flight(sub, ref, time.monotonic() + budget)

    def _finished(self, flights: list[_Flight]) -> Iterator[tuple[Submission, dict]]:
        if not flights:
            time.sleep(POLL_S)
            return
        done, _ = self.ray.wait([f.ref for f in flights], num_returns=1, timeout=POLL_S)
        for f in [f for f in flights if f.ref in done]:
            flights.remove(f)
            yield f.sub, self._collect(f)

    def _collect(self, f: _Flight) -> dict:
        try:
            out = self.ray.get(f.ref)
        except self.ray.exceptions.RayError as e:
            return {"status": "failed", "reason": failure_reason(e, self.max_retries),
                    "wall_s": None, "ray": {"max_retries": self.max_retries}}
        return unpack(f.sub, out, self.max_retries)

    def _overdue(self, flights: list[_Flight]) -> Iterator[tuple[Submission, dict]]:
        now = time.monotonic()
        for f in [f for f in flights if now > f.deadline]:
            self._cancel(f)
            flights.remove(f)
            yield f.sub, {"status": "failed", "wall_s": None,
                          "reason": "no result from the Ray cluster within "
                                    f"{self.max_retries + 1} x (--cell-timeout + "
                                    f"{MARGIN_S:g} s)"}

    def _give_up(self, flights: list[_Flight], queue: list[Submission],
                 reason: str) -> Iterator[tuple[Submission, dict]]:
        for f in flights:
            self._cancel(f)
        subs = [f.sub for f in flights] + queue
        flights.clear()
        queue.clear()
        for sub in subs:
            yield sub, {"status": "failed", "reason": reason, "wall_s": None}

    def close(self) -> None:
        self.ray.shutdown()


def failure_reason(e: BaseException, retries: int) -> str:
    """One line for a task that Ray could not complete."""
    import ray.exceptions as rex

    text = str(e).strip()
    first = (text.split(" This can happen")[0].splitlines() or [""])[0][:300]
    after = f" (after {retries} retries)" if retries else " (no retries: --executor ray " \
                                                        f"with {RETRIES_ENV}=0)"
    if isinstance(e, rex.NodeDiedError):
        return f"node lost{after}: {first}"
    if isinstance(e, rex.OutOfMemoryError):
        return f"killed by Ray's memory monitor{after}: {first}"
    if isinstance(e, rex.WorkerCrashedError):
        return f"the Ray worker running the cell died{after}: {first}"
    if isinstance(e, rex.TaskCancelledError):
        return "cancelled"
    if isinstance(e, rex.RayTaskError):  # an exception in _run_on_node itself
        cause = e.cause if getattr(e, "cause", None) is not None else e
        return f"error in the Ray task: {type(cause).__name__}: " \
               f"{(str(cause).strip().splitlines() or [''])[0][:300]}"
    return f"Ray: {type(e).__name__}: {first}"


def unpack(sub: Submission, out: dict, max_retries: int) -> dict:
    """Write the files the node sent into the driver's cell folder; point the parity
    probe at the driver's copy."""
    targets = {"result.json": sub.job.result_path, "probe.npz": sub.job.parity_path}
    for name in SHIPPED:
        path = targets.get(name, sub.cell_dir / name)
        if name in out["files"]:
            path.write_bytes(out["files"][name])
        else:
            path.unlink(missing_ok=True)  # an earlier attempt's, on --resume
    raw = out["raw"]
    if "probe_path" in raw.get("parity", {}):
        raw["parity"]["probe_path"] = str(sub.job.parity_path)
    raw["ray"] = {**raw.get("ray", {}), "max_retries": max_retries}
    return raw


def _run_on_node(job_json: str, stack: str, data: bytes, timeout_s: float,
                 memory_mb: float | None) -> dict:
    """The Ray task: run one cell on this node in a node-local folder; return the raw
    result (with this node's fingerprint) and the files the driver keeps, as bytes."""
    from twinbench.config import CellJob
    from twinbench.runner.local import run_cell
    from twinbench.stacks import stack_info

    job = CellJob.model_validate_json(job_json)
    node, ray_info = _node_identity()
    work = Path(tempfile.mkdtemp(prefix=f"twinbench-{job.task}__{job.model}__{job.stack}-"))
    try:
        (work / "data.npz").write_bytes(data)
        # The node's own CPUs: the driver's affinity says nothing about this machine.
        cpus = sorted(os.sched_getaffinity(0))
        if job.run.threads > len(cpus):
            raw = {"status": "failed", "wall_s": 0.0,
                   "reason": f"--threads {job.run.threads} exceeds the {len(cpus)} CPUs of "
                             f"node {node['hostname']}; valid: 1..{len(cpus)}"}
        else:
            job = job.model_copy(update={
                "data_path": work / "data.npz", "result_path": work / "result.json",
                "parity_path": work / "probe.npz", "cpus": tuple(cpus[: job.run.threads])})
            raw = run_cell(job, stack_info(stack), work, timeout_s, memory_mb=memory_mb,
                           die_with_parent=True)
        files = {n: (work / n).read_bytes() for n in SHIPPED if (work / n).exists()}
        return {"raw": {**raw, "node": node, "ray": ray_info}, "files": files}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _node_identity() -> tuple[dict, dict]:
    """(hardware fingerprint + Ray node id and IP, this task's attempt number)."""
    import ray

    from twinbench.environment import node_fingerprint

    ctx = ray.get_runtime_context()
    node = {**node_fingerprint(), "ray_node_id": ctx.get_node_id(),
            "ip": ray.util.get_node_ip_address()}
    try:  # private API, hence guarded: 0 on the first run, k on the k-th retry
        attempt = ray._private.worker.global_worker.core_worker \
            .get_current_task_attempt_number()
    except Exception:  # noqa: BLE001
        attempt = None
    return node, {"attempt": attempt, "task_id": ctx.get_task_id()}


AUTH_MODES = ("token", "disabled")


def ray_start_env(auth: str) -> dict[str, str]:
    """RAY_AUTH_MODE, always explicit: left unset, Ray 2.60's head turns token auth on
    when ~/.ray/auth_token exists but a joining node does not, and the join fails."""
    if auth not in AUTH_MODES:
        raise ValueError(f"--auth {auth!r}: valid values are {', '.join(AUTH_MODES)}")
    return {"RAY_AUTH_MODE": auth}


def ray_start_command(node_ip: str, head: bool, address: str | None, port: int,
                      num_cpus: int | None = None, dashboard: bool = False,
                      block: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    """The `ray start` command of one twinbench node: exactly one slot, bound to
    `node_ip`, dashboard off unless asked (then on `node_ip` only), no usage stats.
    Raises ValueError with a one-line message on bad input."""
    import ipaddress
    import json
    import sys

    try:
        ipaddress.ip_address(node_ip)
    except ValueError:
        raise ValueError(f"--node-ip-address {node_ip!r} is not an IP address; give this "
                         "node's address on the cluster network, e.g. 10.0.0.5") from None
    if head == (address is not None):
        raise ValueError("give either --head (start a new cluster) or --address HEAD:PORT "
                         "(join one)")
    if address is not None and (address.startswith("ray://") or not ADDRESS.match(address)):
        raise ValueError(f"--address {address!r}: valid form is HEAD_IP:PORT (the head's "
                         "GCS port, 6379 by default)")
    if dashboard and not head:
        raise ValueError("--dashboard: only the head node runs Ray's dashboard")
    if num_cpus is not None and num_cpus < 0:
        raise ValueError(f"--num-cpus {num_cpus}: valid values are 0 or more")
    if not 1 <= port <= 65535:
        raise ValueError(f"--port {port}: valid ports are 1..65535")
    ray = Path(sys.executable).with_name("ray")
    cmd = [str(ray) if ray.exists() else "ray", "start", f"--node-ip-address={node_ip}",
           f"--resources={json.dumps({SLOT: 1})}", "--disable-usage-stats"]
    # Only the head runs a dashboard, and `ray start` refuses the flag on other nodes.
    cmd += ["--head", f"--port={port}", f"--include-dashboard={str(dashboard).lower()}"] \
        if head else [f"--address={address}"]
    if dashboard:
        cmd += [f"--dashboard-host={node_ip}"]
    if num_cpus is not None:
        cmd += [f"--num-cpus={num_cpus}"]
    return cmd + (["--block"] if block else []) + list(extra)
