"""What every driver (run, verify, export) does before its cells run: the data sets loaded,
split and encoded once (`prepare_data`), the cells of a stack that is not installed
(`skipped_cell`), and an empty results record for the run (`new_results`)."""

from __future__ import annotations

from pathlib import Path

from twinbench import environment
from twinbench.data.download import DataError
from twinbench.data.registry import TASKS, load_dataset
from twinbench.models import run_knobs
from twinbench.errors import TwinbenchError
from twinbench.byo import plan as byo_plan
from twinbench.plan import Plan, byo_input
from twinbench.results import Cell, Results
from twinbench.stacks import missing_modules, stack_info


def skipped_cell(task: str, stack: str, model: str | None = None) -> Cell | None:
    missing = missing_modules(stack_info(stack))
    if not missing:
        return None
    extra = stack_info(stack).extra
    return Cell(task=task, model=model or TASKS[task].model, stack=stack, status="skipped",
                reason=f"{', '.join(missing)} not installed: pip install 'twinbench[{extra}]'")


def prepare_data(p: Plan) -> dict[str, Path]:
    """Load, split and encode each data set once, in the driver: every cell then reads
    the same arrays, and a bad or missing file stops the run before any cell starts."""
    paths: dict[str, Path] = {}
    (p.out_dir / "data").mkdir(parents=True, exist_ok=True)
    for dataset, length in dict.fromkeys((k[1], run_knobs(k[2]).get("length")) for k in p.cells):
        try:
            with byo_input():
                data = (byo_plan.load_data(p.config) if p.config.data is not None else
                        load_dataset(dataset, p.config.seed, p.config.data_dir,
                                     p.config.holdout, length))
        except DataError as e:
            raise TwinbenchError(str(e)) from None
        key = data_key(dataset, length)
        paths[key] = p.out_dir / "data" / f"{key}.npz"
        data.save(paths[key])
    with byo_input():  # the user's model, read on each data set in its own process
        byo_plan.inspect_models(p, paths)
    return paths


def data_key(dataset: str, length: int | None) -> str:
    """The prepared file of a data set, at a sweep point's sequence length if it sets one
    (`sms-spam`, `sms-spam-len64`)."""
    return dataset if length is None else f"{dataset}-len{length}"


def data_path(data: dict[str, Path], dataset: str, model: str) -> Path:
    """The prepared arrays a cell of `model` reads."""
    return data[data_key(dataset, run_knobs(model).get("length"))]


def new_results(p: Plan) -> Results:
    return Results(run_id=p.run_id, environment=environment.capture(),
                   config=p.config.model_dump(mode="json"))
