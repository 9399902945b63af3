"""`twinbench import RUN_FOLDER`: a run folder's cells into the history.

A run writes each finished cell to its folder (results.json, verify.json) before the
history, so a run whose history write failed (locked, corrupt, read-only) still has every
cell on disk; this puts them in the database, after which `history`, `show`, `compare` and
`run --resume` see the run as if the writes had never failed. Importing twice changes
nothing (cells are replaced by key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from twinbench.results import Results
from twinbench.store.db import Store

PHASE_FILES = (("probe", "verify.json"), ("full", "results.json"))


class ImportFailed(ValueError):
    """The folder cannot be imported; the message is one line naming the file."""


@dataclass(frozen=True)
class Imported:
    run_id: str
    cells: int  # timed cells (results.json)
    probes: int  # parity probes (verify.json)
    status: str


def _read(path: Path) -> Results | None:
    if not path.exists():
        return None
    try:
        return Results.model_validate_json(path.read_bytes())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ImportFailed(f"{path}: not a twinbench results file ({where}: "
                           f"{first['msg']})") from None
    except OSError as e:
        raise ImportFailed(f"{path}: cannot be read ({e.strerror or e})") from None


def run_status(results: Results | None, folder: Path) -> str:
    """complete / complete, N failed / interrupted, from the run's own plan; "imported"
    when the plan cannot be rebuilt here (a suite file or data moved, fewer CPUs)."""
    if results is None:
        return "interrupted"  # verify.json only: the timed cells never started
    from twinbench.errors import TwinbenchError
    from twinbench.plan import plan
    from twinbench.results import cell_key
    from twinbench.config import RunConfig

    try:
        planned = plan(RunConfig.model_validate(results.config), run_id=results.run_id,
                       out_dir=folder)
    except (TwinbenchError, ValidationError, ValueError, OSError):
        return "imported"
    if not set(planned.cells) <= {cell_key(c) for c in results.cells}:
        return "interrupted"
    failed = sum(c.status == "failed" for c in results.cells)
    return "complete" if not failed else f"complete, {failed} failed"


def import_run(store: Store, folder: Path) -> Imported:
    """Store the run of `folder` (its results.json and/or verify.json) in `store`."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ImportFailed(f"{folder}: no such run folder")
    files = {phase: _read(folder / name) for phase, name in PHASE_FILES}
    head = files["full"] or files["probe"]
    if head is None:
        raise ImportFailed(f"{folder}: holds neither results.json nor verify.json")
    ids = {r.run_id for r in files.values() if r is not None}
    if len(ids) > 1:
        raise ImportFailed(f"{folder}: results.json and verify.json belong to different "
                           f"runs ({', '.join(sorted(ids))})")
    status = run_status(files["full"], folder)
    store.start_run(head.run_id, folder, head.config, head.environment)
    for phase, results in files.items():
        for c in results.cells if results is not None else []:
            store.put_cell(head.run_id, phase, c.repeat, c.model_dump(mode="json"))
    store.finish_run(head.run_id, status)
    count = {p: len(r.cells) if r is not None else 0 for p, r in files.items()}
    return Imported(head.run_id, count["full"], count["probe"], status)
