"""report.html in headless Chromium: renders without console errors, charts present and drawn,
nothing fetched from the network; a screenshot is kept for people to look at."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from loadkit.report import charts
from loadkit.report.html import render_html
from loadkit.report.metrics import compute_metrics
from loadkit.report.model import RunMetrics
from loadkit.rundir import RunDir
from tests.report.rundirs import RunDirBuilder
from tests.report.test_security import SECURITY

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_html_is_self_contained(fault_metrics: RunMetrics) -> None:
    page = render_html(fault_metrics)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert 'src="http' not in page and "url(http" not in page
    # four charts, each wide and narrow (the page shows one of the two by its width)
    assert page.count(' class="chart"') == 8
    assert page.count('<div class="chart-wide">') == page.count('<div class="chart-narrow">') == 4
    assert fault_metrics.verdict in page


def test_html_of_a_run_without_data_renders(tmp_path: Path) -> None:
    page = render_html(compute_metrics(RunDirBuilder(tmp_path / "r").write(clock=False)))
    assert "no timeline data" in page and "<svg" not in page


def test_every_phase_is_labelled_and_hovering_gives_the_wall_clock(breakdown_run: Path) -> None:
    m = compute_metrics(breakdown_run)
    svg = charts.busy_chart(m)
    for name in ("evening", "peak", "cool-down"):
        assert f">{name}<" in svg, name  # wide enough for its name
    # the 2-second spike: a numbered marker, and the key under the chart names it
    assert ">1<" in svg and "1 = midnight-spike 0:40–0:42" in svg
    assert "<title>phase midnight-spike: 0:40–0:42 run clock (00:00:41–00:00:43 wall clock" in svg
    assert "<title>fault slow-db-link (network.latency on wallet-1-postgres): 0:45–1:10" in svg
    narrow = charts.busy_chart(m, variant=charts.NARROW)
    assert "1 = midnight-spike 0:40–0:42" in narrow


def test_overlapping_faults_take_separate_label_rows(breakdown_run: Path) -> None:
    m = compute_metrics(breakdown_run)
    lay = charts._layout(m, charts.WIDE, 112.0)
    rows = {label.text: label.row for label, _s, _e in lay.faults}
    assert rows == {"slow-db-link": 0, "db-blip": 1}  # [43, 47) overlaps [45, 70)
    assert [lab.text for lab in lay.phases if lab.marker] == ["1"]
    assert lay.fault_rows == 2 and lay.phase_rows == 1


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)"
)
def test_html_in_headless_chromium(fault_metrics: RunMetrics, fault_run: Path) -> None:
    from playwright.sync_api import sync_playwright

    path = fault_run / "report.html"
    path.write_text(render_html(fault_metrics), encoding="utf-8")
    console_errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(path.as_uri(), wait_until="load")
            page.screenshot(path=str(fault_run / "report.png"), full_page=True)
            charts_ = page.locator(".chart-wide svg.chart")
            assert charts_.count() == 4
            for i in range(4):
                chart = charts_.nth(i)
                box = chart.bounding_box()
                assert box is not None and box["width"] > 900 and box["height"] > 150
                assert chart.locator("path").count() > 20, "axes, ticks and data drawn"
            assert page.locator(".chart-narrow svg.chart").first.is_hidden()
            assert page.locator("text=recovered in 18 s").count() >= 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366, (
                "no sideways scroll"
            )
        finally:
            browser.close()
    assert console_errors == []
    assert requests == [path.as_uri()], f"fetched more than the page: {requests}"
    assert (fault_run / "report.png").stat().st_size > 20_000


#: what a person reads on the page: the smallest chart text, in CSS pixels
MIN_TEXT_PX = 9.0
#: every label above a plot, and whether it stays off the plot area (checked in the browser)
_LABELS_JS = """
() => [...document.querySelectorAll('svg.chart')].filter(s => s.getClientRects().length)
  .map(svg => {
    const plot = svg.querySelector('g[id$="lk-plot"]').getBoundingClientRect();
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect())
      .filter(r => r.height > 0);
    const labels = [...svg.querySelectorAll('g[id*="lk-fault-label"], g[id*="lk-phase-label"]')]
      .map(g => g.getBoundingClientRect());
    return {smallest: Math.min(...texts.map(r => r.height)),
            over: labels.filter(r => r.bottom > plot.top + 0.5).length,
            labels: labels.length,
            cut: texts.filter(r => r.right > box.right + 0.5 || r.left < box.left - 0.5).length,
            width: box.width};
  })
"""


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)"
)
@pytest.mark.parametrize(("width", "variant"), [(1400, "wide"), (760, "narrow"), (390, "narrow")])
def test_the_page_reads_at_every_width(breakdown_run: Path, width: int, variant: str) -> None:
    """1400 px (desktop), 760 px (a narrow window) and 390 px (a phone): no sideways scroll,
    the chart variant for the width, chart text of a readable size, and no phase or fault label
    over the data."""
    from playwright.sync_api import sync_playwright

    RunDir(breakdown_run).write_json("security.json", SECURITY)  # the security section too
    path = breakdown_run / "report.html"
    path.write_text(render_html(compute_metrics(breakdown_run)), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(path.as_uri(), wait_until="load")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shown = page.locator(f".chart-{variant} svg.chart")
            hidden = page.locator(f".chart-{'narrow' if variant == 'wide' else 'wide'} svg.chart")
            assert shown.count() == 6 and shown.first.is_visible() and hidden.first.is_hidden()
            for chart in page.evaluate(_LABELS_JS):
                assert chart["smallest"] >= MIN_TEXT_PX, chart
                assert chart["labels"] >= 6 and chart["over"] == 0, chart
                assert chart["cut"] == 0, f"text cut off at the chart's edge: {chart}"
                assert chart["width"] <= width
            for section in ("#security", "#by-instance", "#faults", "#causes"):
                box = page.locator(section).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
            if os.environ.get("LOADKIT_DOCS_SCREENSHOTS"):
                _keep(page, width)
        finally:
            browser.close()


def _keep(page: Any, width: int) -> None:
    """docs/report-<width>.png: the top of the page (verdict, tiles, the first charts), small."""
    from PIL import Image

    shot = ROOT / "docs" / f"report-{width}.png"
    clip = {"x": 0, "y": 0, "width": width, "height": 1250}
    page.screenshot(path=str(shot), clip=clip, full_page=True)  # past the 900 px viewport
    Image.open(shot).convert("RGB").quantize(colors=96).save(shot, optimize=True)


def test_wall_clock_axis_and_wall_starts_in_the_tables(fault_run: Path) -> None:
    import datetime as dt

    from loadkit.errors import ConfigError
    from loadkit.report.formats import ReportOptions, write_reports

    m = compute_metrics(fault_run)
    assert m.clock_t0 == 1.0  # the hand-built run's clock.json
    start = dt.datetime.fromtimestamp(1.0 + m.phases[1].start_s).astimezone()
    run_page = render_html(m)
    assert "starts (wall)" in run_page and start.strftime("%H:%M:%S") in run_page
    assert "run clock (m:ss)" in run_page
    wall_page = render_html(m, ReportOptions(clock="wall"))
    assert "run clock (m:ss)" not in wall_page and "wall clock (1970-01-01, UTC" in wall_page
    (fault_run / "clock.json").unlink()
    run = json.loads((fault_run / "run.json").read_text())
    run.pop("clock_t0", None)
    (fault_run / "run.json").write_text(json.dumps(run))
    with pytest.raises(ConfigError, match="--clock wall"):
        write_reports(fault_run, ["html"], clock="wall")
