"""twinbench: the same model in PyTorch and Keras 3, proven equal, then measured.

This package's top level imports no deep-learning framework: a cell's process imports
only the framework it measures (see `twinbench.runner.cell`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m twinbench.runner.cell` imports nothing it does not need.
    if name == "run":
        from twinbench.api import run

        return run
    raise AttributeError(name)
