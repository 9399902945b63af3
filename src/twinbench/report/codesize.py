"""The twins' source side by side, with non-blank, non-comment line counts: the "ease of
use" evidence. Reads this installed twinbench's own model files; never a path from a run."""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from pathlib import Path

from twinbench.models import FAMILIES

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
TWIN_FILES = {"PyTorch": "torch_model.py", "Keras 3": "keras_model.py"}
_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
             tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}


def docstring_lines(source: str) -> set[int]:
    """Line numbers (1-based) of module, class and function docstrings."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def code_line_numbers(source: str) -> set[int]:
    """Lines holding at least one token of code: blank lines, comments and docstrings
    do not count; a statement continued over three lines counts three."""
    docs = docstring_lines(source)
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in _NOT_CODE:
            continue
        lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in docs)
    return lines


def code_lines(source: str) -> int:
    return len(code_line_numbers(source))


def model_lines(source: str) -> int:
    """Code lines of the model itself: top-level classes and `build()`; the imports are
    left out. (The torch twin's weight-layout converters, which a PyTorch user would not
    write, live in torch_weights.py beside it.)"""
    spans = [range(n.lineno, (n.end_lineno or n.lineno) + 1) for n in ast.parse(source).body
             if isinstance(n, ast.ClassDef) or (isinstance(n, ast.FunctionDef)
                                                 and n.name == "build")]
    keep = {n for r in spans for n in r}
    return len(code_line_numbers(source) & keep)


def twin_sources(families: list[str], run_dir: Path | None = None) -> list[dict]:
    """For each known family in `families`: both twins' source and line counts. A user's
    model (twinbench.byo) shows its own source, as copied into the run with its SHA-256,
    beside the twin twinbench generated from it. Other names (a run may carry anything)
    are reported, never opened."""
    out = []
    for fam in dict.fromkeys(families):
        byo = byo_sources(run_dir, fam) if run_dir is not None and fam not in FAMILIES \
            else None
        if byo is not None:
            out.append(byo)
            continue
        if fam not in FAMILIES:
            out.append({"family": fam, "missing": "not a model family of this twinbench"})
            continue
        sides = []
        for framework, fname in TWIN_FILES.items():
            path = MODELS_DIR / fam / fname
            text = path.read_text()
            sides.append({"framework": framework, "file": f"models/{fam}/{fname}",
                          "source": text, "code_lines": code_lines(text),
                          "model_lines": model_lines(text),
                          "total_lines": len(text.splitlines())})
        out.append({"family": fam, "sides": sides})
    return out


def _side(framework: str, file: str, text: str) -> dict:
    code = code_lines(text)
    return {"framework": framework, "file": file, "source": text, "code_lines": code,
            "model_lines": code, "total_lines": len(text.splitlines())}


def byo_sources(run_dir: Path, model: str) -> dict | None:
    """A user's model: its source file (the copy the run took, hashed) and the generated
    twin, from the run's `byo/<model>__<dataset>/` folder (written by twinbench). Marked
    `generated`: the code-size verdict compares hand-written twins only."""
    folders = sorted(Path(run_dir).glob(f"byo/{glob_escape(model)}__*/model.json"))
    if not folders:
        return None
    import json

    rec, folder = json.loads(folders[0].read_text(encoding="utf-8")), folders[0].parent
    src = rec["source"]
    names = {"keras": "Keras 3", "torch": "PyTorch"}
    own_file = next(folder.glob("source.*"), None)
    own = (own_file.read_text(encoding="utf-8", errors="replace") if own_file is not None
           and own_file.suffix == ".py" else "# a .keras archive: no Python source\n")
    sides = [_side(names[rec["framework"]], f"{Path(src['path']).name} (yours, SHA-256 "
                                            f"{src['sha256'][:16]}...)", own)]
    if rec.get("twin_file"):
        twin = (folder / rec["twin_file"]).read_text(encoding="utf-8")
        other = names["torch" if rec["framework"] == "keras" else "keras"]
        sides.append(_side(other, f"{rec['twin_file']} (generated by twinbench)", twin))
    else:
        sides.append({"framework": "-", "file": "no twin", "source": rec.get("refusal") or "",
                      "code_lines": 0, "model_lines": 0, "total_lines": 0})
    sides.sort(key=lambda s: s["framework"] != "PyTorch")  # PyTorch first, as the families
    return {"family": model, "sides": sides, "generated": True}


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


STACKS_DIR = MODELS_DIR.parent / "stacks"
# The training loop each framework asks its user to write, as twinbench writes it: an
# explicit loop in PyTorch, `model.fit` in Keras (both include twinbench's step timing).
TRAINING_CODE = {"PyTorch": ("torch_stack.py", "TorchStack", "train_batches"),  # the loop itself
                 "Keras 3": ("keras_stack.py", "KerasStack", "train_epoch")}


def method_source(path: Path, cls: str, name: str) -> str | None:
    """The source of `cls.name` in `path` (parsed, never imported), or None."""
    source = path.read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == name:
                    lines = source.splitlines()[fn.lineno - 1:fn.end_lineno]
                    return "\n".join(lines) + "\n"
    return None


def training_sources() -> list[dict]:
    """Each framework's training method, with its code line count."""
    out = []
    for framework, (fname, cls, name) in TRAINING_CODE.items():
        text = method_source(STACKS_DIR / fname, cls, name)
        if text is None:
            continue
        text = textwrap.dedent(text)
        out.append({"framework": framework, "file": f"stacks/{fname}", "name": f"{cls}.{name}",
                    "source": text, "code_lines": code_lines(text)})
    return out
