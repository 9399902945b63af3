"""Where a user's model comes from (`--model path/model.py:NAME` or `path/model.keras`),
checked in the driver without importing any framework, and loaded in a child process.

NAME is a function returning a Keras model or an nn.Module, or an nn.Module subclass
(constructed without arguments). A `.keras` file is loaded with `safe_mode=True` (no
code from the file runs). The source file is hashed (SHA-256) and copied into the run.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class ByoError(ValueError):
    """Bad model or data input: the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class ModelSource:
    spec: str  # as the user gave it
    path: str  # absolute path of the .py or .keras file
    name: str  # NAME, or the .keras file's stem
    kind: str  # "python" or "keras-file"
    sha256: str

    def record(self) -> dict:
        return asdict(self)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _top_level_names(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError) as e:
        raise ByoError(f"--model {path}: not valid Python ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:120]})") from None
    names = [n.name for n in tree.body
             if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    names += [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)]
    return names


def parse_model(spec: str) -> ModelSource:
    """Validate `--model` without running the file: it exists, is a .py with NAME at top
    level or a .keras file. Raises ByoError (one line) otherwise."""
    raw, sep, name = spec.rpartition(":") if spec.endswith(".keras") is False else ("", "", "")
    path = Path(raw if sep else spec).expanduser()
    if path.suffix == ".keras":
        if not path.is_file():
            raise ByoError(f"--model {path}: no such file")
        return ModelSource(spec, str(path.resolve()), path.stem, "keras-file",
                           sha256_file(path))
    if path.suffix != ".py" or not sep or not name:
        raise ByoError(f"--model {spec}: expected path/model.py:NAME (a function returning a "
                       "Keras model or an nn.Module, or an nn.Module class) or path/model.keras")
    if not path.is_file():
        raise ByoError(f"--model {path}: no such file")
    names = _top_level_names(path)
    if name not in names:
        raise ByoError(f"--model {path}: defines no {name!r} at top level; it defines: "
                       f"{', '.join(names) or 'nothing'}")
    return ModelSource(spec, str(path.resolve()), name, "python", sha256_file(path))


def import_file(path: Path) -> Any:
    """Import a user's .py under a private module name; its folder goes on sys.path so it
    can import its neighbours. Its `if __name__ == "__main__":` block does not run."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    mod_name = f"twinbench_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[mod_name]
        raise ByoError(f"--model {path}: importing it raised {type(e).__name__}: "
                       f"{(str(e).splitlines() or [''])[0][:200]}") from None
    return module


def build_model(src: ModelSource) -> Any:
    """A fresh model from the source: call the factory, construct the class, or load the
    .keras file (safe_mode=True)."""
    if src.kind == "keras-file":
        import keras

        try:
            return keras.saving.load_model(src.path, safe_mode=True, compile=False)
        except Exception as e:
            raise ByoError(f"--model {src.path}: cannot be loaded with safe_mode=True "
                           f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") \
                from None
    obj = getattr(import_file(Path(src.path)), src.name)
    if not callable(obj):
        raise ByoError(f"--model {src.spec}: {src.name} is a {type(obj).__name__}; expected a "
                       "function returning a model, or an nn.Module class")
    try:
        model = obj()
    except Exception as e:
        raise ByoError(f"--model {src.spec}: {src.name}() raised {type(e).__name__}: "
                       f"{(str(e).splitlines() or [''])[0][:200]}") from None
    framework_of(model, src)
    return model


def framework_of(model: Any, src: ModelSource) -> str:
    """"keras" or "torch", from the classes the model object is built from."""
    if "keras" in sys.modules:
        import keras

        if isinstance(model, keras.Model):
            return "keras"
    if "torch" in sys.modules:
        import torch

        if isinstance(model, torch.nn.Module):
            return "torch"
    raise ByoError(f"--model {src.spec}: {src.name} gave a {type(model).__name__}, neither a "
                   "keras.Model nor a torch.nn.Module")
