"""What the driver hands each export and reload process (JSON), and what they write back."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from twinbench.config import RunConfig

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CAUSE = re.compile(r"^(<class '[\w.]+'>: |-- )")
KERAS_WRAP = "Exception encountered when calling"
TEST_BATCH = 32  # samples compared: the first of the test split, as in the parity probe


class ExportJob(BaseModel):
    """One twin: train it, record its outputs on the test batch, export every format."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    task: str
    dataset: str
    model: str
    stack: str
    run: RunConfig  # epochs: run.export_epochs; latency knobs for the source row
    data_path: Path
    cpus: tuple[int, ...]
    formats: tuple[str, ...]
    cell_dir: Path  # writes manifest.json, input.npy, source.npy and <format>/ here
    test_batch: int = TEST_BATCH


class ReloadJob(BaseModel):
    """One artifact in one runtime, in a fresh process."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format: str
    runtime: str
    artifact: Path
    input_path: Path  # the test batch in the source stack's layout (.npy)
    source_path: Path  # the source twin's logits on it (.npy)
    input_dtype: str  # what the exporter declared as the input dtype
    model: str  # family: the torch-state and keras loaders build or register the twin
    data_path: Path  # for the twin's spec (vocabulary, shapes)
    keras_backend: str | None = None
    run: RunConfig
    cpus: tuple[int, ...]
    result_path: Path


def first_line(e: BaseException, limit: int = 400) -> str:
    """The error's first line, without terminal colours. A first line that only introduces
    the next (ends with ':', or is Keras's "Exception encountered when calling X.call().")
    takes it along; a cause buried further down (torch's
    "<class 'TypeError'>: ..." summary, OpenVINO's "-- No conversion rule found ...") is
    appended, since that is the line a reader needs."""
    text = ANSI.sub("", f"{type(e).__name__}: {e}")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    out = lines[0]
    if (out.endswith(":") or KERAS_WRAP in out) and len(lines) > 1:
        out += " " + lines[1]
    cause = next((ln for ln in lines[2:] if CAUSE.match(ln)), None)
    if cause:
        out = f"{out[:150]} ... {cause}"
    return out[:limit]


def error_text(e: BaseException, limit: int = 2000) -> str:
    """More of the message, for the reader of the JSON (the table shows `first_line`)."""
    return ANSI.sub("", f"{type(e).__name__}: {e}")[:limit]
