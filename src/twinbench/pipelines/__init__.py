"""Input pipelines: the same preprocessing expressed in each framework's input stack,
measured alone and feeding each compatible stack's training step.

Framework-free: this module names the pipelines and decides which stack each can feed.
The implementations (`numpy_pipe`, `torch_pipe`, `tf_pipe`, `keras_pipe`) are imported
only inside a measurement's own process (`twinbench.pipelines.child`); the transforms
and their numpy reference are in `spec.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from twinbench.stacks import StackInfo, stack_info


@dataclass(frozen=True)
class PipelineInfo:
    name: str
    module: str  # twinbench.pipelines.<module> implements it
    modules: tuple[str, ...]  # frameworks its process imports (besides the stack's)
    workers: int  # parallel loaders: DataLoader processes, PyDataset threads
    # Keras backend of the pipeline-alone measurement. A PyDataset is numpy and runs the
    # same on any; "jax" because Keras's numpy backend imports jax anyway.
    keras_backend: str | None
    description: str


PIPELINES: dict[str, PipelineInfo] = {p.name: p for p in (
    PipelineInfo("numpy", "numpy_pipe", (), 0, None,
                 "numpy, the whole epoch vectorised, then sliced into batches"),
    PipelineInfo("torch-dataloader-0", "torch_pipe", ("torch",), 0, None,
                 "torch Dataset + DataLoader, in the training process"),
    PipelineInfo("torch-dataloader-2", "torch_pipe", ("torch",), 2, None,
                 "torch Dataset + DataLoader, 2 worker processes"),
    PipelineInfo("tf-data", "tf_pipe", ("tensorflow",), 0, None,
                 "tf.data: map (AUTOTUNE), batch, prefetch (AUTOTUNE)"),
    PipelineInfo("keras-pydataset-0", "keras_pipe", ("keras",), 0, "jax",
                 "keras.utils.PyDataset, numpy batches, no workers"),
    PipelineInfo("keras-pydataset-2", "keras_pipe", ("keras",), 2, "jax",
                 "keras.utils.PyDataset, numpy batches, 2 worker threads"),
    PipelineInfo("keras-layers-outside", "keras_pipe", ("keras", "tensorflow"), 0, "tensorflow",
                 "Keras preprocessing layers mapped over a batched tf.data pipeline"),
    PipelineInfo("keras-layers-inside", "keras_pipe", ("keras",), 0, None,
                 "Keras preprocessing layers in front of the twin, inside the train step"),
)}


def resolve_pipelines(names: list[str] | None) -> list[str]:
    """Validate pipeline names (None or "all": every one); the error lists the valid ones."""
    if not names or names == ["all"]:
        return list(PIPELINES)
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ValueError(f"unknown pipeline {unknown[0]!r}; valid: {', '.join(PIPELINES)}")
    return list(dict.fromkeys(names))


def incompatible(pipeline: str, stack: str, kind: str) -> str | None:
    """Why `pipeline` cannot feed `stack` on a `kind` task, or None when it can."""
    info, st = PIPELINES[pipeline], stack_info(stack)
    if pipeline.startswith("torch-dataloader") and st.backend != "torch":
        return "a DataLoader feeds stacks that run on PyTorch"
    if ("keras" in info.modules or "tensorflow" in info.modules) and st.framework != "keras":
        return "feeds Keras's model.fit"
    if pipeline == "keras-layers-inside" and kind == "text" and stack != "keras-tensorflow":
        return ("TextVectorization inside a model needs TensorFlow string tensors and "
                "cannot be XLA-compiled")
    return None


def process_modules(info: PipelineInfo, stack: StackInfo | None) -> tuple[str, ...]:
    """The frameworks a measurement's process may import; the others are refused."""
    mods = set(info.modules) | set(stack.modules if stack else ())
    if info.keras_backend and stack is None:
        mods.add(info.keras_backend)
    return tuple(m for m in ("torch", "tensorflow", "jax", "keras") if m in mods)
