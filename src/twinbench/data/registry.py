"""Tasks (what is learned), data sets (which data) and their defaults.

A task has a kind ("image" or "text"), a default data set and a default model family;
`--dataset` and `--models` override them within the same kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twinbench.data.dataset import Dataset
from twinbench.recipe import Recipe


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str  # "image" or "text"
    dataset: str
    model: str
    epochs: int  # defaults, sized so the quick suite stays within minutes on 2 cores
    batch_size: int
    # Test accuracy that counts as "trained" for time to accuracy, and where the figure
    # comes from (a paper or a reference implementation). None: no target.
    target_accuracy: float | None = None
    target_source: str | None = None
    recipe: Recipe | None = None  # None: the run's optimizer, cross-entropy, no augmentation


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str
    sequence_length: int | None  # text: tokens per sequence
    loader: Callable[..., object]  # (seed, data_dir, holdout) -> Dataset or RawText


def _digits(seed: int, data_dir: Path | None, holdout: float | None) -> Dataset:
    from twinbench.data.digits import load_digits

    return load_digits(seed, test_fraction=holdout or 0.2)


def _digits8(seed: int, data_dir: Path | None, holdout: float | None) -> Dataset:
    """The bundled 8x8 digits as they are: the small input that `verify` probes ResNet on."""
    from twinbench.data.digits import load_digits

    return load_digits(seed, test_fraction=holdout or 0.2, size=8)


def _image(name: str) -> Callable[..., Dataset]:
    def load(seed: int, data_dir: Path | None, holdout: float | None) -> Dataset:
        from twinbench.data import image_sets

        if name == "cifar10":
            return image_sets.load_cifar10(seed, data_dir, holdout)
        return image_sets.load_idx_set(name, seed, data_dir, holdout)

    return load


def _text(fn_name: str) -> Callable[..., object]:
    def load(seed: int, data_dir: Path | None, holdout: float | None):
        from twinbench.data import text_sets

        fn = getattr(text_sets, fn_name)
        return fn(seed) if fn_name == "load_synthetic" else fn(data_dir, holdout)

    return load


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("digits", "image", None, _digits),
    DatasetInfo("synthetic-sentiment", "text", 24, _text("load_synthetic")),
    DatasetInfo("sms-spam", "text", 48, _text("load_sms")),
    DatasetInfo("ag-news", "text", 64, _text("load_ag")),
    DatasetInfo("trec", "text", 24, _text("load_trec")),
    DatasetInfo("imdb", "text", 256, _text("load_imdb")),
    DatasetInfo("mnist", "image", None, _image("mnist")),
    DatasetInfo("fashion-mnist", "image", None, _image("fashion-mnist")),
    DatasetInfo("cifar10", "image", None, _image("cifar10")),
    DatasetInfo("digits-8x8", "image", None, _digits8),
)}

TASKS: dict[str, TaskInfo] = {t.name: t for t in (
    TaskInfo("digits", "image", "digits", "cnn", epochs=10, batch_size=32),
    TaskInfo("text", "text", "synthetic-sentiment", "bilstm", epochs=3, batch_size=32),
)}
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "quick": ("digits", "text"),
    "image": ("digits",),
}


def resolve_tasks(names: list[str]) -> list[str]:
    """Expand groups and validate names; error lists the valid ones."""
    out: list[str] = []
    for name in names:
        if name not in TASKS and name not in TASK_GROUPS:
            valid = ", ".join([*TASKS, *TASK_GROUPS])
            raise ValueError(f"unknown task {name!r}; valid: {valid}")
        for t in TASK_GROUPS.get(name, (name,)):
            if t not in out:
                out.append(t)
    return out


def resolve_dataset(task: str, dataset: str | None, info: TaskInfo | None = None) -> str:
    """The task's data set, or `dataset` if it is of the task's kind (`info`: a task
    defined elsewhere, e.g. by a suite; default: the built-in task)."""
    info = info or TASKS[task]
    kind = info.kind
    if dataset is None:
        return info.dataset
    valid = [d for d, i in DATASETS.items() if i.kind == kind]
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if dataset not in valid:
        raise ValueError(f"dataset {dataset!r} does not fit task {task!r} ({kind}); "
                         f"valid: {', '.join(valid)}")
    return dataset


def load_dataset(name: str, seed: int, data_dir: Path | None = None,
                 holdout: float | None = None, length: int | None = None) -> Dataset:
    """`length`: a text set's tokens per sequence (a sweep's `length` knob) instead of
    its own."""
    info = DATASETS[name]
    data = info.loader(seed, data_dir, holdout)
    if info.kind == "text":
        from twinbench.data.text_sets import to_dataset

        data = to_dataset(name, data, seed, length or info.sequence_length, holdout)
    return data
