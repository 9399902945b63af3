"""A real browser opens report.html headless and offline: no console errors, every chart
rendered (plotly puts `.main-svg` into each chart div), and a screenshot that is not blank.
Skips only where no chromium can be found (`.ci/run` installs Debian's)."""

from __future__ import annotations

import pytest
from report_fixtures import hostile_results, write_run

from twinbench.report.browser import check_page, find_chromium, pixel_stats
from twinbench.report.build import build_report

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium found (chromium, chromium-browser, google-chrome): "
           "apt-get install chromium, as .ci/run does")


def test_report_renders_in_headless_chromium(tmp_path):
    run = write_run(tmp_path / "run", hostile_results())  # hostile names: no alert may run
    page = build_report(run, markdown=False)["html"]
    shot = tmp_path / "report.png"
    seen = check_page(page, screenshot=shot)
    assert seen["errors"] == []
    expected = page.read_text().count('class="plotly-graph-div"')
    assert expected >= 4 and len(seen["charts"]) == expected
    assert all(c["main_svg"] >= 1 and c["height"] > 100 for c in seen["charts"]), seen["charts"]
    assert seen["title"].startswith("twinbench report")
    pixels = pixel_stats(shot)
    assert pixels["std"] > 10 and pixels["colours_sampled"] > 50, pixels
    # The first screen answers first: what ran, the reliability line, the scoreboard, and
    # only then the verdicts; the reliability line is on the first screen.
    order = [h["text"] for h in seen["headings"]][:3]
    assert order == ["What ran", "Scoreboard", "Verdicts per scenario"], order
    rel = seen["reliability"]
    assert rel is not None and rel["top"] < seen["viewport_height"], (rel, seen["viewport_height"])
    assert "process per stack: rankings are indicative" in rel["text"]
    assert "A/A floor" in rel["text"] and "contended cells" in rel["text"]


def test_checker_sees_errors_unrendered_charts_and_blank_pages(tmp_path):
    """The same check on a broken page must fail, or the test above proves nothing."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                    '<div class="plotly-graph-div" id="c1"></div>'
                    '<script>console.error("bad"); undefined_function();</script>'
                    '<img src="https://example.invalid/x.png"></body></html>')
    shot = tmp_path / "blank.png"
    seen = check_page(page, screenshot=shot)
    assert any("console.error: bad" in e for e in seen["errors"])
    assert any("undefined_function" in e for e in seen["errors"])
    assert any("example.invalid" in e for e in seen["errors"])  # offline: the load fails
    assert seen["charts"] == [{"id": "c1", "main_svg": 0, "height": 0}]
    assert pixel_stats(shot)["std"] < 10
