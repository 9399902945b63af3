"""`twinbench.run(model=..., data=...)` with live objects: each cell runs in its own
process, so a live model is handed over as a file the children can rebuild it from.

- A keras.Model: saved as `<out>/input/<name>.keras`, loaded with safe_mode=True (a
  subclassed model must be registered serialisable, as Keras requires for saving).
- An nn.Module instance, an nn.Module class or a factory function (Keras or PyTorch):
  its defining source file and name, `path/file.py:NAME`. A module instance is rebuilt
  from its class, constructed without arguments (pass a factory function otherwise),
  and freshly initialised like every source: the instance's own weights are not used.
  Not a pickle: a pickled module is code, and needs its class importable anyway.
- data=(x_train, y_train, x_test, y_test) or (x, y) with holdout: saved as
  `<out>/input/data.npz`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from twinbench.byo.source import ByoError


def _is_keras_model(obj: Any) -> bool:
    return any(c.__module__.startswith("keras") and c.__name__ in ("Model", "Functional",
                                                                   "Sequential")
               for c in type(obj).__mro__)


def _defined_in_file(obj: Any, what: str) -> str:
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    try:
        path = inspect.getsourcefile(target)
    except TypeError:
        path = None
    if not path or not Path(path).is_file() or target.__module__ == "__main__" and \
            not Path(path).suffix == ".py":
        raise ByoError(f"model={what}: defined in no .py file (a notebook cell?); define it "
                       "in a module, or pass 'path/model.py:NAME'")
    if target.__qualname__ != target.__name__:
        raise ByoError(f"model={what}: {target.__qualname__} is not at the top level of "
                       f"{path}")
    return f"{path}:{target.__name__}"


def model_spec(model: Any, folder: Path) -> str:
    """The `--model` string of a live model, writing a .keras file where needed."""
    if isinstance(model, (str, Path)):
        return str(model)
    if _is_keras_model(model):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{model.name or 'model'}.keras"
        try:
            model.save(path)
        except Exception as e:
            raise ByoError(f"model={type(model).__name__}: cannot be saved as .keras "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
        return str(path)
    if callable(model) or inspect.isclass(model) or hasattr(model, "forward"):
        return _defined_in_file(model, type(model).__name__)
    raise ByoError(f"model={type(model).__name__}: expected a keras.Model, an nn.Module, "
                   "a model class, a factory function or 'path/model.py:NAME'")


def data_path(data: Any, folder: Path) -> Path:
    if isinstance(data, (str, Path)):
        return Path(data)
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 4):
        raise ByoError("data=: expected (x_train, y_train, x_test, y_test), (x, y) with "
                       "holdout, or a path")
    names = ("x_train", "y_train", "x_test", "y_test") if len(data) == 4 else ("x", "y")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.npz"
    np.savez(path, **{n: np.asarray(a) for n, a in zip(names, data)})
    return path


def materialize(overrides: dict, out_dir: Path) -> dict:
    """`overrides` with a live model / data replaced by files under `out_dir/input`."""
    out = dict(overrides)
    if out.get("model") is not None:
        out["model"] = model_spec(out["model"], out_dir / "input")
    if out.get("data") is not None:
        out["data"] = data_path(out["data"], out_dir / "input")
    return out
