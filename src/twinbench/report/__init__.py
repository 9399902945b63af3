"""Reports: the console tables (`console`), and the HTML / Markdown report
(`build_report(run_dir)`, in `build`) with its statistics (`aggregate`).

`build_report` is imported lazily, so `twinbench.report.console` stays light (no plotly)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("build_report", "ReportError"):
        from twinbench.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'twinbench.report' has no attribute {name!r}")
