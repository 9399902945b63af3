"""The results contract (see docs/results.md). Later versions add fields, never rename."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2  # 2: `repeat` on cells, status "diverged"
# "unverified": measured, but the twin failed a parity check (the reason names it).
# "diverged": training stopped early on a non-finite or exploding loss.
Status = Literal["ok", "failed", "skipped", "unverified", "diverged"]


class CellKey(NamedTuple):
    """One cell of a run: which task, data set, model family, stack and repeat."""

    task: str
    dataset: str
    model: str
    stack: str
    repeat: int


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
        """Write atomically (a crash mid-write never leaves half a file). results.json gets
        its flat twin results.csv beside it, one row per cell (see `rows`)."""
        path = out_dir / name
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2))
        tmp.replace(path)
        if name == "results.json":
            write_text_atomic(out_dir / "results.csv", csv_text(self.rows()))
        return path

    @classmethod
    def read(cls, path: Path) -> "Results":
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def cell(self, task: str, stack: str) -> Cell:
        for c in self.cells:
            if c.task == task and c.stack == stack:
                return c
        raise KeyError(f"no cell {task}/{stack}")

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per cell: its identity (dataset and repeat tell the rows of a
        repeated run apart), the settings that change its numbers, then the metrics with
        dotted names ("latency_b1_ms.p50"). No pandas needed."""
        rows = []
        for c in self.cells:
            row = {k: getattr(c, k) for k in ROW_FIELDS}
            row.update(threads=c.settings.get("threads"),
                       batch_size=c.settings.get("batch_size"))
            row.update(flatten(c.metrics))
            rows.append(row)
        return rows

    def to_dataframe(self):  # -> pandas.DataFrame
        """`rows()` as a DataFrame. Needs pandas."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.rows())


ROW_FIELDS = ("task", "dataset", "model", "stack", "repeat", "status", "reason", "params",
              "wall_s")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys, as pandas.json_normalize(sep=".") does;
    lists stay whole."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as CSV; the header is every key in first-seen order. A list or dict (an epoch
    curve, raw samples) is one JSON cell, None an empty one."""
    rows = list(rows)
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                         for k, v in r.items()})
    return buf.getvalue()


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, newline="")  # csv writes its own line ends
    tmp.replace(path)


def newer_schema(res: Results, source: object) -> str | None:
    """One line when `res` was written by a newer twinbench than this one: it is read
    anyway (versions only add fields), but what the newer fields say is not shown."""
    if res.schema_version <= SCHEMA_VERSION:
        return None
    return (f"{source}: schema_version {res.schema_version} is newer than this twinbench's "
            f"({SCHEMA_VERSION}); fields it does not know are ignored")


def cell_key(c: Cell | dict) -> CellKey:
    """The key of a cell, or of a cell record read back from the history."""
    d = c if isinstance(c, dict) else c.model_dump()
    return CellKey(d["task"], d.get("dataset") or "", d["model"], d["stack"],
                   d.get("repeat", 0))
