"""Does watching a run slow the generator? The same open-model run (``loadkit run`` as a library:
Runner, Locust process, timeline) against the trivial Go server of
``bench/generator_vs_fasthttp.py``, alternately without and with the live view (``--web`` and
``--metrics``) and a headless Chromium page polling it, plus a scraper reading ``/metrics`` every
second. Prints, per round: unsent share, busy share, p99 from the intended send time, the live
view's update time per tick, and the page's polling rate::

    .venv/bin/python bench/live_view_overhead.py --rate 1500 --seconds 15 --rounds 2

Needs Go (for the server) and Chromium (``/usr/bin/chromium``) with Playwright.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.generator_vs_fasthttp import start_server
from loadkit.live import LiveOptions, LiveView
from loadkit.run import Runner, RunOptions

PROFILE = """
name: live-bench
users:
  accounts: 100
  max_in_flight: 500
stages:
  - name: hold
    duration: {seconds}s
    rate: {rate}/s
journeys:
  - name: get
    http:
      - path: /
client:
  timeout: 2s
"""
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


def one_round(work: Path, url: str, rate: int, seconds: int, watched: bool) -> dict[str, Any]:
    profile = work / f"p-{rate}-{time.monotonic_ns()}.yaml"
    profile.write_text(textwrap.dedent(PROFILE.format(rate=rate, seconds=seconds)))
    runner = Runner(RunOptions(profile=profile, target=url, out=work / "runs"))
    view = feed = None
    stop = threading.Event()
    polls: list[float] = []
    threads: list[threading.Thread] = []
    if watched:
        view = LiveView(
            LiveOptions(web="127.0.0.1:0", metrics="127.0.0.1:0"), runner.allowlist, title="bench"
        )
        view.start()
        feed = view.attach(runner)
        assert view.web is not None and view.metrics is not None
        threads = [
            threading.Thread(target=_page, args=(view.web.url, stop, polls), daemon=True),
            threading.Thread(target=_scrape, args=(view.metrics.url, stop), daemon=True),
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while not polls and time.monotonic() < deadline:  # the page is open before the run
            time.sleep(0.1)
    started = time.time()
    try:
        result = runner.run()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        if view is not None:
            view.close()
    actions = result.timeline.totals("action")
    scheduled = actions.answered + actions.count("unsent")
    out: dict[str, Any] = {
        "watched": watched,
        "unsent": actions.count("unsent") / max(1, scheduled),
        "busy": actions.busy_rate,
        "p99_ms": actions.percentile_ms(99),
        "answered": actions.answered,
    }
    if feed is not None and feed.update_s:
        ticks = sorted(feed.update_s)
        out["tick_ms_mean"] = 1000 * sum(ticks) / len(ticks)
        out["tick_ms_max"] = 1000 * ticks[-1]
        out["page_render_ms_max"] = -min(polls)
        during = [t for t in polls if started + 2 <= t <= started + 2 + seconds]
        out["page_polls_per_s"] = len(during) / seconds
    return out


def _page(url: str, stop: threading.Event, polls: list[float]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("response", lambda r: "/api/live" in r.url and polls.append(time.time()))
        page.goto(url)
        while not stop.wait(0.2):
            page.wait_for_timeout(50)  # let the page's own timers run
        polls.append(-max(page.evaluate("window.loadkitLive.applyMs")))  # its slowest render
        browser.close()


def _scrape(url: str, stop: threading.Event) -> None:
    with httpx.Client() as http:
        while not stop.wait(1.0):
            http.get(url, headers={"Accept": "application/openmetrics-text"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1500)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="loadkit-live-bench-") as tmp:
        work = Path(tmp)
        server, url = start_server(work, 0 if cpus >= 2 else None)
        try:
            for i in range(args.rounds):
                for watched in (False, True):
                    r = one_round(work, url, args.rate, args.seconds, watched)
                    extra = (
                        f", tick {r['tick_ms_mean']:.2f} ms mean / {r['tick_ms_max']:.1f} ms max"
                        f", page polls {r['page_polls_per_s']:.2f}/s"
                        f" (slowest render {r['page_render_ms_max']:.0f} ms)"
                        if watched
                        else ""
                    )
                    print(
                        f"round {i + 1} {'watched  ' if watched else 'unwatched'} {args.rate}/s: "
                        f"answered {r['answered']}, unsent {r['unsent']:.2%}, busy {r['busy']:.2%}"
                        f", p99 {r['p99_ms']:.1f} ms{extra}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait()
            shutil.rmtree(work / "runs", ignore_errors=True)


if __name__ == "__main__":
    main()
