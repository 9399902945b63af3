"""What machine and software a run measured on. Reads files and metadata; imports no
framework."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path

from twinbench.stacks import DISTRIBUTIONS, module_version

ENV_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "XLA_", "TF_", "KERAS_", "JAX_", "TORCH",
                "ONEDNN", "DNNL_", "KMP_", "CUDA_VISIBLE", "PYTHONHASHSEED")
PACKAGES = ("numpy", "scipy", "scikit-learn", "pydantic", "keras", "torch", "tensorflow-cpu",
            "tensorflow", "jax", "jaxlib", "onnx", "onnxruntime", "mlcommons-loadgen", "ray")
# Flags that decide which kernels a framework may use (SIMD width, matrix units).
KEY_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni",
             "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve")
# What a comparison across runs must agree on (anything else differing is noted only).
# The fields that can change a measurement: one list, for `run --resume` (the machine may
# have changed since the run's start) and for `compare` (two runs' machines) alike.
COMPARABLE = ("cpu_model", "cores", "cpu_flags", "affinity", "memory_gb", "governor", "os",
              "python", "packages", "frameworks", "env", "git_commit", "twinbench", "gpu",
              "test_hooks")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD/matrix flags of interest that the CPU reports (x86 `flags`, ARM `Features`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in KEY_FLAGS if f in have]
    except OSError:
        pass
    return []


def governor() -> str | None:
    """cpufreq scaling governor of CPU 0, where the kernel exposes it (often not in VMs)."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def gpu() -> list[str]:
    """GPU names from nvidia-smi, if there is one (no framework import)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
        return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        return []


def memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        return None


def gpu_models() -> list[str]:
    """"name, memory" of each NVIDIA GPU, from nvidia-smi (no framework import); [] when
    there is none or no driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] \
        if out.returncode == 0 else []


def node_fingerprint() -> dict[str, object]:
    """The hardware a cell ran on, for grouping results by machine type.

    `hardware_id` hashes only what makes two machines comparable (CPU model, core count,
    whole GiB of memory, GPUs), so every node of one instance type shares it; `hostname`
    tells the machines apart.
    """
    from twinbench.version import __version__

    memory = memory_gb()
    hardware = {"cpu_model": cpu_model(), "cores": os.cpu_count(),
                "memory_gb": round(memory) if memory is not None else None,
                "gpus": gpu_models()}
    digest = hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()
    return {**hardware, "memory_gb": memory, "hardware_id": digest[:12],
            "hostname": socket.gethostname(), "affinity": sorted(os.sched_getaffinity(0)),
            "twinbench": __version__}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def testing_hooks() -> dict[str, str]:
    """The test-only variables that are set (faults injected, broken twins offered): a
    run measured with any of them says so."""
    from twinbench.hooks import TEST_HOOKS

    return {k: os.environ[k] for k in TEST_HOOKS if k in os.environ}


def capture() -> dict[str, object]:
    from twinbench.version import __version__

    out = {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "governor": governor(),
        "memory_gb": memory_gb(),
        "gpu": gpu(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "frameworks": {m: module_version(m) for m in DISTRIBUTIONS},
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
        "twinbench": __version__,
        "git_commit": git_commit(),
    }
    hooks = testing_hooks()
    if hooks:  # absent from normal runs: their results.json stays as it was
        out["test_hooks"] = hooks
    return out


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two captured environments, one short line per difference,
    limited to what can change a measurement (COMPARABLE)."""
    out = []
    for key in COMPARABLE:
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            for k in sorted(set(va) | set(vb)):
                if va.get(k) != vb.get(k):
                    out.append(f"{key}.{k}: {va.get(k)} vs {vb.get(k)}")
        elif va != vb:
            out.append(f"{key}: {va} vs {vb}")
    return out
