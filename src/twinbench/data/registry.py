"""Tasks: which dataset loader and default model family each task name means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from twinbench.data.dataset import Dataset


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str  # "image" or "text"
    model: str
    loader: Callable[[int], Dataset]


def _digits(seed: int) -> Dataset:
    from twinbench.data.digits import load_digits

    return load_digits(seed)


TASKS: dict[str, TaskInfo] = {
    "digits": TaskInfo("digits", "image", "cnn", _digits),
}
# Task groups a user can type instead of task names.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "image": tuple(t for t, i in TASKS.items() if i.kind == "image"),
    "quick": ("digits",),
}


def resolve_tasks(names: list[str]) -> list[str]:
    """Expand groups and validate names; error lists the valid ones."""
    out: list[str] = []
    for name in names:
        if name in TASK_GROUPS:
            out.extend(t for t in TASK_GROUPS[name] if t not in out)
        elif name in TASKS:
            if name not in out:
                out.append(name)
        else:
            valid = ", ".join([*TASKS, *TASK_GROUPS])
            raise ValueError(f"unknown task {name!r}; valid: {valid}")
    return out
