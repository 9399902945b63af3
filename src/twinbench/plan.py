"""The plan of a run: which cells run, in what order, under which id and in which folder,
decided and validated before anything starts (`plan`), or read back from the history for a
resume (`resume_plan`); and the hooks a progress display gets (`Events`). Framework-free."""

from __future__ import annotations

import re
import secrets
import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from twinbench.byo import plan as byo_plan
from twinbench.config import RunConfig, available_cpus
from twinbench.data.registry import TASKS, TaskInfo, resolve_dataset, resolve_tasks
from twinbench.errors import TwinbenchError
from twinbench.models import resolve_models, run_knobs, spec_module
from twinbench.process.progress import CellProgress
from twinbench.results import Cell, CellKey
from twinbench.stacks import resolve_stacks
from twinbench.store.db import Store, builtin_db_path


@dataclass
class Events:
    """Hooks for a progress display; every one is optional."""

    on_start: Callable[[int, str], None] = lambda total, phase: None
    on_cell_start: Callable[[str, str], None] = lambda task, stack: None
    on_cell_end: Callable[[Cell], None] = lambda cell: None
    on_warning: Callable[[str], None] = lambda message: None
    # The running cell's phase (train epoch k/n with an ETA, latency, LoadGen...), as the
    # cell reports it; repeated about once a second so a shown ETA counts down.
    on_cell_progress: Callable[[str, str, CellProgress], None] = \
        lambda task, stack, progress: None


@dataclass(frozen=True)
class Plan:
    config: RunConfig
    cells: list[CellKey]  # in execution order: repeats outermost, stacks rotated
    out_dir: Path
    run_id: str
    cpus: tuple[int, ...]

    def probe_cells(self) -> list[CellKey]:
        """One parity probe per twin: the first repeat's cells."""
        return [c for c in self.cells if c[4] == 0]


def _validated(fn: Callable, names: list[str]) -> list[str]:
    try:
        return fn(names)
    except ValueError as e:
        raise TwinbenchError(str(e)) from None


def task_info(config: RunConfig, task: str) -> TaskInfo:
    """A task's definition: the run's suite's when it has one, else the built-in one."""
    if config.data is not None and task == byo_plan.CUSTOM_TASK:
        return byo_plan.task_info(config)  # --data: the user's own
    return config.suite.task(task).info() if config.suite is not None else TASKS[task]


@contextmanager
def byo_input() -> Iterator[None]:
    """A bad --model or --data is bad input: the same one-line TwinbenchError."""
    try:
        yield
    except byo_plan.ByoError as e:
        raise TwinbenchError(str(e)) from None


def _task_names(config: RunConfig) -> list[str]:
    """The run's task names: built-in tasks and groups, or the suite's tasks."""
    if config.suite is None:
        return _validated(resolve_tasks, list(config.tasks))
    names = list(dict.fromkeys(config.tasks))
    try:
        for name in names:
            config.suite.task(name)
    except ValueError as e:
        raise TwinbenchError(str(e)) from None
    return names


def task_models(config: RunConfig) -> list[tuple[str, str, str]]:
    """(task, dataset, model) for every task, with --dataset and --models applied; with
    --model / --data, the user's model and data (twinbench.byo.plan)."""
    if config.model or config.data:
        with byo_input():
            return byo_plan.task_models(config, _builtin_task_models)
    return _builtin_task_models(config)


def _builtin_task_models(config: RunConfig) -> list[tuple[str, str, str]]:
    out = []
    models = _validated(resolve_models, list(config.models)) if config.models else []
    tasks = _task_names(config)
    kinds = {task_info(config, t).kind for t in tasks}
    for task in tasks:
        info = task_info(config, task)
        kind = info.kind
        dataset = _validated(lambda d, t=task, i=info: resolve_dataset(t, d, i), config.dataset)
        for m in models or [info.model]:
            # Models of several kinds on tasks of several kinds (`--models cnn,bilstm` on
            # digits and text): each model runs on the tasks it fits. A model that fits
            # none of the tasks, or a task no model fits, is bad input.
            if spec_module(m).KIND != kind:
                if spec_module(m).KIND in kinds and any(
                        spec_module(o).KIND == kind for o in models):
                    continue
                fit = [f for f in resolve_models(None) if spec_module(f).KIND == kind]
                raise TwinbenchError(f"model {m!r} does not fit task {task!r} ({kind}); "
                                     f"valid: {', '.join(fit)}")
            out.append((task, dataset, m))
    return out


def rotated(stacks: list[str], repeat: int) -> list[str]:
    """Repeat r starts at the r-th stack, so slow drift (thermal, background load) does
    not always fall on the same stack."""
    k = repeat % len(stacks) if stacks else 0
    return stacks[k:] + stacks[:k]


def plan(config: RunConfig, models: list[str] | None = None, run_id: str | None = None,
         out_dir: Path | None = None) -> Plan:
    """Validate every name and the thread count; decide the cells and the output folder.
    With `models`, the cells are those models on their probe task (for `verify`)."""
    stacks = _validated(resolve_stacks, list(config.stacks))
    if models is not None:
        triples = []
        for m in _validated(resolve_models, models):
            task = spec_module(m).PROBE_TASK
            probe_data = getattr(spec_module(m), "PROBE_DATASET", None)
            triples.append((task, resolve_dataset(task, probe_data), m))
    else:
        triples = task_models(config)
    cpus = available_cpus()
    if config.executor == "ray" and config.ray_address:
        check_address_form(config.ray_address)
    # On Ray each node checks --threads against its own CPUs (the driver's say nothing).
    if config.executor == "local" and config.threads > len(cpus):
        raise TwinbenchError(f"--threads {config.threads} exceeds the {len(cpus)} CPUs "
                             f"this process may use; valid: 1..{len(cpus)}")
    check_point_threads(config, [m for _, _, m in triples], cpus)
    run_id = run_id or new_run_id()
    out_dir = out_dir or (Path(config.out) if config.out else Path("runs") / run_id)
    cells = [CellKey(t, d, m, s, r) for r in range(config.repeats) for t, d, m in triples
             for s in rotated(stacks, r)]
    return Plan(config, cells, out_dir, run_id, tuple(cpus[: config.threads]))


def check_point_threads(config: RunConfig, models: list[str], cpus: list[int]) -> None:
    """A sweep point's `threads` knob must fit the CPUs, as --threads must (locally)."""
    for m in models:
        t = run_knobs(m).get("threads")
        if t is not None and config.executor == "local" and t > len(cpus):
            raise TwinbenchError(f"{m}: threads={t} exceeds the {len(cpus)} CPUs this "
                                 f"process may use; valid: 1..{len(cpus)}")


def point_cpus(run_cpus: tuple[int, ...], threads: int) -> tuple[int, ...]:
    """The CPUs of a cell whose sweep point sets its threads: the first `threads` of the
    machine's (the run's own may be fewer, from --threads)."""
    return tuple(available_cpus()[:threads]) if threads > len(run_cpus) else run_cpus[:threads]


def new_run_id() -> str:
    """Second resolution plus a random suffix: two runs started in the same second (tests,
    scripts, pipelines) must never share an id, or the store would merge them."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def resume_plan(store: Store, run_id: str) -> Plan:
    """The plan of a stored run, with its id and output folder, for `run --resume`."""
    row = store.run(run_id)
    if row is None:
        known = ", ".join(r["run_id"] for r in store.runs(5)) or "none"
        raise TwinbenchError(f"no run {run_id!r} in {store.path}; recent runs: {known}")
    config = RunConfig.model_validate_json(row["config"])
    return plan(config, run_id=run_id, out_dir=Path(row["out_dir"]))


def resume_command(run_id: str, db_path: Path | str) -> str:
    """The command that resumes a run. It names the history with --db unless that is the
    built-in default: a later shell may not have the same $TWINBENCH_DB."""
    cmd = f"twinbench run --resume {shlex.quote(run_id)}"
    db = Path(db_path).absolute()
    return cmd if db == builtin_db_path().absolute() else f"{cmd} --db {shlex.quote(str(db))}"


# A Ray address as --ray-address takes it (checked in the plan, before anything starts).
ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
ADDRESS_FORMS = "HOST:PORT (a cluster node's GCS), ray://HOST:PORT (Ray Client) or auto"


def check_address_form(address: str) -> re.Match | None:
    """The parts of HOST:PORT or ray://HOST:PORT; None for "auto"."""
    if address == "auto":
        return None
    m = ADDRESS.match(address)
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise TwinbenchError(f"--ray-address {address!r}: valid forms are {ADDRESS_FORMS}")
    return m
