"""Progress inside a cell (issue 15.3): the child's progress file, the driver's watch, the
ETA from the epochs so far, and the CLI's bar. A fake child: nothing trains."""

from __future__ import annotations

import io
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress

from twinbench.process import progress
from twinbench.process.progress import CellProgress

FAKE_CHILD = """
import json, sys, time
from pathlib import Path
from twinbench.process import progress

job = json.loads(Path(sys.argv[1]).read_text())
result = Path(job["result_path"])
for phase, fields in [("train", dict(detail="epoch", step=1, steps=2)),
                      ("train", dict(detail="epoch", step=2, steps=2, eta_s=0.3)),
                      ("latency", {})]:
    progress.report(progress.cell_file(result), phase, **fields)
    time.sleep(0.25)  # a poll (0.1 s) sees every phase
result.write_text(json.dumps({"status": "ok"}))
"""


class FakeJob(BaseModel):
    result_path: Path


def test_the_driver_sees_each_phase_the_cell_reports(tmp_path):
    from twinbench.runner.local import run_cell

    (tmp_path / "fake_cell.py").write_text(textwrap.dedent(FAKE_CHILD))
    src = str(Path(progress.__file__).parents[2])
    env = {"PYTHONPATH": f"{tmp_path}:{src}", "PATH": "/usr/bin:/bin"}
    seen: list[str] = []
    raw = run_cell(FakeJob(result_path=tmp_path / "result.json"), None, tmp_path, 30.0,
                   entry="fake_cell", env=env, on_progress=lambda p: seen.append(p.text()))
    assert raw["status"] == "ok", raw
    phases = list(dict.fromkeys(t.split(",")[0] for t in seen))
    assert phases == ["train epoch 1/2", "train epoch 2/2", "latency"]
    assert any("ETA 0:00" in t for t in seen)


def test_eta_comes_from_the_epochs_so_far(tmp_path, monkeypatch):
    from twinbench.cell import measure as measure_cell

    written: list[dict] = []
    monkeypatch.setattr(progress, "report", lambda path, phase, **f: written.append(f))

    class Stack:
        def train_epoch(self, x, y, timer):
            time.sleep(0.05)
            return 1.0

        def predict(self, x):
            return np.zeros((len(x), 2), np.float32)

    y = np.array([0, 1] * 4)
    from twinbench.recipe import Recipe

    job = SimpleNamespace(run=SimpleNamespace(epochs=3, seed=0, divergence_factor=10.0,
                                              recipe=Recipe(name="run")),
                          result_path=tmp_path / "result.json")
    measure_cell.train(Stack(), job, SimpleNamespace(y_train=y, y_test=y), y, y, None)
    assert [(w["step"], w["steps"]) for w in written] == [(1, 3), (2, 3), (3, 3)]
    assert written[0]["eta_s"] is None  # nothing to go by before the first epoch ends
    # after epoch 1 two epochs are left, after epoch 2 one: ~0.1 s either way
    assert 0.09 < written[1]["eta_s"] < 0.5 and 0.045 < written[2]["eta_s"] < 0.25


def test_text_counts_the_eta_down_and_junk_files_are_ignored(tmp_path):
    p = CellProgress("train", "epoch", 3, 10, eta_s=130.0, at=1000.0)
    assert p.text(now=1000.0) == "train epoch 3/10, ETA 2:10"
    assert p.text(now=1125.0) == "train epoch 3/10, ETA 0:05"
    assert p.text(now=2000.0).endswith("ETA 0:00")
    assert CellProgress("loadgen").text() == "loadgen"
    for junk in ("", "{", "[1]", '{"phase": 3}', '{"phase": "x", "bogus": 1}'):
        assert progress.parse(junk) is None
    progress.report(tmp_path / "nope" / "progress.json", "train")  # never raises


def test_the_bar_shows_the_phase_with_names_escaped():
    from twinbench.cli import _progress_events

    with Progress(console=Console(file=io.StringIO())) as bar:
        events = _progress_events(bar)
        events.on_cell_progress("digits/[bold]x/cnn", "torch",
                                CellProgress("train", "epoch", 2, 5, eta_s=61.0, at=time.time()))
        (task,) = bar.tasks
    assert task.description.startswith("digits/\\[bold]x/cnn / torch: train epoch 2/5, ETA 1:0")


def test_the_progress_module_is_stdlib_only():
    # the cell process imports it before pinning its threads and before any framework
    code = ("import sys; import twinbench.process.progress; "
            "print(sorted(m for m in ('numpy', 'pydantic') if m in sys.modules))")
    import subprocess

    src = str(Path(progress.__file__).parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": src}, check=True).stdout
    assert out.strip() == "[]"
