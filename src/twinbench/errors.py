"""The errors every layer may raise, at the bottom of the package: each message is one line
for the user (the CLI prints it and exits non-zero, never with a traceback)."""

from __future__ import annotations


class TwinbenchError(ValueError):
    """Bad input: the message is one line that names the valid values."""


class ReportError(TwinbenchError):
    """Bad input to `report` or `compare` (no such run folder, an unreadable results file)."""


class Interrupted(RuntimeError):
    """Ctrl-C, SIGTERM or SIGHUP stopped the run; what finished is in the run folder (and
    the store). The message says how to resume (and import, if the store failed)."""
