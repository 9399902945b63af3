"""twinbench: the same model in PyTorch and Keras 3, proven equal, then measured.

This package's top level imports no deep-learning framework: a cell's process imports
only the framework it measures (see `twinbench.cell.main`).
"""

from __future__ import annotations

from typing import Any

from twinbench.version import __version__

__all__ = ["__version__", "run"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m twinbench.cell.main` imports nothing it does not need.
    if name == "run":
        from twinbench.api import run

        return run
    raise AttributeError(name)
