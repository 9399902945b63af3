"""Keeps other frameworks out of a cell's process.

`import keras` imports jax on every backend (for an optional checkpoint callback), and
`keras.utils.set_random_seed` imports TensorFlow: ~0.5-4 s and hundreds of MB that would
be charged to the wrong stack. The guard makes `import jax` fail with
ModuleNotFoundError, which Keras's optional imports tolerate.

Why not `sys.modules["jax"] = None`: scipy and others test `"torch" in sys.modules` and
then use the entry. Why not raise from `find_spec`: torch's dynamo calls
`importlib.util.find_spec` on a list of libraries at import. Here `find_spec` returns a
spec without an origin (dynamo skips it) whose loader refuses to load.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys


class _Refuse(importlib.abc.Loader):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def create_module(self, spec):  # noqa: ANN001
        if spec.name not in self.log:
            self.log.append(spec.name)
        raise ModuleNotFoundError(f"No module named {spec.name!r} (kept out of this "
                                  "cell's process by twinbench)", name=spec.name)

    def exec_module(self, module) -> None:  # noqa: ANN001  (never reached)
        raise ModuleNotFoundError(module.__name__)


class BlockImports(importlib.abc.MetaPathFinder):
    def __init__(self, blocked: tuple[str, ...]) -> None:
        self.blocked = blocked
        self.attempts: list[str] = []  # what something tried to import, and was refused

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001
        if name.split(".", 1)[0] not in self.blocked:
            return None
        return importlib.machinery.ModuleSpec(name, _Refuse(self.attempts), origin=None)


def install(blocked: tuple[str, ...]) -> BlockImports:
    guard = BlockImports(tuple(m for m in blocked if m not in sys.modules))
    sys.meta_path.insert(0, guard)
    return guard


def loaded(modules: tuple[str, ...]) -> list[str]:
    """Which of these top-level modules were really imported in this process."""
    return [m for m in modules if sys.modules.get(m) is not None]
