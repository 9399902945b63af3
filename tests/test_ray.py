"""The Ray executor: `twinbench worker`, failures as records (with a stand-in for Ray),
and a real 2-node cluster on loopback inside a private network namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twinbench.api import TwinbenchError, plan, submission
from twinbench.config import RunConfig

ray = pytest.importorskip("ray", reason="Ray not installed: pip install 'twinbench[ray]'")

from twinbench.runner import ray_executor as rx  # noqa: E402 (after the skip)

HERE = Path(__file__).parent


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinbench.cli", *args],
                          capture_output=True, text=True, check=False, timeout=timeout)


# --- twinbench worker -----------------------------------------------------------------

@pytest.mark.parametrize("role, expect, absent", [
    (["--head", "--port", "6400"], ["--head", "--port=6400", "--include-dashboard=false"],
     ["--address"]),
    (["--address", "10.0.0.5:6400"], ["--address=10.0.0.5:6400"],
     ["--head", "--include-dashboard"]),  # `ray start` refuses the flag off the head
])
def test_worker_prints_ray_start_with_one_slot_bound_to_the_address(role, expect, absent):
    r = cli("worker", *role, "--node-ip-address", "10.0.0.6", "--num-cpus", "1", "--",
            "--temp-dir=/tmp/x")
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    # auth always explicit: unset, a head with ~/.ray/auth_token would demand a token
    # that joining nodes do not send
    assert words[0] == "RAY_AUTH_MODE=token"
    assert words[1].endswith("ray") and words[2] == "start"
    assert "'--resources={\"twinbench_slot\": 1}'" in r.stdout
    for w in ["--node-ip-address=10.0.0.6", "--disable-usage-stats", "--num-cpus=1", *expect]:
        assert w in words
    assert words[-1] == "--temp-dir=/tmp/x"  # after `--`: passed through unchanged
    assert not [w for w in words if any(w.startswith(a) for a in absent)]


def test_worker_dashboard_binds_to_the_node_address():
    r = cli("worker", "--head", "--node-ip-address", "10.0.0.6", "--dashboard")
    assert "--include-dashboard=true" in r.stdout and "--dashboard-host=10.0.0.6" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["--head", "--node-ip-address", "node1"], "not an IP address"),
    (["--node-ip-address", "10.0.0.6"], "give either --head"),
    (["--head", "--address", "10.0.0.5:6379", "--node-ip-address", "10.0.0.6"],
     "give either --head"),
    (["--address", "ray://10.0.0.5:10001", "--node-ip-address", "10.0.0.6"],
     "valid form is HEAD_IP:PORT"),
    (["--address", "10.0.0.5:6379", "--dashboard", "--node-ip-address", "10.0.0.6"],
     "only the head node"),
    (["--head", "--port", "70000", "--node-ip-address", "10.0.0.6"], "valid ports are"),
    (["--head", "--auth", "none", "--node-ip-address", "10.0.0.6"],
     "valid values are token, disabled"),
])
def test_worker_bad_input_is_one_line_and_exit_2(args, needle):
    r = cli("worker", *args)
    assert r.returncode == 2 and needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("address, needle", [
    ("nonsense", "valid forms are HOST:PORT"),
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),  # refused at once
])
def test_run_with_a_bad_ray_address_is_one_line_and_exit_2(address, needle, tmp_path):
    r = cli("run", "--tasks", "digits", "--stacks", "torch", "--executor", "ray",
            "--ray-address", address, "--out", str(tmp_path / "out"),
            "--db", str(tmp_path / "h.db"))
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


# --- the executor's loop, with a stand-in for Ray -------------------------------------

class FakeRay:
    """Enough of the `ray` module for RayExecutor: tasks finish at once with a scripted
    outcome per stack (a result dict, or a Ray exception that `get` raises)."""

    exceptions = ray.exceptions

    def __init__(self, outcomes: dict, slots: int = 2) -> None:
        self.outcomes, self.slots = outcomes, slots
        self.calls: list[dict] = []
        self.cancelled: list = []

    def init(self, **kw) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "NodeManagerAddress": "n1", "Resources": {rx.SLOT: 1.0}}]

    def cluster_resources(self) -> dict:
        return {rx.SLOT: float(self.slots)}

    def put(self, value):
        return value

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **opts):
                class Bound:
                    def remote(self, job_json, stack, *rest):
                        fake.calls.append({"stack": stack, **opts})
                        return stack  # the "object ref"
                return Bound()
        return Task()

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        out = self.outcomes[ref]
        if isinstance(out, BaseException):
            raise out
        return out

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def _subs(tmp_path: Path):
    p = plan(RunConfig(tasks=("digits",), stacks=("torch", "keras-jax"), threads=1,
                       out=tmp_path, executor="ray"))
    data = tmp_path / "digits.npz"
    data.write_bytes(b"npz")
    return [submission(p, key, {"digits": data}, "full", "quick", "cells") for key in p.cells]


def test_a_lost_node_is_a_failed_record_and_results_unpack(tmp_path):
    subs = _subs(tmp_path)
    ok = {"raw": {"status": "ok", "parity": {"probe_path": "/node/tmp/probe.npz"},
                  "node": {"hostname": "n1"}, "ray": {"attempt": 1}},
          "files": {"probe.npz": b"P", "stderr.txt": b"E"}}
    (subs[0].cell_dir / "error.json").write_text("{}")  # an earlier attempt's: removed
    fake = FakeRay({"torch": ok, "keras-jax": ray.exceptions.NodeDiedError(
        "Task failed because the node it was running on is dead or unavailable. Node IP: "
        "10.0.0.7, node ID: abc. This can happen if the node was preempted.")})
    ex = rx.RayExecutor("auto", max_retries=0, ray_module=fake)
    started = []
    got = {s.key[3]: raw for s, raw in ex.run(subs, 60.0, started.append)}
    assert [s.key[3] for s in started] == ["torch", "keras-jax"]
    assert got["keras-jax"]["status"] == "failed"
    assert got["keras-jax"]["reason"].startswith("node lost (no retries")
    assert "Node IP: 10.0.0.7" in got["keras-jax"]["reason"]
    assert "This can happen" not in got["keras-jax"]["reason"]
    torch_dir = subs[0].cell_dir
    assert got["torch"]["parity"]["probe_path"] == str(torch_dir / "probe.npz")
    assert (torch_dir / "probe.npz").read_bytes() == b"P"
    assert not (torch_dir / "error.json").exists()
    assert got["torch"]["ray"] == {"attempt": 1, "max_retries": 0}
    call = fake.calls[0]  # each task holds one whole-node slot and no CPU of Ray's count
    assert call["resources"] == {rx.SLOT: 1} and call["num_cpus"] == 0
    assert call["max_retries"] == 0 and call["retry_exceptions"] is False


def test_no_more_cells_in_flight_than_slots_and_none_left_fails_the_rest(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(rx, "NO_SLOT_GRACE_S", 0.0)
    fake = FakeRay({"torch": {"raw": {"status": "ok"}, "files": {}}}, slots=1)
    ex = rx.RayExecutor("auto", max_retries=2, ray_module=fake)
    out = []
    for sub, raw in ex.run(_subs(tmp_path), 60.0):
        out.append((sub.key[3], raw["status"], raw.get("reason", "")))
        fake.slots = 0  # the only node is lost after the first cell
    assert [c["stack"] for c in fake.calls] == ["torch"]  # one slot: one at a time
    assert out[0][:2] == ("torch", "ok")
    assert out[1][:2] == ("keras-jax", "failed") and "no node with a twinbench_slot" in out[1][2]


def test_a_node_with_two_slots_is_refused():
    fake = FakeRay({})
    fake.nodes = lambda: [{"Alive": True, "NodeManagerAddress": "10.0.0.9",
                           "Resources": {rx.SLOT: 2.0}}]
    with pytest.raises(TwinbenchError, match="declares 2 twinbench_slot"):
        rx.RayExecutor("auto", ray_module=fake)


def test_retries_from_env_names_valid_values(monkeypatch):
    monkeypatch.setenv(rx.RETRIES_ENV, "many")
    with pytest.raises(TwinbenchError, match="valid values are 0, 1, 2"):
        rx.retries_from_env()


# --- a real 2-node cluster --------------------------------------------------------------

def _namespace_problem() -> str | None:
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (util-linux / iproute2)"
    r = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "true"],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return f"cannot create network and PID namespaces (needs root): {r.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def cluster_summary() -> dict:
    problem = _namespace_problem()
    if problem:
        pytest.skip(f"2-node Ray test needs a private network namespace: {problem}")
    script = f"ip link set lo up && {sys.executable} {HERE / 'ray_cluster.py'}"
    r = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "bash", "-c",
                        script], capture_output=True, text=True, check=False,
                       timeout=900)
    lines = [x for x in r.stdout.splitlines() if x.startswith("SUMMARY ")]
    assert lines, f"no summary (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    summary = json.loads(lines[-1][len("SUMMARY "):])
    assert r.returncode == 0, f"{summary}\n{r.stderr[-3000:]}"
    return summary


def test_cluster_is_loopback_only_and_leaves_nothing_running(cluster_summary):
    s = cluster_summary
    assert [line.split(":")[1].strip() for line in s["links"]] == ["lo"]
    assert s["listening"] and all(_loopback(a) for a in s["listening"]), s["listening"]
    assert s["ray_stop_rc"] == 0 and s["left_running"] == []


def test_cells_ran_on_both_nodes_and_every_result_is_stored(cluster_summary):
    run1 = cluster_summary["run1"]
    for phase in ("probe", "full"):
        cells = run1[phase]
        assert sorted(c["stack"] for c in cells) == ["torch", "torch#2"]
        assert all(c["status"] == "ok" and c["parity"] for c in cells), cells
        assert {c["node"] for c in cells} == {"head", "worker"}, cells
        assert all(c["hardware_id"] and c["cpu_model"] for c in cells)
    # the parity probes and stderr came back from the nodes into the driver's folders
    files = cluster_summary["run1_files"]
    assert sum(f.startswith("verify/") and f.endswith("probe.npz") for f in files) == 2
    assert sum(f.startswith("cells/") and f.endswith("stderr.txt") for f in files) == 2


def test_a_killed_worker_node_reruns_or_fails_its_cell(cluster_summary):
    s = cluster_summary
    kill = s["kill"]
    assert kill["cell_died_with_parent"], kill
    cells = {c["stack"]: c for c in s["run2"]}
    assert set(cells) == {"torch", "torch#2"}
    lost = cells[kill["stack"]]
    if lost["status"] == "ok":  # Ray reran it on the node left: the head
        assert lost["node"] == "head" and lost["attempt"] >= 1, lost
    else:
        assert lost["status"] == "failed", lost
        assert "node lost" in lost["reason"] or "died" in lost["reason"], lost
    other = next(c for k, c in cells.items() if k != kill["stack"])
    assert other["status"] == "ok"
    assert s["run2_rc"] == (0 if lost["status"] == "ok" else 1)  # `run` exits 1 on a failure
    assert s["resume_rc"] == 0
    assert all(c["status"] == "ok" for c in s["after_resume"]), s["after_resume"]


def _loopback(hex_addr: str) -> bool:
    ip = hex_addr.split(":")[0]
    if len(ip) == 8:  # IPv4 in /proc/net/tcp: little-endian, 127.x.x.x ends in 7F
        return ip.endswith("7F")
    return ip == "0" * 31 + "1" or (ip.startswith("0000000000000000FFFF0000")
                                    and ip.endswith("7F"))
