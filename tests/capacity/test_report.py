"""capacity.json, capacity.html, summary.md and the terminal table of a capacity result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from loadkit.capacity.model import CapacityResult, Outcome, PassRecord, StepResult, Verdict
from loadkit.capacity.report import (
    render_capacity_html,
    render_capacity_terminal,
    write_capacity_files,
)
from tests.report.test_html import ARGS, CHROMIUM


def _result(tmp_path: Path) -> CapacityResult:
    def step(i: int, pass_name: str, rate: float, verdict: Verdict, busy: float) -> StepResult:
        s = StepResult(i, pass_name, rate, 5.0 * i, 5.0 * i + 4, verdict)
        s.offered_rate = s.achieved_rate = rate
        s.answered, s.busy_rate, s.p95_ms, s.p99_ms = int(rate * 4), busy, 12.0, 30.0 + rate
        s.busy = round(s.answered * busy)
        if s.busy:
            s.causes = {"throttled": s.busy}
            s.wallet_causes = {"rate_limited": s.busy - 2, "db_pool_timeout": 2}
            s.failed = [f"busy rate (action) ≤ 1%: {busy * 100:.2f}%"]
        return s

    steps = [
        step(1, "coarse", 100, Verdict.PASS, 0.0),
        step(2, "coarse", 200, Verdict.PASS, 0.002),
        step(3, "coarse", 300, Verdict.FAIL, 0.08),
        step(4, "coarse", 400, Verdict.NOT_RUN, 0.0),
        step(1, "fine", 200, Verdict.PASS, 0.0),
        step(2, "fine", 250, Verdict.PASS, 0.004),
        step(3, "fine", 275, Verdict.FAIL, 0.03),
    ]
    return CapacityResult(
        capacity_dir=str(tmp_path / "cap"),
        profile="smoke",
        objectives=["busy rate (action) ≤ 1%"],
        outcome=Outcome.KNEE,
        knee_rate=250,
        at_least=250,
        first_failing_rate=275,
        message="knee at 250/s: the highest rate that meets the objective (lost at 275/s)",
        steps=steps,
        passes=[PassRecord("coarse", str(tmp_path / "cap/runs/a"), "completed")],
        settings={"hold_s": 5.0},
    )


def test_files(tmp_path: Path) -> None:
    result = _result(tmp_path)
    written = write_capacity_files(result)
    assert sorted(written) == ["html", "json", "md"]
    data = json.loads(written["json"].read_text())
    assert data["schema"] == "loadkit.capacity/v1"
    assert data["outcome"] == "knee" and data["knee_rate"] == 250
    assert [s["phase"] for s in data["steps"]][:2] == ["step-01", "step-02"]
    md = written["md"].read_text()
    assert "**smoke: knee at 250/s" in md
    assert "| fine | 250/s | 250/s | 0.40% |" in md and "◀ knee" in md
    assert "| throttled 98%, pool wait 2% | fail |" in md  # 94 of 96 busy answers at 300/s
    assert "400/s" not in md  # not measured


def test_html_has_the_chart_and_every_measured_step(tmp_path: Path) -> None:
    html = render_capacity_html(_result(tmp_path))
    assert html.count("<svg") == 1 and "knee 250/s" in html
    # 3 measured steps of each pass, and the coarse run in the runs table
    assert html.count("<tr><td>coarse</td>") == 4 and html.count("<tr><td>fine</td>") == 3
    assert 'href="runs/a/report.html"' in html


def test_terminal_table(tmp_path: Path) -> None:
    console = Console(width=80, record=True)
    render_capacity_terminal(_result(tmp_path), console)
    text = console.export_text()
    assert "pass ◀ knee" in text and "throttled" in text
    assert "smoke: knee at 250/s" in text


def test_html_is_self_contained(tmp_path: Path) -> None:
    page = render_capacity_html(_result(tmp_path))
    assert "<script" not in page and "<link" not in page and 'src="http' not in page


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)"
)
def test_html_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    result = _result(tmp_path)
    path = write_capacity_files(result)["html"]
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(path.as_uri(), wait_until="load")
            page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
            chart = page.locator("svg.chart")
            assert chart.count() == 1
            box = chart.bounding_box()
            assert box is not None and box["width"] > 900 and box["height"] > 200
            assert chart.locator("path").count() > 20, "axes, ticks and data drawn"
            assert page.locator("text=knee at 250/s").count() >= 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        finally:
            browser.close()
    assert errors == []
    assert requests == [path.as_uri()], f"fetched more than the page: {requests}"
