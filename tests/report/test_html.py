"""report.html in headless Chromium: renders without console errors, charts present and drawn,
nothing fetched from the network; a screenshot is kept for people to look at."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadkit.report.html import render_html
from loadkit.report.metrics import compute_metrics
from loadkit.report.model import RunMetrics
from tests.report.rundirs import RunDirBuilder

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
    assert page.count(' class="chart"') == 4
    assert fault_metrics.verdict in page


def test_html_of_a_run_without_data_renders(tmp_path: Path) -> None:
    page = render_html(compute_metrics(RunDirBuilder(tmp_path / "r").write(clock=False)))
    assert "no timeline data" in page and "<svg" not in page


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
            charts = page.locator("svg.chart")
            assert charts.count() == 4
            for i in range(4):
                chart = charts.nth(i)
                box = chart.bounding_box()
                assert box is not None and box["width"] > 900 and box["height"] > 150
                assert chart.locator("path").count() > 20, "axes, ticks and data drawn"
            assert page.locator("text=recovered in 18 s").count() >= 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366, (
                "no sideways scroll"
            )
        finally:
            browser.close()
    assert console_errors == []
    assert requests == [path.as_uri()], f"fetched more than the page: {requests}"
    assert (fault_run / "report.png").stat().st_size > 20_000


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
