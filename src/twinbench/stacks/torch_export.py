"""PyTorch exporters. Imported only in an export process (it imports torch).

Each writes one artifact for a trained `TorchStack` and returns what it used. The example
input is the test batch in torch's layout (NCHW images, int64 ids); the batch dimension is
declared dynamic wherever the exporter takes a declaration.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

NAMES = {"input_names": ["input"], "output_names": ["logits"]}


def _onnx_opset(path: Path) -> int | None:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)


def _onnx_dynamo(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    batch = torch.export.Dim("batch")
    prog = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: batch},), **NAMES)
    prog.save(str(path))
    return {"exporter": "torch.onnx.export(dynamo=True) (torch.export-based, the default)",
            "opset": _onnx_opset(path)}


def _onnx_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # it is the legacy path: we know
        torch.onnx.export(model, (x,), str(path), dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **NAMES)
    return {"exporter": "torch.onnx.export(dynamo=False) (TorchScript-based, deprecated)",
            "opset": _onnx_opset(path)}


def _trace(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    torch.jit.trace(model, (x,)).save(str(path))
    return {"exporter": "torch.jit.trace"}


def _script(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    torch.jit.script(model).save(str(path))
    return {"exporter": "torch.jit.script"}


def _torch_export(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(path))
    return {"exporter": "torch.export.export (non-strict) + torch.export.save"}


def _aoti(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    """AOTInductor: the exported program compiled ahead of time to a shared library inside
    a .pt2 package (needs a C++ compiler here; tens of seconds even for a small twin), which
    LibTorch runs from C++ without Python (runtimes/cpp)."""
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch._inductor.aoti_compile_and_package(ep, package_path=str(path))
    return {"exporter": "torch.export.export + torch._inductor.aoti_compile_and_package (CPU)"}


def _state(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    torch.save(model.state_dict(), str(path))
    return {"exporter": "torch.save(model.state_dict())"}


def _litert(model: torch.nn.Module, x: torch.Tensor, path: Path) -> dict:
    import litert_torch  # not installable beside torch 2.13 (see formats.LITERT_TORCH_NOTE)

    litert_torch.convert(model, (x,)).export(str(path))
    return {"exporter": "litert_torch.convert"}


EXPORTERS: dict[str, Callable[[torch.nn.Module, torch.Tensor, Path], dict]] = {
    "onnx": _onnx_dynamo, "onnx-torchscript": _onnx_torchscript,
    "torchscript-trace": _trace, "torchscript-script": _script,
    "torch-export": _torch_export, "aoti": _aoti, "torch-state": _state, "litert": _litert,
}


def export(stack, fmt: str, path: Path, x: np.ndarray) -> dict:
    """Export the trained eager module (`torch-compile` compiles at run time: there is no
    compiled artifact to export), in eval mode."""
    model = stack.model.eval()
    with torch.no_grad():
        meta = EXPORTERS[fmt](model, torch.from_numpy(x), path)
    return {**meta, "input_dtype": str(x.dtype), "exported_from": "the trained eager module"}
