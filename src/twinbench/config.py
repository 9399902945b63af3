"""Frozen configuration. Every knob that can change a result lives here and is written
into results.json with each cell, so a reader can see what each stack was given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twinbench.recipe import OptimizerConfig, Recipe, resolve_recipes
from twinbench.suite import Suite, load_suite

__all__ = ["OptimizerConfig", "Recipe", "RunConfig", "CellJob", "MAX_SEED"]


# numpy, scikit-learn and PYTHONHASHSEED take seeds below 2**32 (torch below 2**64), and
# repeat r of a cell uses seed + r, r < 100 (the most repeats): the largest --seed is then
# 2**32 - 100, so every seed a run derives stays valid.
MAX_SEED = 2**32 - 100


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


class RunConfig(BaseModel):
    """What `twinbench run` and `twinbench.run()` take."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tasks: tuple[str, ...] = ("quick",)
    stacks: tuple[str, ...] = ()  # empty: every stack
    models: tuple[str, ...] = ()  # empty: each task's default model family
    # Your own model and data (twinbench.byo): "path/model.py:NAME" or "path/model.keras";
    # an .npz, an image folder or a .csv/.tsv (with image_size for the folder).
    model: str | None = None
    data: Path | None = None
    image_size: int | None = Field(None, ge=4, le=1024)
    dataset: str | None = None  # None: each task's default data set
    data_dir: Path | None = None  # local copies of the data files (never downloads)
    holdout: float | None = Field(None, gt=0, lt=1)  # split what the folder holds
    epochs: int | None = Field(None, ge=1, le=1000)  # None: the task's default
    batch_size: int | None = Field(None, ge=1, le=65536)  # None: the task's default
    seed: int = Field(0, ge=0, le=MAX_SEED)
    threads: int = Field(default_factory=lambda: len(available_cpus()), ge=1)
    out: Path | None = None
    cell_timeout_s: float = Field(900.0, gt=0)
    latency_calls: int = Field(300, ge=1)
    # Seconds of timed calls per inference path before it stops short of latency_calls:
    # eager Keras paths on recurrent models take 30-400 ms a call, 300 calls of which
    # would cost minutes. A stopped path records how many calls it got.
    latency_budget_s: float = Field(2.0, gt=0)
    latency_warmup: int = Field(5, ge=2)
    throughput_calls: int = Field(10, ge=1)
    # Inference batch sizes timed in every cell besides 1 and 256 (a sweep's batch axis):
    # samples/s at each on the path that won batch 256.
    infer_batches: tuple[Annotated[int, Field(ge=1, le=65536)], ...] = ()
    warmup_steps: int = Field(10, ge=0)
    optimizer: OptimizerConfig = OptimizerConfig()
    # A training recipe (optimizer with schedule, weight decay and clipping; loss;
    # augmentation) for every task. None: each task's own (a suite task may name one),
    # else `optimizer` with cross-entropy and no augmentation. The cell's job carries the
    # one it trains with, recorded in full in its settings.
    recipe: Recipe | None = None
    # `verify --recipes`: recipes (shipped ones by name, twinbench.recipe.RECIPES, or
    # records) whose 10 steps the parity probe also runs, with schedule, weight decay,
    # clipping and augmentation on.
    parity_recipes: tuple[Recipe, ...] = ()
    dtype: str = "float32"
    # Repeats: each cell runs this many times, each in a fresh process with seed+repeat
    # for the initial weights and batch order, the stack order rotated between repeats.
    repeats: int = Field(1, ge=1, le=100)
    # Time to accuracy: wall time (training + evaluation) to the first epoch at or above.
    target_accuracy: float | None = Field(None, gt=0, le=1)
    cell_memory_mb: float | None = Field(None, gt=0)  # RSS limit per cell (killed past it)
    # A loss that is not finite, or above this multiple of the first epoch's, stops the
    # cell early with status "diverged".
    divergence_factor: float = Field(10.0, gt=1)
    device: Literal["cpu", "cuda"] = "cpu"
    # Parity probes (untimed) that may run at once on this machine. Timed cells always run
    # one at a time: they need the CPUs to themselves.
    probe_jobs: int = Field(1, ge=1, le=64)
    # Contention: before each timed cell, wait up to this many seconds for its CPUs to be
    # quiet (0: do not wait). Every timed cell records the share of its CPUs that other
    # work used while it was timed; above `contended_share` it is `contended`, shown, and
    # left out of the verdicts.
    wait_quiet_s: float = Field(0.0, ge=0, le=3600)
    contended_share: float = Field(0.10, gt=0, lt=1)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # None with executor "ray": start a local Ray
    # MLPerf LoadGen phase after training (short durations in `run`; see `latency`).
    loadgen: bool = True
    loadgen_duration_s: float = Field(0.5, gt=0)  # minimum per LoadGen run
    loadgen_server_steps: int = Field(4, ge=1, le=20)  # bisection steps for Server QPS
    latency_bound_ms: float = Field(10.0, gt=0)  # Server scenario: p99 bound
    # Portability (`twinbench export`, `run --export`): each twin is trained this many
    # epochs in its own export process, exported, and each artifact reloaded and compared.
    export: bool = False  # `run` only: add the export phase after the timed cells
    export_formats: tuple[str, ...] = ()  # empty: every format each stack offers
    export_epochs: int = Field(1, ge=0, le=1000)
    export_tolerance: float = Field(1e-4, gt=0)  # max abs diff of the logits for "ok"
    # A suite (a name, a .toml path, or a Suite): its tasks are the run's tasks unless
    # `tasks` names some of them, and its stacks unless `stacks` is given. The whole
    # suite, targets and sources included, is recorded with the config.
    suite: Suite | None = None

    @field_validator("parity_recipes", mode="before")
    @classmethod
    def _named_recipes(cls, v: object) -> object:
        """Names of shipped recipes ("all": every one) become the recipes themselves."""
        if isinstance(v, (list, tuple)) and v and all(isinstance(r, str) for r in v):
            return tuple(resolve_recipes(list(v)))  # raises "unknown recipe ...; valid"
        return v

    @model_validator(mode="before")
    @classmethod
    def _from_suite(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        if data.get("suite") is None and data.get("model") is None and \
                tuple(data.get("tasks") or ("quick",)) == ("quick",):
            data = {**data, "suite": "quick", "tasks": ()}  # the default run is the quick suite
        if data.get("suite") is None:
            return data
        suite = data["suite"]
        if isinstance(suite, (str, Path)):
            suite = load_suite(suite)
        elif isinstance(suite, dict):
            suite = Suite.model_validate(suite)
        data = {**data, "suite": suite}
        if not data.get("tasks"):
            data["tasks"] = tuple(t.name for t in suite.tasks)
        if not data.get("stacks"):
            data["stacks"] = suite.stacks
        if data.get("repeats") is None:
            data["repeats"] = suite.repeats
        for key, value in suite.settings.given().items():  # the run's own value wins
            if data.get(key) is None:
                data[key] = value
        return data


class CellJob(BaseModel):
    """One cell (task x model x stack), as handed to its own process."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    task: str
    dataset: str
    model: str
    stack: str
    run: RunConfig
    data_path: Path  # the run's prepared arrays (npz), shared by every stack
    cpus: tuple[int, ...]
    spawn_wall: float  # time.time() just before the process was spawned
    result_path: Path
    parity_path: Path
    repeat: int = 0
    mode: Literal["full", "probe"] = "full"  # probe: build and parity probe only, no timing
    parity_level: Literal["quick", "full"] = "quick"  # full adds SGD/Adam steps, 10-step loss
    # The task's test accuracy that counts as "trained" (time to accuracy), and where
    # the figure comes from; None when the task has none (see TaskInfo, suites).
    target_accuracy: float | None = None
    target_source: str | None = None
    byo: Path | None = None  # a user's model: its inspection folder (twinbench.byo.record)
