"""What the driver's inspection of a user's model leaves for the cells (model.json in
`<run>/byo/<model>__<dataset>/`), and the paths it lives at. Framework-free."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

RECORD = "model.json"


class ByoRecord(BaseModel):
    """One user model on one data set: everything a cell needs to rebuild its twin."""

    model_config = ConfigDict(extra="forbid")
    name: str  # the model's name in the run (cells, report)
    source: dict  # ModelSource.record(): spec, path, name, kind, sha256
    framework: str  # "keras" or "torch": the one it was written in
    graph: str | None  # Graph.to_json(), None when no twin could be generated
    refusal: str | None  # one line: why the other framework's stacks are skipped
    variables: list[tuple[str, list[int], bool]]  # canonical name, shape, trainable
    head: str  # logits, softmax or log_softmax (the loss follows it)
    input_shape: list[int | None]
    input_dtype: str
    classes: int  # the model's output width
    twin_file: str | None  # the generated twin's source, in this folder
    prefixes: dict[str, str] = {}  # graph node -> module path in the torch twin
    hwc: dict[str, list[int]] = {}  # Dense after a channels-first flatten -> (H, W, C)
    weights: dict[str, str] = {}  # seed -> npz of canonical initial weights, in this folder
    flops_per_sample: float = 0.0  # forward, from the graph (0 without one)
    masks_padding: bool = False  # an Embedding(mask_zero=True): padding must change nothing
    folded: list[str] = []  # torch LSTMs whose second bias twinbench folds and freezes

    @property
    def twin_framework(self) -> str:
        return "torch" if self.framework == "keras" else "keras"

    def native(self, framework: str) -> bool:
        """Whether a stack of `framework` runs the user's own model (not a twin)."""
        return framework == self.framework


def record_dir(out_dir: Path, model: str, dataset: str) -> Path:
    return Path(out_dir) / "byo" / f"{model}__{dataset}"


def load_record(folder: Path) -> ByoRecord:
    return ByoRecord.model_validate_json((Path(folder) / RECORD).read_text(encoding="utf-8"))


def cell_settings(job, framework: str) -> dict:
    """What a cell of a user's model records about it (settings.byo)."""
    if getattr(job, "byo", None) is None:  # a built-in family (or an export job)
        return {}
    rec = load_record(job.byo)
    runs = "the user's own model" if rec.native(framework) else \
        f"the generated {rec.twin_framework} twin ({rec.twin_file})"
    return {"byo": {"source": rec.source, "framework": rec.framework, "runs": runs,
                    "head": rec.head, "folded_lstm_biases": rec.folded,
                    "padding_invariance": "checked" if rec.masks_padding else
                    "not claimed (no Embedding(mask_zero=True))",
                    "parity_tolerances": parity_tolerances(rec)}}


def parity_tolerances(rec: ByoRecord) -> dict | None:
    """A model with BatchNorm gets the built-in resnet's measured 10-step tolerance, for
    the same reason: Adam amplifies float32 reduction-order differences through
    BatchNorm'd training steps. Measured on examples/keras_residual.py: eager and
    compiled torch runs of the same twin drift 8.7e-4 apart by step 9, the Keras twins
    1.9e-3, from 0 at steps 1-3 (SGD: 1.3e-4). A semantic BatchNorm difference is still
    caught at 1e-3 by moving_stats_rel and the first Adam step."""
    from twinbench.models.resnet.spec import PARITY_TOLERANCES

    stats = ("moving_mean", "running_mean")
    return dict(PARITY_TOLERANCES) if any(n.endswith(stats) for n, _, _ in rec.variables) \
        else None

