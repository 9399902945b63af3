"""What every driver (run, verify, export) does before its cells run: the data sets loaded,
split and encoded once (`prepare_data`), the cells of a stack that is not installed
(`skipped_cell`), and an empty results record for the run (`new_results`)."""

from __future__ import annotations

from pathlib import Path

from twinbench import environment
from twinbench.data.download import DataError
from twinbench.data.registry import TASKS, load_dataset
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
    for dataset in dict.fromkeys(key[1] for key in p.cells):
        try:
            with byo_input():
                data = (byo_plan.load_data(p.config) if p.config.data is not None else
                        load_dataset(dataset, p.config.seed, p.config.data_dir,
                                     p.config.holdout))
        except DataError as e:
            raise TwinbenchError(str(e)) from None
        paths[dataset] = p.out_dir / "data" / f"{dataset}.npz"
        data.save(paths[dataset])
    with byo_input():  # the user's model, read on each data set in its own process
        byo_plan.inspect_models(p, paths)
    return paths


def new_results(p: Plan) -> Results:
    return Results(run_id=p.run_id, environment=environment.capture(),
                   config=p.config.model_dump(mode="json"))
