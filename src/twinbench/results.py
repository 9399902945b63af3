"""The results contract (see docs/results.md). Later versions add fields, never rename."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2  # 2: `repeat` on cells, status "diverged"
# "unverified": measured, but the twin failed a parity check (the reason names it).
# "diverged": training stopped early on a non-finite or exploding loss.
Status = Literal["ok", "failed", "skipped", "unverified", "diverged"]


class Cell(BaseModel):
    model_config = ConfigDict(extra="allow")
    task: str
    model: str
    stack: str
    status: Status
    dataset: str | None = None
    repeat: int = 0
    reason: str | None = None
    params: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    wall_s: float | None = None


class Results(BaseModel):
    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    run_id: str
    environment: dict[str, Any]
    config: dict[str, Any]
    cells: list[Cell] = Field(default_factory=list)

    def write(self, out_dir: Path, name: str = "results.json") -> Path:
        """Write atomically (a crash mid-write never leaves half a file)."""
        path = out_dir / name
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: Path) -> "Results":
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def cell(self, task: str, stack: str) -> Cell:
        for c in self.cells:
            if c.task == task and c.stack == stack:
                return c
        raise KeyError(f"no cell {task}/{stack}")

    def to_dataframe(self):  # -> pandas.DataFrame
        """One row per cell, metrics flattened with dotted names. Needs pandas."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from e
        rows = []
        for c in self.cells:
            row = {k: getattr(c, k) for k in ("task", "model", "stack", "status", "reason",
                                              "params")}
            row.update(pd.json_normalize(c.metrics, sep=".").to_dict("records")[0]
                       if c.metrics else {})
            rows.append(row)
        return pd.DataFrame(rows)


def newer_schema(res: Results, source: object) -> str | None:
    """One line when `res` was written by a newer twinbench than this one: it is read
    anyway (versions only add fields), but what the newer fields say is not shown."""
    if res.schema_version <= SCHEMA_VERSION:
        return None
    return (f"{source}: schema_version {res.schema_version} is newer than this twinbench's "
            f"({SCHEMA_VERSION}); fields it does not know are ignored")
