"""Open a report in headless chromium, offline, and say what rendered.

`python -m twinbench.report.browser runs/<id>/report.html [--screenshot PNG]` prints a
JSON summary. The page is copied with a small collector injected first into <head>: it
records uncaught errors, failed resource loads, unhandled rejections, `console.error`
calls and `alert()` calls, then (after load) counts each chart's rendered `.main-svg`
elements, and writes all that into the DOM, which `--dump-dom` prints. Console errors
are caught in the page rather than over the DevTools protocol: one subprocess, no
protocol client to keep in step with chromium versions.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
COLLECTOR = """<script>
window.__tb = {errors: []};
window.addEventListener('error', function (e) {
  var t = e.target;
  var what = e.message || (t && (t.src || t.href)) || 'a resource failed to load';
  window.__tb.errors.push('error: ' + what);
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__tb.errors.push('unhandled rejection: ' + e.reason);
});
(function () {
  var orig = console.error;
  console.error = function () {
    window.__tb.errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return orig.apply(console, arguments);
  };
})();
window.alert = function (m) { window.__tb.errors.push('alert: ' + m); };
window.addEventListener('load', function () {
  setTimeout(function () {
    var charts = Array.prototype.map.call(document.querySelectorAll('.plotly-graph-div'),
      function (d) {
        return {id: d.id, main_svg: d.querySelectorAll('.main-svg').length,
                height: d.getBoundingClientRect().height};
      });
    // the first screen: every h2 in page order, with where it starts
    var heads = Array.prototype.map.call(document.querySelectorAll('h2'), function (h) {
      return {id: h.id || (h.parentElement && h.parentElement.id) || '', text: h.textContent,
              top: h.getBoundingClientRect().top};
    });
    var rel = document.getElementById('reliability');
    var pre = document.createElement('pre');
    pre.id = '__tb_report';
    pre.textContent = JSON.stringify({errors: window.__tb.errors, charts: charts,
                                      title: document.title, headings: heads,
                                      viewport_height: window.innerHeight,
                                      reliability: rel ? {text: rel.textContent,
                                        top: rel.getBoundingClientRect().top} : null});
    document.body.appendChild(pre);
  }, 1000);
});
</script>"""
# Offline: every host resolves to nothing, and chromium's own background traffic is off.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-default-apps", "--disable-sync",
         "--disable-extensions", "--no-first-run", "--no-default-browser-check",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(binary: str, args: list[str], profile: Path, timeout: float) -> str:
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"chromium exited {out.returncode}: {tail}")
    return out.stdout


def check_page(page: Path, screenshot: Path | None = None, binary: str | None = None,
               timeout: float = 180.0, window: tuple[int, int] = (1400, 2400)) -> dict:
    """Load `page` offline; return {"errors", "charts", "title", "screenshot"}. Raises
    RuntimeError when chromium is missing or fails."""
    binary = binary or find_chromium()
    if binary is None:
        raise RuntimeError(f"no chromium found (looked for {', '.join(CANDIDATES)}); "
                           f"apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="twinbench-browser-") as tmp:
        probe = Path(tmp) / "page.html"
        text = Path(page).read_text(encoding="utf-8")
        probe.write_text(text.replace("<head>", "<head>" + COLLECTOR, 1), encoding="utf-8")
        dom = _chromium(binary, ["--dump-dom", probe.as_uri()], Path(tmp) / "p1", timeout)
        found = re.search(r'<pre id="__tb_report">(.*?)</pre>', dom, re.DOTALL)
        if not found:
            raise RuntimeError("the page never finished loading (no collector output)")
        result = json.loads(html.unescape(found.group(1)))
        if screenshot is not None:
            _chromium(binary, [f"--screenshot={Path(screenshot).resolve()}",
                               f"--window-size={window[0]},{window[1]}", "--hide-scrollbars",
                               Path(page).resolve().as_uri()], Path(tmp) / "p2", timeout)
            result["screenshot"] = str(screenshot)
    return result


def pixel_stats(png: Path) -> dict:
    """Grey-level standard deviation and distinct colours of a PNG (a blank page has ~0)."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float64)  # (H, W, 3)
    grey = rgb.mean(axis=2)
    colours = len(np.unique(rgb.reshape(-1, 3)[:: 7], axis=0))
    return {"std": float(grey.std()), "colours_sampled": int(colours),
            "size": [int(rgb.shape[1]), int(rgb.shape[0])]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args(argv)
    try:
        result = check_page(args.page, args.screenshot)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.screenshot:
        result["pixels"] = pixel_stats(args.screenshot)
    print(json.dumps(result, indent=1))
    bad = result["errors"] or any(c["main_svg"] == 0 for c in result["charts"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
