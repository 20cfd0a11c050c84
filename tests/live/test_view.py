"""The live web view in real headless Chromium, during a real run with real faults on the
reference stack: the page shows a fault go active then reverted and the busy rate rise in its
window; its halt button (confirmed) reverts every fault, stops the load and writes the reports,
which the page then links. What was reverted is checked on the components themselves."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from loadkit.live import LiveOptions, LiveView
from loadkit.report.formats import FILE_FORMATS
from loadkit.run import Runner, RunOptions
from loadkit.run.reports import ReportListener
from loadkit.stack.reference import ReferenceStack
from tests.chaos.conftest import problems_left

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

PROFILE = """
name: live-view
stages:
  - {name: warm, duration: 6s, rate: 30/s}
  - {name: peak, duration: 40s, rate: 40/s}
journeys:
  - {wallet: balance}
client: {timeout: 2s}
"""
SCENARIO = """
name: live-view
steady_state:
  after: false
  probes:
    - {name: ready, type: readyz, timeout: 1s}
faults:
  - {name: maintenance, type: wallet.maintenance, at: 4s, duration: 4s}
  - name: slow-db
    type: network.latency
    target: wallet-1-postgres
    latency: 30ms
    at: 12s
    duration: 30s
abort:
  - {name: too-busy, when: busy-rate, above: 98%, window: 10s, for: 30s}
"""


def _state(page: Any, fault: str) -> str:
    return str(page.locator(f'#faults tr[data-fault="{fault}"] td.state').inner_text())


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
def test_live_view_follows_faults_and_halts_the_run(stack: ReferenceStack, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    (tmp_path / "p.yaml").write_text(PROFILE)
    (tmp_path / "s.yaml").write_text(SCENARIO)
    runner = Runner(
        RunOptions(
            profile=tmp_path / "p.yaml",
            chaos=tmp_path / "s.yaml",
            stack_dir=stack.stack_dir,
            out=tmp_path / "reports",
        )
    )
    ReportListener(FILE_FORMATS).attach(runner.events)
    view = LiveView(LiveOptions(web="127.0.0.1:0"), runner.allowlist, title="live-view")
    view.start()
    feed = view.attach(runner)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = runner.run()
        except BaseException as exc:  # reported by the test below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert view.web is not None
    origin = view.web.url.rstrip("/")
    errors: list[str] = []
    foreign: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("request", lambda r: r.url.startswith(origin) or foreign.append(r.url))
                page.goto(view.web.url, wait_until="load")
                # the fault goes in, then comes out, as the page polls
                page.wait_for_function(
                    "() => document.querySelector('#faults tr[data-fault=maintenance] td.state')"
                    "?.textContent.startsWith('active')",
                    timeout=30_000,
                )
                assert _state(page, "slow-db").startswith("pending")
                page.wait_for_function(
                    "() => document.querySelector('#faults tr[data-fault=maintenance] td.state')"
                    "?.textContent.startsWith('reverted')",
                    timeout=20_000,
                )
                page.wait_for_function(
                    "() => document.querySelector('#faults tr[data-fault=\"slow-db\"] td.state')"
                    "?.textContent.startsWith('active')",
                    timeout=20_000,
                )
                # the busy chart, as drawn: busy rate per second before vs in the fault window
                page.wait_for_function("() => (window.loadkitLive.last || 0) >= 11", timeout=15_000)
                drawn = page.evaluate(
                    """() => {
                      const u = window.loadkitLive.charts['chart-busy'];
                      const f = window.loadkitLive.data.faults.find(x => x.name === 'maintenance');
                      const at = (lo, hi) => u.data[0].map((t, i) => [t, u.data[1][i]])
                        .filter(([t, v]) => t >= lo && t < hi && v != null).map(([t, v]) => v);
                      return {before: at(0, 3), inside: at(Math.ceil(f.injected_t),
                              Math.floor(f.reverted_t)), fault: f};
                    }"""
                )
                assert drawn["before"] and max(drawn["before"]) < 0.2, drawn
                assert drawn["inside"] and max(drawn["inside"]) > 0.5, drawn
                assert page.locator("#probes tr[data-probe=ready]").inner_text().count("✓") == 1
                assert "busy-rate over 10s above 98%" in page.locator("#conditions").inner_text()
                assert page.locator("#clock-wall").inner_text().count(":") == 2
                page.screenshot(path=str(tmp_path / "live-1400.png"))
                page.set_viewport_size({"width": 760, "height": 1000})
                page.wait_for_timeout(600)
                page.screenshot(path=str(tmp_path / "live-760.png"), full_page=True)
                assert page.evaluate("document.documentElement.scrollWidth") <= 760
                page.set_viewport_size({"width": 1400, "height": 1000})
                # halt, confirmed
                page.click("#halt")
                assert page.locator("#confirm").is_visible()
                page.click("#halt-yes")
                link = page.locator('#banner a[href^="/files/report.html"]')
                link.wait_for(timeout=90_000)
                report = page.request.get(origin + str(link.get_attribute("href")))
                assert report.status == 200 and "<svg" in report.text()
                assert "aborted" in page.locator("#status").inner_text()
                page.screenshot(path=str(tmp_path / "live-halted.png"))
            finally:
                browser.close()
        thread.join(120)
    finally:
        if thread.is_alive():
            runner.abort("test failed", safety=False)
            thread.join(120)
        view.close()
    assert "error" not in outcome, outcome
    result = outcome["result"]
    assert result.status == "aborted" and "halted from the live view" in result.record.reason
    assert errors == [] and foreign == []
    # from the components: every toxic gone, every process up, nothing left behind
    fresh = ReferenceStack.attach(stack.stack_dir)
    assert problems_left(fresh) == []
    assert fresh.status()["healthy"]
    # the journal is complete: both faults in and out, the halt, the scenario's end
    events = [json.loads(x) for x in (result.run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e.get("event") for e in events]
    assert "halt" in kinds and kinds[-1] == "scenario.end"
    for fault in ("maintenance", "slow-db"):
        ends = [e for e in events if e.get("fault") == fault and e.get("event") == "revert.end"]
        assert [e["result"] for e in ends] == ["ok"], (fault, ends)
    halt = next(e for e in events if e.get("event") == "halt")
    assert halt["t"] < 30, "halted long before slow-db's planned end"
    for name in ("report.html", "report.json", "summary.md", "junit.xml"):
        assert (result.run_dir / name).is_file(), name
    assert json.loads((result.run_dir / "report.json").read_text())["status"] == "aborted"
    assert max(feed.update_s) < 0.25, "a tick's update stays cheap"


GAMEDAY = """
name: live-gameday
duration: 7s
steady_state:
  before: false
  after: false
  traffic: {rate: 20/s, request: balance}
faults:
  - {name: maintenance, type: wallet.maintenance, at: 2s, duration: 2s}
"""


@pytest.mark.slow
def test_game_day_without_load_is_watched_from_its_probe_traffic(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    """``loadkit chaos run --web``: the busy rate comes from the controller's probe traffic."""
    import httpx

    from loadkit.run.gameday import GamedayOptions, run_gameday
    from loadkit.safety import Allowlist

    (tmp_path / "g.yaml").write_text(GAMEDAY)
    options = GamedayOptions(tmp_path / "g.yaml", stack.stack_dir, out=tmp_path / "reports")
    view = LiveView(LiveOptions(web="127.0.0.1:0"), Allowlist(), title="gameday")
    view.start()
    assert view.web is not None
    url = view.web.url.rstrip("/") + "/api/live"
    seen: set[str] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.3):
            body = httpx.get(url).json()
            seen.update(f["state"] for f in body["faults"])

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    feed = view.watch_gameday()
    try:
        result = run_gameday(options, watch=feed)
        feed.finish(result)
        body = httpx.get(url).json()
    finally:
        stop.set()
        poller.join(5)
        view.close()
    assert str(result.status) == "completed"
    assert body["run"]["kind"] == "chaos" and body["run"]["status"] == "finished"
    assert [f["state"] for f in body["faults"]] == ["reverted"], body["faults"]
    assert {"pending", "active"} <= seen, seen
    busy = {p["t"]: p["a"][2] for p in body["points"]}
    assert sum(busy.get(t, 0) for t in (2, 3)) > 0 and sum(busy.get(t, 0) for t in (0, 5, 6)) == 0
    assert {c for p in body["points"] for c in p["c"]} == {"maintenance"}
    assert "events.jsonl" in body["reports"]
