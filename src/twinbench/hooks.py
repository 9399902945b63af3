"""Test-only hooks (fault injection, fixture models): read only with TWINBENCH_TESTING=1.
Stdlib only: every child process reads them before any other import."""

from __future__ import annotations

import os

TESTING_ENV = "TWINBENCH_TESTING"
# Variables that change what a run does, for the tests only; the environment capture
# records any that is set (twinbench.environment).
TEST_HOOKS = (TESTING_ENV, "TWINBENCH_FAULT", "TWINBENCH_EXPORT_FAULT", "TWINBENCH_FIXTURES")


def testing_hook(name: str) -> str:
    """The value of the fault-injection variable `name`, or "" unless TWINBENCH_TESTING=1
    is set too: a TWINBENCH_FAULT left in a shell must never crash a real run's cells."""
    return os.environ.get(name, "") if os.environ.get(TESTING_ENV) == "1" else ""
