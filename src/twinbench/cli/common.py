"""What every twinbench command shares: the app, the consoles, the one-line error, option
definitions and the one error handler."""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from twinbench.report.console import safe  # every string from input goes through it

# Help texts are Rich markup, where "[default: x]" is a tag and vanishes: write "\\[default: x]".
app = typer.Typer(add_completion=True, no_args_is_help=True,
                  help="Twin models in PyTorch and Keras 3, proven equal, then measured.")


# Piped output (CI logs, files) gets a wide console so tables are never cut off.
# emoji off: a name holding ":smile:" is text too (markup is escaped by `safe`).
console = Console(width=None if sys.stdout.isatty() else 220, emoji=False)


err = Console(stderr=True, width=None if sys.stderr.isatty() else 400, emoji=False)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: never a traceback for bad input. Line breaks
    and other unprintable characters that came from the input itself (a name in a suite
    file: "\\n", but also "\\x85" or "\\u2028", which str.splitlines also breaks on) are
    shown escaped, and markup ("[/x]") is text (see `safe`)."""
    err.print(f"[bold red]error:[/bold red] {safe(message)}", highlight=False,
              soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One line on stderr; the command goes on."""
    err.print(f"[yellow]warning:[/yellow] {safe(message)}", highlight=False, soft_wrap=True)


def check_out_dir(out_dir: Path, option: str = "--out") -> None:
    """Fail before anything starts when `out_dir` cannot be a writable folder: a file
    there, a file among its parents, a read-only parent. Nothing is created (--dry-run)."""
    import os

    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        fail(f"{option} {path}: exists and is not a folder")
    probe = path
    while not probe.exists() and probe.parent != probe:  # the nearest existing parent
        probe = probe.parent
    if not probe.is_dir():
        fail(f"{option} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        fail(f"{option} {path}: {probe} is not writable")


def split(value: Optional[str]) -> tuple[str, ...]:
    """Comma-separated names; a comma inside brackets belongs to a variant's knobs
    (`torch[channels_last=1,mode=default]`, `cnn[threads=1,width=2]`)."""
    if not value:
        return ()
    return tuple(v.strip() for v in re.split(r",(?![^\[]*\])", value) if v.strip())


def names(flag: str, value: Optional[str]) -> tuple[str, ...]:
    """A comma-separated option's names; () when it was not given. Given, but naming
    nothing ("", ","), it is bad input: () would silently mean every stack (or task)."""
    out = split(value)
    if value is not None and not out:
        fail(f"{flag} {value!r} names nothing: give names, comma-separated, or leave "
             f"{flag} out")
    return out


# Config fields whose option has another name; a command passes its own differences
# (verify's --jobs is run's --probe-jobs). A message must name an option that exists.
FLAGS = {"cell_timeout_s": "--cell-timeout", "latency_budget_s": "--latency-budget"}


def _validation_message(e: ValidationError, flags: Optional[dict[str, str]] = None) -> str:
    first = e.errors()[0]
    if not first["loc"]:  # a check of the whole config: no one option to name
        return str(first["msg"])
    field = str(first["loc"][0])
    flag = {**FLAGS, **(flags or {})}.get(field, f"--{field.replace('_', '-')}")
    return f"{flag}: {first['msg']}"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def format_option() -> Any:
    """--format, shared by the commands that list things (history, show, stacks, compare)."""
    return typer.Option(Format.table, "--format", case_sensitive=False,
                        help="table (for people), json or csv (for scripts), on stdout.")


def emit(fmt: Format, data: Any, rows: list[dict]) -> bool:
    """Print `data` as JSON or `rows` as CSV (flat, see results.csv) on plain stdout, not
    through Rich (no markup, no wrapping). False for --format table: the caller prints."""
    from twinbench.results import csv_text, flatten

    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt is Format.csv:
        sys.stdout.write(csv_text(flatten(r) for r in rows))
    return fmt is not Format.table


def require_linux() -> None:
    """Commands that run cells pin each one to its CPUs (os.sched_getaffinity and
    sched_setaffinity) and tie it to the driver (prctl): Linux only. Refused up front in
    one line, rather than a traceback from the first cell."""
    import os

    missing = [f"os.{n}" for n in ("sched_getaffinity", "sched_setaffinity")
               if not hasattr(os, n)]
    if not sys.platform.startswith("linux"):
        missing.append("prctl")
    if missing:
        fail(f"twinbench runs cells on Linux only: this system ({sys.platform}) lacks "
             f"{', '.join(missing)}")


def _print_version(value: bool) -> None:
    if value:
        from twinbench.version import __version__

        console.print(f"twinbench {__version__}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _app_options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Twin models in PyTorch and Keras 3, proven equal, then measured."""


def _progress_events(progress: Progress):

    from twinbench.api import Events

    task_id = progress.add_task("cells", total=0)

    def start(n: int, phase: str) -> None:
        progress.reset(task_id, total=n)
        progress.console.print(f"[bold]{phase}[/bold]")

    return Events(
        on_warning=lambda m: progress.console.print(f"[yellow]warning:[/yellow] {safe(m)}",
                                                    highlight=False, soft_wrap=True),
        on_start=start,
        # the description is rendered as markup on every refresh: escaped once here
        on_cell_start=lambda t, s: progress.update(task_id, description=safe(f"{t} / {s}")),
        # the phase inside the cell: "train epoch 3/10, ETA 0:42" (names escaped: markup)
        on_cell_progress=lambda t, s, pr: progress.update(
            task_id, description=safe(f"{t} / {s}: {pr.text()}")),
        on_cell_end=lambda c: (progress.advance(task_id),
                               progress.console.print(safe(f"  {c.task} / {c.stack}: {c.status}"
                                                           + (f" ({c.reason})" if c.reason
                                                              else "")),
                                                      highlight=False, soft_wrap=True)),
    )


def _open_store(db: Optional[Path]):
    import sqlite3

    from twinbench.store import Store, default_db_path
    from twinbench.store.db import one_line

    try:
        path = db or default_db_path()
        return Store(path)
    except ValueError as e:  # a bad $TWINBENCH_DB_TIMEOUT
        fail(str(e))
    except (sqlite3.Error, OSError) as e:
        # A corrupt file stays as it is (never overwritten): moved aside, a new history
        # is created, and run folders are imported into it.
        corrupt = isinstance(e, sqlite3.DatabaseError) and not isinstance(
            e, sqlite3.OperationalError)  # not a lock, a permission or a bad path
        hint = ("; move it aside and import run folders into a new one with `twinbench "
                "import RUN_FOLDER`" if corrupt and path.is_file() else "")
        fail(f"--db {path}: cannot open the history database ({one_line(e)}){hint}")


def _load_suite(name: str):
    from twinbench.suite import SuiteError, load_suite

    try:
        return load_suite(name)
    except SuiteError as e:
        fail(str(e))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console)



@contextmanager
def handled(flags: Optional[dict[str, str]] = None, writes: bool = False) -> Iterator[None]:
    """The one error handler of every command: bad input (a validation error, with the
    option it names mapped through `flags`, or any TwinbenchError, ReportError included)
    is one line and exit 2; an interrupted run is its resume hint and exit 130; with
    `writes`, an output folder deleted or made read-only mid-run is one line too."""
    from twinbench.errors import Interrupted, TwinbenchError

    try:
        yield
    except ValidationError as e:
        fail(_validation_message(e, flags))
    except Interrupted as e:
        fail(str(e), code=130)
    except TwinbenchError as e:
        fail(str(e))
    except OSError as e:
        if not writes:
            raise
        fail(f"cannot write {e.filename or 'the output folder'} ({e.strerror or e})")


# --- Option definitions shared by the commands (one wording, one default each) ---

def db_option() -> Any:
    return typer.Option(None, "--db", help="SQLite history \\[default: "
                                           "~/.local/share/twinbench/history.db].")


def threads_option(per: str = "cell") -> Any:
    return typer.Option(None, "--threads", help=f"Threads per {per} \\[default: all CPUs].")


def out_option(default: str = "runs/<run id>") -> Any:
    return typer.Option(None, "--out", help=f"Output folder \\[default: {default}].")


def cell_timeout_option(what: str = "cell") -> Any:
    return typer.Option(900.0, "--cell-timeout", help=f"Seconds before a {what} is killed.")
