"""Progress inside a cell, from its process to the driver's display. The cell writes a small
JSON file in its folder at each phase change (atomic: the driver never reads half a file);
the driver's watch loop, which polls every 0.1 s anyway, reads it when it changes.

Stdlib only: the cell process imports this before any framework, and a write is a few
hundred bytes between phases, never inside a timed step.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

FILE = "progress.json"
REFRESH_S = 1.0  # the driver re-announces an unchanged phase this often: the ETA counts down


@dataclass(frozen=True)
class CellProgress:
    phase: str  # import, build, probe, train, latency, throughput, loadgen, export, reload
    detail: str | None = None  # "epoch", a format name
    step: int | None = None  # 1-based: the epoch or format running now
    steps: int | None = None
    eta_s: float | None = None  # seconds left in this phase when written
    at: float = 0.0  # time.time() when written

    def text(self, now: float | None = None) -> str:
        """E.g. "train epoch 3/10, ETA 0:42", the ETA counted down from when written."""
        words = [self.phase, *([self.detail] if self.detail else []),
                 *([f"{self.step}/{self.steps}"] if self.step else [])]
        if self.eta_s is not None:
            left = max(0.0, self.eta_s - ((now or time.time()) - self.at))
            words[-1] += f", ETA {int(left // 60)}:{int(left % 60):02d}"
        return " ".join(words)


def cell_file(result_path: Path) -> Path:
    """The progress file of the cell whose result goes to `result_path` (same folder)."""
    return Path(result_path).with_name(FILE)


def report(path: Path, phase: str, **fields: object) -> None:
    """Write the cell's current phase (CellProgress fields). Never fails the cell: the
    display is a courtesy, the measurement is not."""
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"phase": phase, **fields, "at": time.time()}))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


def parse(text: str) -> CellProgress | None:
    """A progress record from the file's text, or None when it is not one."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or not isinstance(raw.get("phase"), str):
            return None
        return CellProgress(**raw)
    except (ValueError, TypeError):
        return None


class Watcher:
    """Called from the driver's poll loop: passes the progress on when the file changed,
    and every REFRESH_S after (so a shown ETA moves). The file is read at each poll (a few
    hundred bytes): an mtime or inode can repeat between two quick writes, the text not."""

    def __init__(self, path: Path, on_progress: Callable[[CellProgress], None]) -> None:
        self.path, self.on_progress = path, on_progress
        self.text = ""
        self.last: CellProgress | None = None
        self.shown = 0.0

    def poll(self) -> None:
        try:
            text = self.path.read_text()
        except OSError:
            return
        now = time.monotonic()
        if text != self.text:
            self.text, self.last = text, parse(text) or self.last
        elif now - self.shown < REFRESH_S:
            return
        if self.last is not None:
            self.shown = now
            self.on_progress(self.last)
