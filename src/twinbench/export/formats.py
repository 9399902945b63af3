"""Export formats, the runtimes that reload them, and which stacks produce which.

Framework-free: names and package metadata only. Everything here is a *request*; whether a
format really exports and reloads on this machine is measured, never assumed.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

from twinbench.stacks import StackInfo, stack_info


@dataclass(frozen=True)
class Runtime:
    name: str
    modules: tuple[str, ...]  # frameworks the reload process may import (others refused)
    packages: tuple[str, ...]  # distributions whose versions the entry records
    loads_with: str  # the documented load call, written for people
    language: str = "Python"  # others run a harness in runtimes/ (export/foreign.py)


@dataclass(frozen=True)
class Format:
    name: str
    framework: str  # "torch" or "keras": which twin exports it
    runtime: str  # key of RUNTIMES
    artifact: str  # file (or folder) name inside the format's own folder
    packages: tuple[str, ...]  # distributions the exporter needs (versions recorded)
    backends: tuple[str, ...] = ("torch", "tensorflow", "jax")  # Keras backends offering it
    # Why a needed package is not in the `export` extra, where pip cannot install it beside
    # the pinned frameworks (checked with `pip install --dry-run -c constraints.txt`).
    install_note: str = ""
    # Runtimes in other languages that reload the same artifact (export/foreign.py).
    also: tuple[str, ...] = ()

    @property
    def runtimes(self) -> tuple[str, ...]:
        return (self.runtime, *self.also)


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("onnxruntime", (), ("onnxruntime", "onnx"), "onnxruntime.InferenceSession"),
    Runtime("tf-saved-model", ("tensorflow",), ("tensorflow-cpu",), "tf.saved_model.load"),
    Runtime("litert", (), ("ai-edge-litert",), "ai_edge_litert.interpreter.Interpreter"),
    Runtime("openvino", (), ("openvino",), "openvino.Core().compile_model"),
    Runtime("torch-jit", ("torch",), ("torch",), "torch.jit.load"),
    Runtime("torch-export", ("torch",), ("torch",), "torch.export.load(...).module()"),
    Runtime("torch-state", ("torch",), ("torch",),
            "torch.load(weights_only=True) into the twin built from code"),
    Runtime("keras", ("keras",), ("keras",),
            "keras.saving.load_model(safe_mode=True), same backend as the source"),
    Runtime("torch-aoti", ("torch",), ("torch",), "torch._inductor.aoti_load_package"),
    # Harnesses in runtimes/: their process imports no framework; they report versions.
    Runtime("onnxruntime-node", (), (), "onnxruntime-node InferenceSession.create "
            "(runtimes/node)", "JavaScript"),
    Runtime("onnxruntime-java", (), (), "ai.onnxruntime OrtEnvironment.createSession "
            "(runtimes/java)", "Java"),
    Runtime("libtorch", (), (), "torch::jit::load (runtimes/cpp)", "C++"),
    Runtime("libtorch-aoti", (), (), "torch::inductor::AOTIModelPackageLoader "
            "(runtimes/cpp)", "C++"),
    Runtime("tfjs", (), (), "tf.loadLayersModel after the tensorflowjs converter",
            "JavaScript"),
)}

ONNX_ELSEWHERE = ("onnxruntime-node", "onnxruntime-java")

LITERT_TORCH_NOTE = ("not in the export extra: every litert-torch release (<= 0.9.3) "
                     "requires torch<2.13, and torch is pinned to 2.13.0")

FORMATS: dict[tuple[str, str], Format] = {(f.framework, f.name): f for f in (
    Format("onnx", "torch", "onnxruntime", "model.onnx", ("onnxscript",), also=ONNX_ELSEWHERE),
    Format("onnx-torchscript", "torch", "onnxruntime", "model.onnx", (), also=ONNX_ELSEWHERE),
    Format("torchscript-trace", "torch", "torch-jit", "model.pt", (), also=("libtorch",)),
    Format("torchscript-script", "torch", "torch-jit", "model.pt", (), also=("libtorch",)),
    Format("torch-export", "torch", "torch-export", "model.pt2", ()),
    Format("aoti", "torch", "torch-aoti", "model.pt2", (), also=("libtorch-aoti",)),
    Format("torch-state", "torch", "torch-state", "state_dict.pt", ()),
    Format("litert", "torch", "litert", "model.tflite", ("litert-torch",),
           install_note=LITERT_TORCH_NOTE),
    Format("keras", "keras", "keras", "model.keras", (), also=("tfjs",)),
    Format("tf-saved-model", "keras", "tf-saved-model", "saved_model", ("tensorflow-cpu",)),
    Format("onnx", "keras", "onnxruntime", "model.onnx", ("tf2onnx", "jax2onnx", "onnxscript"),
           also=ONNX_ELSEWHERE),
    Format("litert", "keras", "litert", "model.tflite", ("tensorflow-cpu", "litert-torch"),
           install_note=LITERT_TORCH_NOTE),
    Format("openvino", "keras", "openvino", "model.xml", ("openvino",)),
    Format("torch-export", "keras", "torch-export", "model.pt2", (), backends=("torch",)),
)}


def language(runtime: str) -> str:
    """The runtime's language; "?" for a name this version does not know (old JSON)."""
    r = RUNTIMES.get(runtime)
    return r.language if r else "?"


def formats_for(info: StackInfo) -> list[Format]:
    """Every format the stack's framework offers (on its Keras backend)."""
    return [f for f in FORMATS.values() if f.framework == info.framework
            and (info.keras_backend is None or info.keras_backend in f.backends)]


def all_format_names() -> list[str]:
    return list(dict.fromkeys(f.name for f in FORMATS.values()))


def resolve_formats(names: list[str] | None) -> list[str]:
    """Validate format names (empty or "all": every format); the error lists valid ones."""
    valid = all_format_names()
    if not names or names == ["all"]:
        return valid
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; valid: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def selected(stack: str, names: list[str]) -> list[Format]:
    """The stack's formats among `names`, in registry order."""
    return [f for f in formats_for(stack_info(stack)) if f.name in names]


def versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    """Installed versions from package metadata (no import); None where missing."""
    out: dict[str, str | None] = {}
    for p in packages:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out
