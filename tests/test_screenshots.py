"""Chromium screenshots of the home page, the laws page, an example page and a report.

Each page is opened in headless Chromium at 1280 x 900: every image must load, the page
must not scroll sideways, and the pages that carry figures must show them. A report leads
with its verdict within the first screen. The screenshots go to a temporary folder, or to
``$NORMSCALE_SCREENSHOTS`` (``make screenshots`` writes build/screenshots/) to look at.
Skipped where Chromium is not installed (``make browser`` installs it where it can).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from laws_synthetic import synthetic_curves
from test_report import CHROMIUM, _fill

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 900

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium, or make browser)")

# Appended to a copy of a page: after the images loaded, the page's widths, its images and
# where its first verdict sits.
PROBE = """<script>window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var v = document.querySelector(".verdict");
  var d = document.createElement("div");
  d.id = "probe";
  d.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
  d.setAttribute("data-view-width", window.innerWidth);
  d.setAttribute("data-images", ok + "/" + imgs.length);
  d.setAttribute("data-verdict-top", v ? Math.round(v.getBoundingClientRect().top) : -1);
  document.body.appendChild(d); });</script>"""


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
         "--virtual-time-budget=8000", *extra, url],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-1000:]
    return r


def probe(page: Path, profile: Path) -> dict[str, int]:
    """Open a copy of ``page`` (beside it, so its links work) with the probe appended."""
    copy = page.with_name("probe-" + page.name)
    copy.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(copy.as_uri(), profile, f"--window-size={WIDTH},{HEIGHT}", "--dump-dom")
    copy.unlink()
    m = re.search(r'<div id="probe" data-scroll-width="(\d+)" data-view-width="(\d+)" '
                  r'data-images="(\d+)/(\d+)" data-verdict-top="(-?\d+)"', dom.stdout)
    assert m is not None, f"the probe did not run on {page}"
    keys = ("scroll_width", "view_width", "images_loaded", "images", "verdict_top")
    return dict(zip(keys, map(int, m.groups()), strict=True))


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("NORMSCALE_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="no docs extra (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                        "--site-dir", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from normscale.cli import main
    from normscale.store import Store

    folder = tmp_path_factory.mktemp("study")
    with Store(folder / "runs.db") as store:
        rng = np.random.default_rng(11)
        _fill(store, synthetic_curves(gamma1=0.5, gamma2=1.0, P=(250, 500, 1000, 2000, 4000),
                                      n_seeds=2, noise=0.02, rng=rng), optimizer="adam")
    assert main(["report", "--store", str(folder / "runs.db"), "--out", str(folder / "report"),
                 "--n-boot", "10", "--quiet"]) == 0
    return folder / "report" / "index.html"


PAGES = {"home": "index.html", "laws": "laws/index.html",
         "example": "example-cnn-mnist/index.html"}


@pytest.mark.parametrize("name", [*PAGES, "report"])
def test_page_shows_its_figures_without_sideways_scrolling(name, site, report, shots,
                                                            tmp_path):
    page = report if name == "report" else site / PAGES[name]
    seen = probe(page, tmp_path / "profile")
    assert seen["scroll_width"] <= seen["view_width"] == WIDTH, seen
    assert seen["images"] >= 1 and seen["images_loaded"] == seen["images"], seen
    if name == "report":  # the verdict table leads, within the first screen
        assert 0 <= seen["verdict_top"] < HEIGHT, seen
    png = shots / f"{name}.png"
    _chromium(page.as_uri(), tmp_path / "profile", f"--window-size={WIDTH},{2 * HEIGHT}",
              f"--screenshot={png}")
    from PIL import Image

    with Image.open(png) as img:
        assert img.size == (WIDTH, 2 * HEIGHT)
        colours = img.convert("RGB").resize((160, 225)).getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 50, f"{png} looks blank"
