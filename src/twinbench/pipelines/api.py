"""`twinbench pipelines` in Python: plan the measurements, prepare the data once, spawn one
process per measurement (as `twinbench run` does per cell), write `pipelines.json`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twinbench import environment
from twinbench.errors import TwinbenchError
from twinbench.plan import Events, new_run_id
from twinbench.config import MAX_SEED, OptimizerConfig, available_cpus
from twinbench.data.registry import DATASETS, TASKS, resolve_tasks
from twinbench.pipelines import PIPELINES, incompatible, resolve_pipelines
from twinbench.pipelines.job import PipelineJob
from twinbench.pipelines.spec import PipelineData, image_data
from twinbench.results import Cell, Results
from twinbench.process.spawn import process_env
from twinbench.runner.local import run_cell
from twinbench.stacks import module_version, resolve_stacks, stack_info

# Shift padding and flips per image task: digits are not mirror symmetric (flip off).
IMAGE_AUGMENT = {"digits": {"pad": 2, "flip": False}}
ALONE = "-"  # the `stack` of a pipeline-alone measurement


# The default plan: one task, each framework's main pipeline (and numpy's), feeding one
# stack per backend: 4 pipelines alone and 8 training measurements (the full plan was
# more than 60 processes and took 1,090 s on the 2-core machine, measured). `--full` gives
# every task, pipeline and stack.
QUICK_PLAN = {"tasks": ("digits",), "stacks": ("torch", "keras-tensorflow", "keras-jax"),
              "pipelines": ("numpy", "torch-dataloader-0", "tf-data", "keras-pydataset-0")}
FULL_PLAN = {"tasks": ("digits", "text"), "stacks": (), "pipelines": ()}  # (): every one


class PipelineConfig(BaseModel):
    """Every knob of a pipelines run; written into pipelines.json. Tasks, stacks and
    pipelines not given come from the quick plan, or with `full` from the full one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    full: bool = False
    tasks: tuple[str, ...] = ()
    stacks: tuple[str, ...] = ()  # empty after defaults: every stack
    pipelines: tuple[str, ...] = ()  # empty after defaults: every pipeline
    measure: Literal["both", "pipeline", "train"] = "both"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    threads: int = Field(default_factory=lambda: len(available_cpus()), ge=1)
    batch_size: int | None = Field(None, ge=1, le=65536)  # None: the task's default
    epochs: int = Field(2, ge=1, le=100)  # training epochs per stack x pipeline
    pipeline_epochs: int = Field(3, ge=1, le=100)  # passes of a pipeline alone
    warmup_epochs: int = Field(1, ge=0)  # not summarised (tracing, compiling, first alloc)
    samples: int | None = Field(None, ge=1)  # the first N training samples only
    augment: bool = True  # image shift (and flip); off: every pipeline deterministic
    out: Path | None = None
    cell_timeout_s: float = Field(900.0, gt=0)
    optimizer: OptimizerConfig = OptimizerConfig()

    @model_validator(mode="before")
    @classmethod
    def _plan_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        defaults = FULL_PLAN if data.get("full") else QUICK_PLAN
        return {**data, **{k: v for k, v in defaults.items() if not data.get(k)}}


@dataclass(frozen=True)
class Measurement:
    task: str
    pipeline: str
    stack: str | None  # None: the pipeline alone


def _names(fn, names: tuple[str, ...]) -> list[str]:
    try:
        return fn(list(names))
    except ValueError as e:
        raise TwinbenchError(str(e)) from None


def plan(config: PipelineConfig) -> tuple[list[Measurement], list[dict[str, str]]]:
    """The measurements, and the (task, pipeline, stack) pairs that cannot be made."""
    tasks = _names(resolve_tasks, config.tasks)
    stacks = _names(resolve_stacks, config.stacks)
    pipes = _names(resolve_pipelines, config.pipelines)
    for name, n in (("epochs", config.epochs), ("pipeline-epochs", config.pipeline_epochs)):
        if config.warmup_epochs >= n:
            raise TwinbenchError(f"--{name} {n} leaves no epoch after --warmup-epochs "
                                 f"{config.warmup_epochs}; valid: --{name} "
                                 f"{config.warmup_epochs + 1} or more")
    if config.threads > len(available_cpus()):
        raise TwinbenchError(f"--threads {config.threads} exceeds the {len(available_cpus())} "
                             f"CPUs this process may use; valid: 1..{len(available_cpus())}")
    out, skipped = [], []
    for task in tasks:
        kind = TASKS[task].kind
        if config.measure != "train":
            out += [Measurement(task, p, None) for p in pipes if p != "keras-layers-inside"]
        if config.measure == "pipeline":
            continue
        for s in stacks:
            for p in pipes:
                reason = incompatible(p, s, kind)
                if reason:
                    skipped.append({"task": task, "pipeline": p, "stack": s, "reason": reason})
                else:
                    out.append(Measurement(task, p, s))
    return out, skipped


def prepare_data(task: str, config: PipelineConfig, folder: Path) -> Path:
    """The task's training split as the pipelines start from it: digits' images in [0, 1],
    the synthetic task's raw texts with the vocabulary `twinbench run` builds."""
    from twinbench.data.digits import load_digits
    from twinbench.data.text import Vocabulary
    from twinbench.data.text_sets import load_synthetic

    n = config.samples
    if TASKS[task].kind == "image":
        d = load_digits(config.seed)
        data = image_data(task, d.x_train[:n], d.y_train[:n], d.classes, config.augment,
                          **IMAGE_AUGMENT[task])
    else:
        raw = load_synthetic(config.seed)
        texts = raw.train_texts[:n]
        data = PipelineData(task, "text", np.array(texts, dtype=str),
                            np.asarray(raw.train_labels[:n], dtype=np.int64), raw.classes,
                            vocab=Vocabulary.build(raw.train_texts),
                            length=DATASETS[TASKS[task].dataset].sequence_length)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}.npz"
    data.save(path)
    return path


def _missing(m: Measurement) -> list[str]:
    mods = set(PIPELINES[m.pipeline].modules) | set(stack_info(m.stack).modules if m.stack else ())
    return [x for x in sorted(mods) if module_version(x) is None]


def job_for(m: Measurement, config: PipelineConfig, data: Path, cell_dir: Path) -> PipelineJob:
    train = m.stack is not None
    return PipelineJob(
        mode="train" if train else "pipeline", task=m.task, pipeline=m.pipeline,
        stack=m.stack, model=TASKS[m.task].model if train else None, data_path=data,
        result_path=cell_dir / "result.json", cpus=tuple(available_cpus()[: config.threads]),
        threads=config.threads, seed=config.seed,
        batch_size=config.batch_size or TASKS[m.task].batch_size,
        epochs=config.epochs if train else config.pipeline_epochs,
        warmup_epochs=config.warmup_epochs, optimizer=config.optimizer,
        spawn_wall=time.time())


def execute(m: Measurement, config: PipelineConfig, data: Path, out: Path) -> Cell:
    """One measurement in its own process; missing frameworks make a skipped cell."""
    head: dict[str, Any] = {"task": m.task, "dataset": TASKS[m.task].dataset,
                            "model": TASKS[m.task].model if m.stack else "-",
                            "stack": m.stack or ALONE, "pipeline": m.pipeline,
                            "measure": "train" if m.stack else "pipeline"}
    missing = _missing(m)
    if missing:
        return Cell(**head, status="skipped",
                    reason=f"{', '.join(missing)} not installed: pip install 'twinbench[all]'")
    cell_dir = out / "pipelines" / f"{m.task}__{m.pipeline}__{m.stack or 'alone'}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    job = job_for(m, config, data, cell_dir)
    backend = stack_info(m.stack).keras_backend if m.stack else PIPELINES[m.pipeline].keras_backend
    env = process_env(config.threads, config.seed, backend)
    raw = run_cell(job, None, cell_dir, config.cell_timeout_s,
                   entry="twinbench.pipelines.child", env=env)
    cell = Cell(**head, **raw)
    eq = raw.get("equivalence")
    if cell.status == "ok" and eq is not None and not eq["pass"]:
        cell.status, cell.reason = "unverified", f"batches differ from the numpy reference: {eq}"
    return cell


def output_dir(config: PipelineConfig, run_id: str) -> Path:
    return Path(config.out) if config.out else Path("runs") / f"pipelines-{run_id}"


def run(config: PipelineConfig | None = None, events: Events | None = None,
        **overrides: Any) -> Results:
    """Every measurement of `config`, one process each; pipelines.json after each."""
    config = config or PipelineConfig(**overrides)
    events = events or Events()
    measurements, not_applicable = plan(config)
    run_id = new_run_id()  # the same-second guard as a run's: two never share a folder
    out = output_dir(config, run_id)
    out.mkdir(parents=True, exist_ok=True)
    data = {t: prepare_data(t, config, out / "data") for t in dict.fromkeys(
        m.task for m in measurements)}
    results = Results(run_id=run_id, environment=environment.capture(),
                      config=config.model_dump(mode="json"), not_applicable=not_applicable)
    events.on_start(len(measurements), "pipeline measurements")
    for m in measurements:
        events.on_cell_start(f"{m.task}/{m.pipeline}", m.stack or "alone")
        results.cells.append(execute(m, config, data[m.task], out))
        results.write(out, "pipelines.json")
        events.on_cell_end(results.cells[-1])
    results.write(out, "pipelines.json")
    return results
