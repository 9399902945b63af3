"""`twinbench twin path/model.py:NAME --to torch|keras`: the generated twin's source, as
the runs generate it, printed for a person to read (or keep)."""

from __future__ import annotations

import os
from typing import Any

from twinbench.byo.graph import Unsupported
from twinbench.byo.source import ByoError, build_model, framework_of, parse_model
from twinbench.stacks import module_version

FRAMEWORKS = ("torch", "keras")


def _example(shape: tuple[int, ...] | None, dtype: str, spec: str) -> Any:
    import torch

    if not shape:
        raise ByoError(f"--model {spec}: a PyTorch module declares no input shape; pass "
                       "--input-shape as forward() takes one sample (e.g. 1,28,28)")
    if dtype.startswith("int"):
        return torch.ones((2, *shape), dtype=torch.int64)
    return torch.zeros((2, *shape), dtype=torch.float32)


def generate(spec: str, to: str, input_shape: tuple[int, ...] | None = None,
             dtype: str = "float32") -> str:
    """The twin's source; ByoError (one line) for a bad source or an unsupported layer."""
    if to not in FRAMEWORKS:
        raise ByoError(f"--to {to}: valid: {', '.join(FRAMEWORKS)}")
    os.environ.setdefault("KERAS_BACKEND", next(
        (b for b in ("jax", "tensorflow", "torch") if module_version(b)), "jax"))
    src = parse_model(spec)
    model = build_model(src)
    framework = framework_of(model, src)
    if framework == to:
        raise ByoError(f"--model {spec}: is a {framework} model already; its twin is "
                       f"--to {'keras' if to == 'torch' else 'torch'}")
    try:
        if framework == "keras":
            from twinbench.byo.keras_reader import read_keras
            from twinbench.byo.torch_writer import write

            if not model.built and input_shape:
                model.build((None, *input_shape))
            return write(read_keras(model, src.name)).source
        from twinbench.byo.keras_writer import write as write_keras
        from twinbench.byo.torch_reader import read_torch

        return write_keras(read_torch(model.eval(), src.name,
                                      _example(input_shape, dtype, spec)))
    except Unsupported as e:
        raise ByoError(f"--model {spec}: {e}") from None
