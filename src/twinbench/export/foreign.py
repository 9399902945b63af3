"""Runtimes in other languages: each a small harness in `runtimes/` (JavaScript, Java, C++)
that reloads an artifact in its own process, times its own calls and writes the logits back.

The protocol (runtimes/README.md): the reload process writes the test batch as raw
little-endian bytes plus a JSON header ({"dtype", "shape", "data"}); the harness is run as
`<command> ARTIFACT INPUT.json OUT_DIR CALLS WARMUP BUDGET_S THREADS` and writes
`batch1.bin` (each sample's float32 logits at batch 1), `batchn.bin` (the whole batch in
one call) and `result.json` (language, versions, load_ms, first_call_ms, latency_ms,
settings; or "error" and "stage"). The diffs and percentiles are computed here, by the same
code as the Python runtimes', so every runtime is judged alike.

Framework-free: the driver asks `unavailable` before spawning (a missing harness is
`skipped`, with the command that installs it); the reload process calls `measure`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETUP = "make setup-runtimes"
# tensorflowjs was checked with `pip install --dry-run tensorflowjs -c constraints.txt`.
TFJS_NOTE = ("not checked: tensorflowjs does not install beside the pins (every 4.x needs "
             "packaging~=23.1 or protobuf<3.20; pip falls back to 3.15.0, older than Keras 3, "
             "which installs `tensorflow` over `tensorflow-cpu`); Keras reaches JavaScript "
             "through its ONNX export in onnxruntime-node")


class HarnessError(Exception):
    """The harness's own one-line error (its result.json "error"), or why it gave none."""

    def __init__(self, stage: str, line: str) -> None:
        super().__init__(line)
        self.stage = stage


@dataclass(frozen=True)
class Harness:
    runtime: str  # key of formats.RUNTIMES
    tool: str  # the program on PATH it needs ("" where none: a built binary)
    built: str  # file under runtimes/ that setup produces
    argv: tuple[str, ...]  # the command before the protocol's arguments; {root} expands
    setup_log: str  # runtimes/.setup/<name>.txt: the last setup's failure line, if any
    never: str = ""  # why this runtime is never checked by this version


HARNESSES: dict[str, Harness] = {h.runtime: h for h in (
    Harness("onnxruntime-node", "node", "node/node_modules/onnxruntime-node/package.json",
            ("node", "{root}/node/ort.mjs"), "node"),
    Harness("onnxruntime-java", "java", "java/target/twinbench-runtime-java.jar",
            ("java", "-jar", "{root}/java/target/twinbench-runtime-java.jar"), "java"),
    Harness("libtorch", "", "cpp/build/twinbench_libtorch",
            ("{root}/cpp/build/twinbench_libtorch", "torchscript"), "cpp"),
    Harness("libtorch-aoti", "", "cpp/build/twinbench_libtorch",
            ("{root}/cpp/build/twinbench_libtorch", "aoti"), "cpp"),
    Harness("tfjs", "node", "", (), "node", never=TFJS_NOTE),
)}


def root() -> Path:
    """runtimes/ of this checkout (TWINBENCH_RUNTIMES overrides: an installed package has
    no runtimes/ beside it)."""
    env = os.environ.get("TWINBENCH_RUNTIMES")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "runtimes"


def _last_setup_failure(h: Harness) -> str:
    try:
        line = (root() / ".setup" / f"{h.setup_log}.txt").read_text().strip()
    except OSError:
        return ""
    return f" (its last run here failed: {line[:300]})" if line else ""


def unavailable(runtime: str) -> str | None:
    """Why the runtime cannot run here (the entry is `skipped`), or None."""
    h = HARNESSES[runtime]
    if h.never:
        return h.never
    if h.tool and shutil.which(h.tool) is None:
        return f"{h.tool} not found on PATH: install it, then `{SETUP}`"
    if not (root() / h.built).is_file():
        return f"not installed: run `{SETUP}`{_last_setup_failure(h)}"
    return None


def write_input(x: np.ndarray, folder: Path) -> Path:
    """The test batch as raw little-endian bytes and its JSON header; the header's path."""
    x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
    x.tofile(folder / "input.bin")
    header = folder / "input.json"
    header.write_text(json.dumps({"dtype": x.dtype.name, "shape": list(x.shape),
                                  "data": "input.bin"}))
    return header


def onnx_input_dtype(path: Path) -> str | None:
    """The ONNX graph's declared input dtype (the Python onnxruntime loader asks its session;
    a harness is handed the right dtype instead). None where the file does not parse: the
    harness then reports that itself."""
    try:
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        elem = graph.input[0].type.tensor_type.elem_type
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).name
    except Exception:  # noqa: BLE001 (a corrupt file is the harness's finding to report)
        return None


def _run(h: Harness, job, header: Path, out: Path) -> dict:
    """Run the harness; its result.json (with "error" where it failed), or a HarnessError
    where it wrote none (a crash)."""
    argv = [a.replace("{root}", str(root())) for a in h.argv]
    r = job.run
    argv += [str(job.artifact), str(header), str(out), str(r.latency_calls),
             str(r.latency_warmup), str(r.latency_budget_s), str(r.threads)]
    with open(out / "harness.stderr.txt", "wb") as err:
        # Same process group as this reload process: the driver's time-out kills both.
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                            check=False).returncode
    try:
        got = json.loads((out / "result.json").read_text())
    except (OSError, ValueError):
        text = (out / "harness.stderr.txt").read_text(errors="replace")
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
        raise HarnessError("run", f"{h.runtime} harness exited {rc} without a result: "
                                  f"{line[:300]}") from None
    return got


def _logits(path: Path, like: np.ndarray) -> np.ndarray:
    got = np.fromfile(path, dtype="<f4")
    if got.size != like.size:
        raise HarnessError("run", f"{path.name}: {got.size} logits, expected {like.size}")
    return got.reshape(like.shape).astype(np.float64)


def measure(job, result: dict) -> None:
    """The reload process's `measure` for a harness runtime: the same keys as the Python
    runtimes' (reload.measure), from the harness's files."""
    from twinbench.measure.stats import percentiles

    h = HARNESSES[job.runtime]
    out = job.result_path.parent
    x = np.load(job.input_path)
    declared = onnx_input_dtype(job.artifact) if job.artifact.suffix == ".onnx" else None
    dtype = declared or job.input_dtype
    header = write_input(x.astype(dtype), out)  # ids: a lossless cast
    result["input_dtype"] = dtype
    source = np.load(job.source_path).astype(np.float64).reshape(len(x), -1)
    got = _run(h, job, header, out)
    result["runtime_versions"].update(got.get("versions", {}))
    if "error" in got:
        raise HarnessError(str(got.get("stage", "run")), str(got["error"])[:400])
    result["runtime_settings"] = got.get("settings", {})
    result["load_s"] = got["load_ms"] / 1e3
    result["first_call_ms"] = got["first_call_ms"]
    result["max_abs_diff"] = float(np.max(np.abs(_logits(out / "batch1.bin", source) - source)))
    if got.get("batch_n_error"):
        result["batch_n"] = {"n": len(x), "error": got["batch_n_error"]}
    else:
        whole = _logits(out / "batchn.bin", source)
        result["batch_n"] = {"n": len(x), "max_abs_diff": float(np.max(np.abs(whole - source)))}
    ms = got["latency_ms"]
    result["latency_b1_ms"] = {**percentiles(ms), "calls": len(ms),
                               "budget_hit": len(ms) < job.run.latency_calls,
                               "timed_by": f"the {got.get('language', '?')} harness"}
