"""Render the report context (twinbench.report.build.context) with jinja2: report.html with
plotly.js inline (autoescape on: every string from a run is escaped) and report.md with
PNG charts written by plotly's static export (kaleido, which drives a local chromium)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
PNG_SIZE = (1000, 380)


def _env(markdown: bool) -> Environment:
    # HTML: jinja's autoescape. Markdown: every value goes through _md_escape instead (an
    # entity renders as its character in any Markdown renderer, so HTML from a run stays
    # inert text; table pipes and line breaks are escaped too).
    env = Environment(loader=PackageLoader("twinbench.report", "templates"),
                      autoescape=not markdown, finalize=_md_escape if markdown else None,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["ticks"] = _ticks
    env.filters["code"] = _md_code
    return env


def _ticks(v: Any) -> Markup:
    """HTML: escape, then show `command` spans as <code> (escaping first keeps it safe)."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(v))))


# Our prose marks commands as `code` spans; a span's content is literal in Markdown (no
# link, image or HTML), so spans are kept and everything else is escaped.
_CODE_SPAN = re.compile(r"(`[^`\n]+`)")
# CommonMark's backslash escapes: links, images, emphasis, code and autolinks all start
# with one of these; `\\` goes first so the escapes added here stay escapes.
_MD_PUNCT = str.maketrans({c: "\\" + c for c in "\\`*_[]()!~"})


def _md_escape(v: Any) -> Any:
    """A value placed in report.md, as inert text: a foreign results.json's
    "[x](http://…)", "![x](…)" or "<img …>" stays text. HTML is entity-escaped, Markdown
    punctuation backslash-escaped, table pipes and line breaks escaped everywhere."""
    if isinstance(v, Markup) or v is None:
        return v
    parts = _CODE_SPAN.split(str(v).replace("\r", " ").replace("\n", " "))
    out = [p if i % 2 else p.translate(_MD_PUNCT).replace("&", "&amp;").replace("<", "&lt;")
           .replace(">", "&gt;") for i, p in enumerate(parts)]
    return "".join(out).replace("|", "\\|")


def _md_code(v: Any) -> Markup:
    """`v` as a Markdown code span, shown exactly (no escape applies inside a span): the
    fence is one backtick longer than any run of backticks in it."""
    text = " ".join(str(v).splitlines())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Markup(f"{fence}{pad}{text}{pad}{fence}")


def _charts(ctx: dict) -> list[tuple[str, Any]]:
    """(id, figure) for every chart, in page order; ids are ours, never a run's strings."""
    out = []
    for s in ctx["sections"]:
        for fig in s["figures"]:
            out.append((f"chart-{len(out) + 1}", fig))
    return out


def write_html(ctx: dict, path: Path) -> Path:
    from plotly.offline import get_plotlyjs

    charts = iter(_charts(ctx))
    sections = []
    for s in ctx["sections"]:
        html = []
        for _ in s["figures"]:
            cid, fig = next(charts)
            # Figures with side-by-side subplots take a whole row of the grid.
            html.append({"wide": "xaxis2" in fig.layout.to_plotly_json(),
                         "html": Markup(fig.to_html(full_html=False, include_plotlyjs=False,
                                                   div_id=cid, config=PLOT_CONFIG))})
        sections.append({**s, "charts": html})
    page = _env(False).get_template("report.html.j2").render(
        **{**ctx, "sections": sections}, plotly_js=Markup(get_plotlyjs()))
    path.write_text(page, encoding="utf-8")
    return path


def write_pngs(charts: list[tuple[str, Any]], folder: Path) -> tuple[list[Path], str | None]:
    """All charts in one kaleido session (one browser start). On failure: no PNGs and why."""
    if not charts:
        return [], None
    import plotly.io as pio

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{cid}.png" for cid, _ in charts]
    try:
        pio.write_images([f for _, f in charts], paths, width=PNG_SIZE[0], height=PNG_SIZE[1])
    except Exception as e:  # noqa: BLE001 - any failure of the static export is reported
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return [], (f"charts not rendered as PNG ({type(e).__name__}: {why}); the HTML report "
                    f"has them. PNG export needs kaleido and a chromium "
                    f"(`apt-get install chromium`)")
    return paths, None


def write_markdown(ctx: dict, path: Path, folder: Path) -> dict[str, Path]:
    charts = _charts(ctx)
    pngs, problem = write_pngs(charts, folder)
    # our own file names, not a run's strings: a link target, so not escaped
    images = iter([Markup(f"{folder.name}/{p.name}") for p in pngs] if pngs
                  else [None] * len(charts))
    sections = [{**s, "images": [(next(images), f.layout.title.text) for f in s["figures"]]}
                for s in ctx["sections"]]
    twins = [{**t, "sides": [{**side, "code": Markup(side["source"]),
                              "fence": _fence(side["source"])} for side in t["sides"]]}
             if "sides" in t else t for t in ctx["twins"]]
    training = [{**t, "code": Markup(t["source"]), "fence": _fence(t["source"])}
                for t in ctx["training"]]
    page = _env(True).get_template("report.md.j2").render(
        **{**ctx, "sections": sections, "twins": twins, "training": training},
        chart_problem=problem)
    path.write_text(page, encoding="utf-8")
    out = {"md": path}
    out.update({f"png:{p.stem}": p for p in pngs})
    return out


def _fence(source: str) -> Markup:
    """A code fence longer than any run of backticks in the code (our own source files)."""
    n = 3
    while "`" * n in source:
        n += 1
    return Markup("`" * n)
