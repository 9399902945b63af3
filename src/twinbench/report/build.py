"""`build_report(run_dir)`: read a run folder (results.json, verify.json, and export.json /
pipelines.json where present), aggregate, and write report.html (one self-contained file,
plotly.js inline) and report.md (PNG charts in report_files/). Framework-free."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twinbench.report import aggregate as agg
from twinbench.report import charts, codesize, tables
from twinbench.report.classic import classic_rows
from twinbench.report.verdicts import all_verdicts, overview, scope_name
from twinbench.results import Cell, Results


class ReportError(ValueError):
    """Bad input (no such run folder, an unreadable results file): one line for the user."""


@dataclass
class RunData:
    run_dir: Path
    results: Results | None
    verify: Results | None
    export: Results | None
    pipelines: dict | None


def _read(path: Path) -> Results | None:
    if not path.exists():
        return None
    try:
        return Results.read(path)
    except (ValidationError, ValueError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ReportError(f"{path}: not a twinbench results file ({first})") from None


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run folder (a run folder is runs/<run id>/, "
                          f"holding results.json)")
    results, verify = _read(run_dir / "results.json"), _read(run_dir / "verify.json")
    pipelines = None
    if (run_dir / "pipelines.json").exists():
        try:
            pipelines = json.loads((run_dir / "pipelines.json").read_text())
        except (ValueError, OSError) as e:
            raise ReportError(f"{run_dir / 'pipelines.json'}: unreadable ({e})") from None
    if results is None and verify is None and pipelines is None:
        raise ReportError(f"{run_dir}: holds none of results.json, verify.json, "
                          f"pipelines.json; `twinbench run`, `verify` or `pipelines` writes "
                          f"them")
    return RunData(run_dir, results, verify, _read(run_dir / "export.json"), pipelines)


def portability_entries(data: RunData) -> dict[tuple, list[dict]]:
    """(task, dataset, model, stack) -> portability entries, from export.json or from the
    timed cells (`run --export` copies them there)."""
    out: dict[tuple, list[dict]] = {}
    for res in (data.export, data.results):
        for c in res.cells if res else []:
            es = (c.model_extra or {}).get("portability")
            key = (c.task, c.dataset or "", c.model, c.stack)
            if isinstance(es, list) and es and key not in out:
                out[key] = [e for e in es if isinstance(e, dict)]
    return out


def _slug(n: int, prefix: str) -> str:
    return f"{prefix}-{n}"  # never built from a run's strings: those may be anything


def scope_sections(data: RunData, groups: list[agg.Group],
                   portability: dict[tuple, list[dict]]) -> list[dict]:
    """One section per (node, task, dataset, model): its tables and charts."""
    sections = []
    parity_cells = data.verify.cells if data.verify else []
    for n, (key, gs) in enumerate(agg.scopes(groups).items()):
        _node, task, dataset, model = key
        port = {k[3]: v for k, v in portability.items() if k[:3] == (task, dataset, model)}
        figs = [
            charts.learning_curves(gs),
            charts.bars_with_ci(gs, ["train_samples_per_s"], "Training throughput (95% CI)"),
            charts.bars_with_ci(gs, ["infer_samples_per_s_b256"],
                                "Batch-256 inference throughput"),
            charts.latency_distribution(gs),
            charts.bars_with_ci(gs, ["peak_rss_mb"], "Peak resident memory (MiB)"),
            charts.flops_chart(gs),
            charts.portability_heatmap(port, "Portability: export → reload → match"),
        ]
        sections.append({
            "anchor": _slug(n, "task"), "title": scope_name(key),
            "tables": tables.scope_tables(gs, [c for c in parity_cells if c.model == model]),
            "figures": [f for f in figs if f is not None],
            "portability": bool(port),
        })
    return sections


def pipeline_sections(data: RunData) -> list[dict[str, Any]]:
    """The input-pipeline measurements (pipelines.json) as a section: table and chart."""
    if not data.pipelines:
        return []
    from twinbench.pipelines.report import figure

    try:
        fig = figure(Results.model_validate(data.pipelines))
    except ValueError:
        fig = None
    return [{"anchor": "pipelines-chart", "title": "Input pipelines (samples/s)",
             "tables": [], "figures": [fig] if fig is not None else [],
             "portability": False}]


def context(data: RunData) -> dict[str, Any]:
    """Everything the templates show, as plain values and plotly figures."""
    cells: list[Cell] = data.results.cells if data.results else []
    groups = agg.group_cells(cells)
    portability = portability_entries(data)
    families = [c.model for c in cells] or [c.model for c in (data.verify.cells
                                                               if data.verify else [])]
    twins, training = codesize.twin_sources(families), codesize.training_sources()
    verdicts = all_verdicts(groups, cells, portability, twins, training)
    parity_cells = data.verify.cells if data.verify else cells
    main = data.results or data.verify or Results.model_validate(data.pipelines)
    nodes = sorted({g.node for g in groups if g.node})
    return {
        "run_id": main.run_id, "run_dir": str(data.run_dir),
        "overview": overview(data.results, groups, parity_cells),
        "scoreboards": [tables.scoreboard(gs, scope_name(key))
                        for key, gs in agg.scopes(groups).items()],
        "verdicts": verdicts,
        "sections": scope_sections(data, groups, portability) + pipeline_sections(data),
        "twins": twins, "training": training,
        "classic": classic_rows(data.results, parity_cells, twins, training, portability,
                                verdicts),
        "parity": tables.parity_table(parity_cells),
        "pipelines": tables.pipelines_table(data.pipelines),
        "cells": tables.cells_table(cells),
        "environment": tables.environment_tables(main),
        "settings": tables.settings_table(cells),
        "noise": tables.noise_table(agg.noise_warnings(groups)),
        "nodes": nodes,
        "has_results": data.results is not None,
    }


def build_report(run_dir: Path, html: bool = True, markdown: bool = True) -> dict[str, Path]:
    """Write report.html and report.md (with report_files/*.png) into `run_dir`; returns
    the paths written. Raises ReportError on a missing or unreadable run folder."""
    from twinbench.report import render

    data = load_run(Path(run_dir))
    ctx = context(data)
    written: dict[str, Path] = {}
    if html:
        written["html"] = render.write_html(ctx, data.run_dir / "report.html")
    if markdown:
        written.update(render.write_markdown(ctx, data.run_dir / "report.md",
                                             data.run_dir / "report_files"))
    return written
