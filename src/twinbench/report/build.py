"""`build_report(run_dir)`: read a run folder (results.json, verify.json, and export.json /
pipelines.json where present), aggregate, and write report.html (one self-contained file,
plotly.js inline) and report.md (PNG charts in report_files/). Framework-free."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twinbench.analysis import aggregate as agg
from twinbench.errors import ReportError  # noqa: F401 - raised here, named here too
from twinbench.report import charts, codesize, tables
from twinbench.analysis.classic import classic_rows
from twinbench.analysis.verdicts import all_verdicts, overview, scope_name
from twinbench.models import family
from twinbench.results import Cell, Results, newer_schema


@dataclass
class RunData:
    run_dir: Path
    results: Results | None
    verify: Results | None
    export: Results | None
    pipelines: dict | None
    # One line each: a section left out (its file unreadable), a newer schema_version.
    warnings: list[str] = field(default_factory=list)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _read(path: Path, warnings: list[str]) -> Results | None:
    if not path.exists():
        return None
    try:
        res = Results.read(path)
    except (ValidationError, ValueError, OSError) as e:
        raise ReportError(f"{path}: not a twinbench results file ({_first_line(e)})") from None
    note = newer_schema(res, path)
    if note:
        warnings.append(note)
    return res


def _optional(path: Path, warnings: list[str], problems: list[str]) -> Results | None:
    """verify.json or export.json: an unreadable one leaves its section out, with a
    warning, rather than the whole report."""
    try:
        return _read(path, warnings)
    except ReportError as e:
        problems.append(str(e))
        warnings.append(f"{e}; its section is left out")
        return None


def _pipelines(path: Path, warnings: list[str], problems: list[str]) -> dict | None:
    """pipelines.json, checked by building its table (valid JSON of another shape would
    otherwise fail half-way through the report); unreadable: left out, with a warning."""
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
        Results.model_validate(raw)
        tables.pipelines_table(raw)
    except (ValueError, OSError, TypeError, KeyError, AttributeError, IndexError) as e:
        problems.append(f"{path}: not a twinbench pipelines file ({_first_line(e)})")
        warnings.append(f"{problems[-1]}; its section is left out")
        return None
    return raw


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run folder (a run folder is runs/<run id>/, "
                          f"holding results.json)")
    warnings: list[str] = []
    problems: list[str] = []
    results = _read(run_dir / "results.json", warnings)
    verify = _optional(run_dir / "verify.json", warnings, problems)
    pipelines = _pipelines(run_dir / "pipelines.json", warnings, problems)
    if results is None and verify is None and pipelines is None:
        if problems:  # nothing left to report: the unreadable file is the error
            raise ReportError(problems[0])
        raise ReportError(f"{run_dir}: holds none of results.json, verify.json, "
                          f"pipelines.json; `twinbench run`, `verify` or `pipelines` writes "
                          f"them")
    export = _optional(run_dir / "export.json", warnings, problems)
    return RunData(run_dir, results, verify, export, pipelines, warnings)


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
            "tables": tables.scope_tables(gs, [c for c in parity_cells if c.model == model])
            + ([tables.portability_table(port)] if port else []),
            "figures": [f for f in figs if f is not None],
            "portability": bool(port),
        })
    return sections


def pipeline_sections(data: RunData) -> list[dict[str, Any]]:
    """The input-pipeline measurements (pipelines.json) as a section: table and chart."""
    if not data.pipelines:
        return []
    from twinbench.report.pipelines import figure

    try:
        fig = figure(Results.model_validate(data.pipelines))
    except ValueError:
        fig = None
    return [{"anchor": "pipelines-chart", "title": "Input pipelines (samples/s)",
             "tables": [], "figures": [fig] if fig is not None else [],
             "portability": False}]


def scaling_sections(cells: list[Cell]) -> list[dict[str, Any]]:
    """A sweep's scaling map and a tune's table (report.scaling); none for other runs."""
    from twinbench.report.scaling import sections

    return sections(cells)


def context(data: RunData) -> dict[str, Any]:
    """Everything the templates show, as plain values and plotly figures."""
    cells: list[Cell] = data.results.cells if data.results else []
    groups = agg.group_cells(cells)
    portability = portability_entries(data)
    # a sweep point (cnn[width=2]) shows its family's twins
    families = [family(c.model) for c in cells] or [
        family(c.model) for c in (data.verify.cells if data.verify else [])]
    twins, training = codesize.twin_sources(families, data.run_dir), codesize.training_sources()
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
        "sections": scope_sections(data, groups, portability) + scaling_sections(cells)
        + pipeline_sections(data),
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


def build_report(run_dir: Path, html: bool = True, markdown: bool = True,
                 on_warning: Callable[[str], None] = lambda message: None) -> dict[str, Path]:
    """Write report.html and report.md (with report_files/*.png) into `run_dir`; returns
    the paths written. Raises ReportError on a missing or unreadable run folder, or one
    the report cannot be written into; `on_warning` gets each section left out."""
    from twinbench.report import render

    data = load_run(Path(run_dir))
    for w in data.warnings:
        on_warning(w)
    ctx = context(data)
    written: dict[str, Path] = {}
    try:
        if html:
            written["html"] = render.write_html(ctx, data.run_dir / "report.html")
        if markdown:
            written.update(render.write_markdown(ctx, data.run_dir / "report.md",
                                                 data.run_dir / "report_files"))
    except OSError as e:  # a read-only folder, a folder where report.html should be
        where = e.filename or data.run_dir
        raise ReportError(f"{where}: cannot write the report ({e.strerror or e})") from None
    return written
