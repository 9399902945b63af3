"""One pipeline measurement, as handed to its own process (framework-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from twinbench.config import OptimizerConfig


class PipelineJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # pipeline: the pipeline alone; train: a stack's training fed by it; batches: write the
    # first epoch's batches to `batches_path` (the equivalence tests).
    mode: Literal["pipeline", "train", "batches"]
    task: str
    pipeline: str
    stack: str | None = None  # train only
    model: str | None = None  # train only: the twin's family
    data_path: Path
    result_path: Path
    batches_path: Path | None = None
    cpus: tuple[int, ...]
    threads: int
    seed: int
    batch_size: int
    epochs: int  # the first `warmup_epochs` are not summarised
    warmup_epochs: int
    optimizer: OptimizerConfig = OptimizerConfig()
    spawn_wall: float
