"""The driver's side of `--model` and `--data` (framework-free): the cells they add to a
plan, the data they prepare, the inspection of the model in its own process, and which
stacks a model without a twin skips. Called from a few small hooks in twinbench.api."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from twinbench.byo.record import ByoRecord, load_record, record_dir
from twinbench.byo.source import ByoError, ModelSource, parse_model

CUSTOM_TASK = "custom"  # the task of a run on --data
DEFAULT_FAMILY = {"image": "cnn", "text": "bilstm"}  # --data without --model
INSPECT_TIMEOUT_S = 600.0
Triple = tuple[str, str, str]


def model_name(src: ModelSource) -> str:
    """The model's name in the run: NAME (or the .keras file's stem), never a built-in
    family's name (its code would be shown as this model's)."""
    from twinbench.models import FAMILIES

    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in src.name) or "model"
    return f"{name}-byo" if name in FAMILIES else name


def source(config: Any) -> ModelSource | None:
    return parse_model(config.model) if config.model else None


def task_models(config: Any, builtin: Callable[[Any], list[Triple]]) -> list[Triple]:
    """(task, dataset, model) of a run with --model and/or --data. `builtin`: the plan's
    own expansion of tasks and families (for --model on built-in data)."""
    from twinbench.byo.data import data_name

    src = source(config)
    if config.data is None:  # the user's model on the tasks' data (default: digits)
        tasks = config.tasks if config.tasks != ("quick",) else ("digits",)
        base = builtin(config.model_copy(update={"models": (), "tasks": tasks}))
        return list(dict.fromkeys((t, d, model_name(src)) for t, d, _ in base))
    path = Path(config.data).expanduser()
    if not path.exists():
        raise ByoError(f"--data {path}: no such file or folder")
    kind = "text" if load_data(config).x_train.ndim == 2 else "image"  # validates it all
    models = [model_name(src)] if src else list(config.models) or [DEFAULT_FAMILY[kind]]
    if not src:
        check_families(models, kind, path)
    return [(CUSTOM_TASK, data_name(path), m) for m in models]


def check_families(models: list[str], kind: str, path: Path) -> None:
    """--data with --models: each family must take this kind of data."""
    from twinbench.models import FAMILIES, resolve_models, spec_module

    try:
        resolve_models(models)
    except ValueError as e:
        raise ByoError(str(e)) from None
    fit = [f for f in FAMILIES if spec_module(f).KIND == kind]
    for m in models:
        if m not in fit:
            raise ByoError(f"model {m!r} does not fit --data {path} ({kind}); valid: "
                           f"{', '.join(fit)}")


def task_info(config: Any) -> Any:
    """The TaskInfo of --data: its kind, 3 epochs and batch 32 unless given."""
    from twinbench.byo.data import data_name
    from twinbench.data.registry import TaskInfo

    path = Path(config.data).expanduser()
    kind = "text" if load_data(config).x_train.ndim == 2 else "image"
    return TaskInfo(CUSTOM_TASK, kind, data_name(path), DEFAULT_FAMILY[kind], epochs=3,
                    batch_size=32)


_LOADED: dict[tuple, Any] = {}  # the plan validates the data, the run reuses it


def load_data(config: Any) -> Any:
    from twinbench.byo.data_files import load_user_data

    key = (str(Path(config.data).expanduser().resolve()), config.seed, config.holdout,
           config.image_size)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_user_data(Path(config.data), config.seed, config.holdout,
                                      config.image_size)
    return _LOADED[key]


def is_byo(config: Any, model: str) -> bool:
    src = source(config)
    return src is not None and model == model_name(src)


def inspect_models(p: Any, data_paths: dict[str, Path]) -> None:
    """Inspect the user's model on each data set of the plan (in a child process): the
    records every cell of it reads. Raises ByoError (one line) on a bad model."""
    src = source(p.config)
    if src is None:
        return
    seeds = [p.config.seed + r for r in range(p.config.repeats)]
    pairs = dict.fromkeys((key[2], key[1]) for key in p.cells if is_byo(p.config, key[2]))
    for model, dataset in pairs:
        folder = record_dir(p.out_dir, model, dataset)
        folder.mkdir(parents=True, exist_ok=True)
        job = {"source": src.record(), "name": model, "out_dir": str(folder.resolve()),
               "data_path": str(Path(data_paths[dataset]).resolve()), "seeds": seeds}
        run_inspection(folder, job, p.config.threads)


def _inspection_env(threads: int) -> dict[str, str]:
    """Keras reads the model on the first installed backend (JAX first: it imports
    fastest); the threads are the run's."""
    from twinbench.process.spawn import process_env
    from twinbench.stacks import module_version

    backend = next((b for b in ("jax", "tensorflow", "torch") if module_version(b)), None)
    return process_env(threads, 0, backend)


def run_inspection(folder: Path, job: dict, threads: int) -> None:
    """Read the user's model in its own process (the one process core: process.spawn)."""
    from twinbench.process.spawn import spawn

    job_path = folder / "inspect.json"
    job_path.write_text(json.dumps(job, indent=2))
    (folder / "error.json").unlink(missing_ok=True)
    done = spawn("twinbench.byo.inspect", job_path, _inspection_env(threads),
                 INSPECT_TIMEOUT_S, logs=(folder / "stderr.txt", folder / "stdout.txt"),
                 what="model inspection")
    if done.reason is None:
        return
    error = folder / "error.json"
    if error.exists():
        raise ByoError(json.loads(error.read_text())["reason"])
    tail = done.stderr_tail.splitlines()
    raise ByoError(f"--model {job['source']['spec']}: reading it failed "
                   f"({tail[-1][:200] if tail else done.reason}; see {folder / 'stderr.txt'})")


def record_for(p: Any, key: tuple) -> ByoRecord | None:
    if not is_byo(p.config, key[2]):
        return None
    return load_record(record_dir(p.out_dir, key[2], key[1]))


def skip_reason(p: Any, key: tuple, framework: str) -> str | None:
    """Why a stack of `framework` cannot run this cell's model: it has no twin there."""
    rec = record_for(p, key)
    if rec is None or rec.native(framework) or rec.twin_file is not None:
        return None
    return rec.refusal
