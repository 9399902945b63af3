"""The `twinbench` command: a thin typer layer over `twinbench.api`. A package: shared
options and the one error handler in `common`, the commands in three modules (imported
here in the order `--help` lists them)."""

from __future__ import annotations

import sys

import typer

# `--help` lists the commands in the order they register: these imports' order.
from twinbench.cli import run_commands  # noqa: F401, I001
from twinbench.cli import sweep_commands  # noqa: F401, I001
from twinbench.cli import results_commands  # noqa: F401, I001
from twinbench.cli import tool_commands  # noqa: F401, I001
from twinbench.cli.common import app, console, err, fail  # noqa: F401
from twinbench.cli.run_commands import _progress_events, _report_after_run  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Run the app with click's usage errors (unknown option, a value of the wrong type)
    turned into the same one-line error and exit 2 as twinbench's own validation."""
    try:  # typer 0.2x vendors its own click; older typer uses click itself
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - depends on the typer version
        from click.exceptions import NoArgsIsHelpError, UsageError

    try:
        rc = app(args=argv, standalone_mode=False)
    except NoArgsIsHelpError as e:
        console.print(e.ctx.get_help() if e.ctx else "twinbench --help", highlight=False)
        sys.exit(0)
    except UsageError as e:
        where = e.ctx.command_path if e.ctx else "twinbench"
        hint = f" (see `{where} --help`)" if e.ctx else ""
        if e.ctx and hasattr(e.ctx.command, "list_commands"):  # a group: name its commands
            hint = f"; valid: {', '.join(e.ctx.command.list_commands(e.ctx))}"
        try:
            fail(f"{where}: {' '.join(e.format_message().split()).rstrip('.')}{hint}")
        except typer.Exit as ex:
            sys.exit(ex.exit_code)
    except typer.Abort:
        err.print("error: aborted", highlight=False)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)
