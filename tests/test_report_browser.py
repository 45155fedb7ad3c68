"""The report in a real browser: Debian's headless Chromium (installed by `make test` through
scripts/install-chromium.sh) opens report/index.html and report/map.html from file:// with the network
off, and must see no failed resource load, no JavaScript error, and a page that is not blank. A control
page that needs the network (a CDN script, a missing image, a script error) shows the checks can fail."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from cdp import Browser, chromium_path
from test_stats_tables import shared_run  # the fake run of the stats tests, built once per session


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    from ihs_hpc.pipeline.report import run_report

    config, _, _, _ = shared_run(tmp_path_factory)
    result = run_report(config, None, lambda *a: None)
    assert result["map"].endswith("map.html")
    return config.run_dir / "report"


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:  # CI installs it; a missing browser is a failure, not a skip
        pytest.fail("chromium not found: run `make test` (scripts/install-chromium.sh installs Debian's chromium)")
    with Browser() as b:
        yield b


def _not_blank(png: bytes) -> tuple[float, int]:
    """Share of pixels unlike the most common colour, and the number of distinct colours."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    return 1.0 - counts.max() / counts.sum(), len(colours)


def test_pages_reference_nothing_outside_the_report_folder(report_dir):
    for name in ("index.html", "map.html"):
        text = (report_dir / name).read_text()
        # what a page loads: src attributes, <link href> (style sheets, icons) and CSS url(); hyperlinks load nothing
        refs = (re.findall(r'\bsrc\s*=\s*["\']([^"\']+)', text) + re.findall(r"url\(([^)]+)\)", text)
                + re.findall(r'<link\b[^>]*\bhref\s*=\s*["\']([^"\']+)', text))
        remote = [r for r in refs if re.match(r"^\W*(https?:|//)", r)]
        assert remote == [], f"{name} loads from the network: {remote[:5]}"
    assert 'href="map.html"' in (report_dir / "index.html").read_text()


def test_header_has_no_literal_markdown_backticks(report_dir):
    text = (report_dir / "index.html").read_text()
    assert "`" not in text
    assert re.search(r"<p>Run directory <code>[^<]+</code>", text)


def test_index_opens_offline_without_errors(report_dir, browser):
    report = browser.open((report_dir / "index.html").as_uri())
    assert report.problems == []
    broken = browser.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                              ".map(i => i.src)")
    assert broken == [] and browser.evaluate("document.images.length") >= 10
    varied, colours = _not_blank(report.screenshot)
    assert varied > 0.02 and colours > 50, (varied, colours)


def test_map_opens_offline_without_errors_and_works(report_dir, browser):
    report = browser.open((report_dir / "map.html").as_uri(), ready="window.ihsMapReady === true")
    assert report.problems == []
    overlay = "document.querySelector('.leaflet-image-layer')"
    assert browser.evaluate(f"{overlay}.complete && {overlay}.naturalWidth") == 24  # the grid's 24 columns
    assert browser.evaluate("document.querySelectorAll('path[stroke=\"#b2182b\"]').length") == 3  # IHS areas
    assert browser.evaluate("document.querySelectorAll('.leaflet-control-layers-base input').length") >= 15
    assert "Total PM2.5, period mean" in browser.evaluate("document.querySelector('.legend').textContent")
    varied, colours = _not_blank(report.screenshot)
    assert varied > 0.05 and colours > 50, (varied, colours)
    # pick another map: the legend follows; click an IHS area: its statistics pop up
    browser.evaluate("document.querySelectorAll('.leaflet-control-layers-base input')[1].click()")
    assert "IHS-related PM2.5, period mean" in browser.evaluate("document.querySelector('.legend').textContent")
    browser.evaluate("document.querySelector('path[stroke=\"#b2182b\"]').dispatchEvent("
                     "new MouseEvent('click', {bubbles: true, clientX: 600, clientY: 400}))")
    popup = browser.evaluate("(document.querySelector('.leaflet-popup-content') || {}).textContent || ''")
    assert "IHS id" in popup and "mean IHS-related PM2.5" in popup and "IHS00" in popup
    assert browser.evaluate("1") == 1 and report.problems == []  # nothing failed while using it


def test_the_checks_catch_network_loads_missing_files_and_script_errors(tmp_path, browser):
    page = tmp_path / "needs_network.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://unpkg.com/leaflet/dist/leaflet.css">'
                    '<script src="https://unpkg.com/leaflet/dist/leaflet.js"></script></head><body>'
                    '<img src="missing.png"><script>L.map("m");</script></body></html>')
    report = browser.open(page.as_uri())
    failed = {url for url, _ in report.failed_loads}
    assert "https://unpkg.com/leaflet/dist/leaflet.js" in failed
    assert (tmp_path / "missing.png").as_uri() in failed
    assert any("L is not defined" in e for e in report.js_errors)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    varied, colours = _not_blank(browser.open(blank.as_uri()).screenshot)
    assert varied == 0.0 and colours == 1
