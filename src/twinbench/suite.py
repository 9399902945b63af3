"""Suites: named sets of tasks in TOML files that users can copy and edit.

A suite names its stacks and its tasks; each task is a data set x model family x epochs x
batch size, with an optional target accuracy for time to accuracy and where that figure
comes from. The shipped suites live in `twinbench/suites/<name>.toml`; `--suite` takes a
name or a path. Validation is pydantic (frozen, extra fields refused); every error is one
line naming the file, the field and the allowed values.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from twinbench.data.registry import DATASETS, TaskInfo
from twinbench.models import FAMILIES, resolve_models, spec_module
from twinbench.recipe import RECIPES, Recipe
from twinbench.stacks import resolve_stacks


class SuiteError(ValueError):
    """A suite that cannot be found or read (message is one line)."""


class SuiteTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    dataset: str
    model: str
    epochs: int = Field(ge=1, le=1000)
    batch_size: int = Field(ge=1, le=65536)
    target_accuracy: float | None = Field(None, gt=0, le=1)
    target_source: str | None = None
    # A training recipe: a shipped one by name (twinbench.recipe.RECIPES) or a table of
    # its fields ([tasks.recipe] with optimizer, loss, augment), recorded in every cell.
    recipe: Recipe | None = None

    @field_validator("recipe", mode="before")
    @classmethod
    def _named_recipe(cls, v: object) -> object:
        if isinstance(v, str):
            if v not in RECIPES:
                raise ValueError(f"unknown recipe {v!r}; valid: {', '.join(RECIPES)}, or a "
                                 "table of optimizer, loss and augment")
            return RECIPES[v]
        return v

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown data set {v!r}; valid: {', '.join(DATASETS)}")
        return v

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        resolve_models([v])  # raises "unknown model ...; valid: ..."
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SuiteTask:
        kind = DATASETS[self.dataset].kind
        if spec_module(self.model).KIND != kind:
            fit = [m for m in FAMILIES if spec_module(m).KIND == kind]
            raise ValueError(f"model {self.model!r} does not fit data set {self.dataset!r} "
                             f"({kind}); valid: {', '.join(fit)}")
        if self.target_accuracy is not None and not self.target_source:
            raise ValueError("target_accuracy needs a target_source (where the figure is from)")
        return self

    def info(self) -> TaskInfo:
        """The task as the runner sees every task (built-in ones are TaskInfo too)."""
        return TaskInfo(self.name, DATASETS[self.dataset].kind, self.dataset, self.model,
                        self.epochs, self.batch_size, self.target_accuracy, self.target_source,
                        self.recipe)


class SuiteSettings(BaseModel):
    """Run settings a suite fixes unless the run gives its own (an option on the command
    line, an argument to `twinbench.run`). The quick suite shortens the inference phases
    here to fit its time; the report states them. Unset: the run's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    latency_calls: int | None = Field(None, ge=1)
    latency_budget_s: float | None = Field(None, gt=0)
    throughput_calls: int | None = Field(None, ge=1)
    loadgen_duration_s: float | None = Field(None, gt=0)
    loadgen_server_steps: int | None = Field(None, ge=1, le=20)
    probe_jobs: int | None = Field(None, ge=1, le=64)  # untimed: changes no figure

    def given(self) -> dict[str, float | int]:
        return self.model_dump(exclude_none=True)


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str = ""
    source: str = ""  # the file it was read from
    stacks: tuple[str, ...] = ()  # empty: every stack
    # Fresh-process repeats per cell unless --repeats says otherwise: 1 keeps the quick
    # suite fast; 3 gives the standard suite CIs across processes and 3 seeds per target.
    repeats: int = Field(1, ge=1, le=100)
    settings: SuiteSettings = SuiteSettings()
    tasks: tuple[SuiteTask, ...] = Field(min_length=1)

    @field_validator("stacks")
    @classmethod
    def _known_stacks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return () if not v or v == ("all",) else tuple(resolve_stacks(list(v)))

    @field_validator("tasks")
    @classmethod
    def _unique(cls, v: tuple[SuiteTask, ...]) -> tuple[SuiteTask, ...]:
        names = [t.name for t in v]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"task name {dup!r} appears twice; names must be unique")
        return v

    def task(self, name: str) -> SuiteTask:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ValueError(f"unknown task {name!r} in suite {self.name!r}; "
                         f"valid: {', '.join(t.name for t in self.tasks)}")


def shipped() -> list[str]:
    """Names of the suites that come with twinbench."""
    folder = resources.files("twinbench") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read(name_or_path: str | Path) -> tuple[str, str]:
    """(file name for messages, TOML text) of a shipped suite or a file."""
    if str(name_or_path) in shipped():
        res = resources.files("twinbench") / "suites" / f"{name_or_path}.toml"
        return f"{name_or_path}.toml", res.read_text(encoding="utf-8")
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.is_file():
        raise SuiteError(f"unknown suite {str(name_or_path)!r}; valid: {', '.join(shipped())}, "
                         "or the path of a .toml file")
    try:
        return str(path), path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:  # TOML is UTF-8 by definition
        raise SuiteError(f"suite {path}: not UTF-8 text (byte {e.start}: "
                         f"{e.object[e.start:e.start + 1]!r})") from None
    except OSError as e:
        raise SuiteError(f"suite {path}: cannot be read ({e.strerror or e})") from None


def _where(loc: tuple, data: dict[str, Any]) -> str:
    """("tasks", 2, "dataset") -> "[[tasks]] #3 (cifar): dataset"."""
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        tasks = data.get("tasks") or []
        name = tasks[loc[1]].get("name") if loc[1] < len(tasks) and isinstance(
            tasks[loc[1]], dict) else None
        head = f"[[tasks]] #{loc[1] + 1}" + (f" ({name})" if name else "")
        return ": ".join([head, *(str(p) for p in loc[2:])]) if loc[2:] else head
    return ".".join(str(p) for p in loc) or "suite"


def _message(e: ValidationError, model: type[BaseModel], data: dict[str, Any]) -> str:
    errors = e.errors()
    # a misspelt field also shows as the real one missing: name the misspelling first
    first = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        owner = {"tasks": SuiteTask, "settings": SuiteSettings}.get(first["loc"][0], model)
        msg = f"unknown field; valid: {', '.join(f for f in owner.model_fields if f != 'source')}"
    elif first["type"] == "missing":
        msg = "missing (required)"
    return f"{_where(tuple(first['loc']), data)}: {msg}"


def load_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name, or a suite file by path; SuiteError on any problem."""
    label, text = _read(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"suite {label}: not valid TOML ({e})") from None
    data.setdefault("name", Path(label).stem)
    try:
        return Suite.model_validate({**data, "source": label})
    except ValidationError as e:
        raise SuiteError(f"suite {label}: {_message(e, Suite, data)}") from None
