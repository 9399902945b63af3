"""A 2-node Ray cluster on 127.0.0.1, a small suite through it, then the same suite while
the worker node is killed. Run by tests/test_ray.py *inside* a private network and PID
namespace (`unshare --net --pid --fork --mount-proc`): only loopback exists there, and
every process started here dies with the namespace.

Prints one line `SUMMARY {json}` with what it saw; exits non-zero on a failed check.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

import twinbench

PORT = 6390
# An A/A pair (torch and its copy torch#2): two cells for two nodes, with one framework
# import each instead of Keras's and JAX's as well (the executor is what is under test).
SUITE = ["--tasks", "digits", "--stacks", "torch,torch", "--epochs", "1",
         "--latency-calls", "20", "--latency-budget", "1", "--no-loadgen", "--threads", "1"]
# Two nodes on one machine: their own temp dirs (sockets, logs) and port ranges.
NODE_ARGS = {
    "head": ["--head", f"--port={PORT}"],
    "worker": [f"--address=127.0.0.1:{PORT}"],
}
NODE_EXTRA = {
    "head": ["--min-worker-port=10002", "--max-worker-port=10999",
             "--dashboard-agent-listen-port=52365"],
    "worker": ["--min-worker-port=11002", "--max-worker-port=11999",
               "--dashboard-agent-listen-port=52366"],
}


def env() -> dict[str, str]:
    src = str(Path(twinbench.__file__).resolve().parents[1])
    e = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    e["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [e.get("PYTHONPATH")])])
    return e


def twinbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "twinbench.cli", *args]


def start_node(name: str, work: Path) -> None:
    cmd = twinbench_cmd("worker", *NODE_ARGS[name], "--node-ip-address", "127.0.0.1",
                        "--num-cpus", "1", "--start", "--",
                        f"--temp-dir={work / name}", *NODE_EXTRA[name])
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, check=False,
                       timeout=120)
    assert r.returncode == 0, f"{name} did not start:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


def node_ids() -> dict[str, str]:
    """{"head": id, "worker": id} of the alive nodes."""
    import ray

    ray.init(address=f"127.0.0.1:{PORT}", logging_level="ERROR", log_to_driver=False)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
    head = [n["NodeID"] for n in nodes if "node:__internal_head__" in n["Resources"]]
    rest = [n["NodeID"] for n in nodes if n["NodeID"] not in head]
    assert len(head) == 1 and len(rest) == 1, nodes
    return {"head": head[0], "worker": rest[0]}


def listening() -> list[str]:
    """Local addresses of every listening TCP socket in this namespace."""
    out = []
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                out.append(fields[1])
    return out


def cells(db: Path, run_id: str, phase: str) -> list[dict]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT data FROM cells WHERE run_id = ? AND phase = ? ORDER BY id",
                       (run_id, phase)).fetchall()
    con.close()
    return [json.loads(r[0]) for r in rows]


def last_run_id(db: Path) -> str:
    con = sqlite3.connect(db)
    (run_id,) = con.execute("SELECT run_id FROM runs ORDER BY created DESC, rowid DESC "
                            "LIMIT 1").fetchone()
    con.close()
    return run_id


def run_suite(work: Path, out: str, *extra: str) -> subprocess.Popen:
    cmd = twinbench_cmd("run", *SUITE, "--executor", "ray", "--ray-address",
                        f"127.0.0.1:{PORT}", "--db", str(work / "history.db"),
                        "--out", str(work / out), *extra)
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(proc: subprocess.Popen, timeout: float = 240, codes: tuple[int, ...] = (0,)) -> str:
    text, _ = proc.communicate(timeout=timeout)
    assert proc.returncode in codes, f"twinbench run exited {proc.returncode}:\n{text[-4000:]}"
    return text


def worker_raylet(work: Path) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if "raylet/raylet" in line and f"{work / 'worker'}/" in line:
            return p
    raise AssertionError("worker raylet not found")


def full_cell_on(raylet: psutil.Process, deadline: float) -> tuple[psutil.Process, dict]:
    """Wait for a timed (full-mode) cell process below this raylet: (process, its job)."""
    while time.monotonic() < deadline:
        for p in raylet.children(recursive=True):
            try:
                line = p.cmdline()
            except psutil.Error:
                continue
            if "twinbench.cell.main" in line:
                try:
                    job = json.loads(Path(line[-1]).read_text())
                except (OSError, ValueError):
                    continue
                if job["mode"] == "full":
                    return p, job
        time.sleep(0.1)
    raise AssertionError("no timed cell started on the worker node")


def kill_worker_node(work: Path) -> dict:
    """Once a timed cell runs on the worker node, SIGKILL the node's raylet and daemons
    (a lost machine stops answering), then the Ray worker that runs the cell: the cell
    process, spawned in its own session, must die with it (die_with_parent)."""
    raylet = worker_raylet(work)
    cell, job = full_cell_on(raylet, time.monotonic() + 200)
    ray_worker = cell.parent()
    node_procs = [p for p in psutil.process_iter(["cmdline"])
                  if f"{work / 'worker'}/" in " ".join(p.info["cmdline"] or [])]
    for p in [*node_procs, ray_worker]:
        p.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs([cell], timeout=20)
    for p in alive:  # (reported below; do not leave it running)
        p.kill()
    return {"stack": job["stack"], "cell_died_with_parent": not alive,
            "killed": len(node_procs) + 1}


def main() -> int:
    # Token auth, as `twinbench worker` starts nodes by default: every process here
    # (nodes, driver, this script) shares one fresh token.
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    work = Path(tempfile.mkdtemp(prefix="tbray-", dir="/tmp"))  # short: socket paths
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    summary: dict = {"links": links.stdout.splitlines()}
    try:
        t0 = time.monotonic()
        for name in ("head", "worker"):
            start_node(name, work)
        ids = node_ids()
        summary["listening"] = listening()
        summary["startup_s"] = round(time.monotonic() - t0, 1)

        finish(run_suite(work, "run1"))
        summary["run1_s"] = round(time.monotonic() - t0 - summary["startup_s"], 1)
        run1 = last_run_id(work / "history.db")
        summary["run1"] = {phase: [_brief(c, ids) for c in cells(work / "history.db", run1,
                                                                 phase)]
                           for phase in ("probe", "full")}
        summary["run1_files"] = sorted(p.relative_to(work / "run1").as_posix()
                                       for p in (work / "run1").rglob("*")
                                       if p.name in ("probe.npz", "stderr.txt"))

        proc = run_suite(work, "run2")
        t1 = time.monotonic()
        summary["kill"] = kill_worker_node(work)
        summary["kill"]["after_s"] = round(time.monotonic() - t1, 1)
        finish(proc, codes=(0, 1))  # 1: the killed node's cell failed (not rerun)
        summary["run2_rc"] = proc.returncode
        summary["run2_s"] = round(time.monotonic() - t1, 1)
        run2 = last_run_id(work / "history.db")
        summary["run2"] = [_brief(c, ids) for c in cells(work / "history.db", run2, "full")]
        # --resume of that run: only a failed cell would run again, on the head.
        resume = subprocess.run(twinbench_cmd("run", "--resume", run2, "--db",
                                              str(work / "history.db")),
                                env=env(), capture_output=True, text=True, check=False,
                                timeout=240)
        summary["resume_rc"] = resume.returncode
        summary["resume_s"] = round(time.monotonic() - t1 - summary["run2_s"], 1)
        summary["after_resume"] = [_brief(c, ids) for c in cells(work / "history.db", run2,
                                                                  "full")]
        summary["total_s"] = round(time.monotonic() - t0, 1)
    finally:
        stop = subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                              env=env(), capture_output=True, text=True, check=False,
                              timeout=120)
        summary["ray_stop_rc"] = stop.returncode
        # In this PID namespace: everything but its init (bash) and this script.
        summary["left_running"] = [" ".join(p.info["cmdline"] or [])[:120] for p in
                                   psutil.process_iter(["cmdline", "status"])
                                   if p.pid not in (1, os.getpid())
                                   and p.info["status"] != psutil.STATUS_ZOMBIE]
        print("SUMMARY " + json.dumps(summary), flush=True)
        if not os.environ.get("TWINBENCH_KEEP_RAY_TEST"):  # logs, runs, history.db
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _brief(c: dict, ids: dict[str, str]) -> dict:
    node = c.get("node") or {}
    where = {v: k for k, v in ids.items()}.get(node.get("ray_node_id"), "?")
    return {"stack": c["stack"], "status": c["status"], "reason": c.get("reason"),
            "wall_s": round(c["wall_s"], 1) if c.get("wall_s") else None,
            "node": where, "attempt": (c.get("ray") or {}).get("attempt"),
            "hardware_id": node.get("hardware_id"), "cpu_model": node.get("cpu_model"),
            "parity": (c.get("parity") or {}).get("pass")}


if __name__ == "__main__":
    sys.exit(main())
