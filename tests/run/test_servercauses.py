"""The target's own busy causes, scraped during a run: Prometheus text parsed as Prometheus
writes it, deltas per instance (restarts and silent instances included), and the listener
writing ``server-causes.jsonl`` from a real HTTP endpoint."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from loadkit.run.servercauses import (
    MetricsEndpoint,
    Scraper,
    ServerCausesListener,
    busy_counts,
)
from loadkit.rundir import RunDir
from loadkit.rundir.servercauses import read_server_causes
from loadkit.stack.ports import free_port, port_open
from tests.netns import issue
from tests.support import ROOT, loadkit

PAGE = """\
# HELP wallet_busy_responses_total Busy answers, by cause
# TYPE wallet_busy_responses_total counter
wallet_busy_responses_total{cause="db_pool_timeout"} 12.0
wallet_busy_responses_total{cause="overloaded"} 3.0
wallet_busy_responses_created{cause="overloaded"} 1.7e+09
wallet_http_requests_total{route="transfers",status="201"} 900.0
"""


def test_busy_counts_reads_one_counter_by_cause_and_instance() -> None:
    assert busy_counts(PAGE, "wallet_busy_responses_total") == {
        "": {"db_pool_timeout": 12.0, "overloaded": 3.0}
    }
    federated = (
        'pay_rejected_total{pod="pay-1",reason="quota",le="x"} 4\n'
        'pay_rejected_total{pod="pay-2",reason="quota"} 1 1700000000000\n'
        'pay_rejected_total{pod="pay-2",reason="fraud\\"hold"} 2\n'
    )
    assert busy_counts(federated, "pay_rejected_total", "reason", "pod") == {
        "pay-1": {"quota": 4.0},
        "pay-2": {"quota": 1.0, 'fraud\\"hold': 2.0},
    }


class _Pages:
    """A metrics endpoint whose page the test sets (a real HTTP server on loopback)."""

    def __init__(self, page: Callable[[], str] | None = None) -> None:
        self.text = PAGE
        self.page = page  # the page, made when asked for (else ``text``)
        self.down = False
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if pages.down:
                    self.send_error(503)
                    return
                body = (pages.page() if pages.page is not None else pages.text).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[_Pages]:
    p = _Pages()
    yield p
    p.close()


def test_deltas_per_instance_with_a_restart(pages: _Pages) -> None:
    scraper = Scraper([MetricsEndpoint("wallet-1", pages.url)])
    assert scraper.sample() == {}  # the first sample only remembers
    pages.text = PAGE.replace("12.0", "20.0")
    assert scraper.sample() == {"wallet-1": {"db_pool_timeout": 8}}
    pages.down = True
    assert scraper.sample() == {}  # no answer: nothing counted, the next sample covers it
    pages.down = False
    pages.text = PAGE.replace("12.0", "2.0").replace("3.0", "1.0")  # restarted: from zero
    assert scraper.sample() == {"wallet-1": {"db_pool_timeout": 2, "overloaded": 1}}
    scraper.close()


def test_the_listener_writes_server_causes_while_the_run_goes(
    pages: _Pages, tmp_path: Path
) -> None:
    rd = RunDir(tmp_path)
    run: Any = SimpleNamespace(rundir=rd, stack=None)
    listener = ServerCausesListener(
        [MetricsEndpoint("wallet-1", pages.url)], interval_s=0.1, source="test page"
    )
    t0 = time.time()
    listener.on_started(run, t0=t0)
    pages.text = PAGE.replace("12.0", "15.0")
    time.sleep(0.35)
    pages.text = PAGE.replace("12.0", "16.0")
    listener.on_stopping(run, reason=None)  # one last sample, then it stops
    listener.on_finished(run, result=None)
    found = read_server_causes(rd.server_causes)
    assert found is not None
    header, lines = found
    assert header["source"] == "test page" and header["groups"]["db_pool_timeout"] == "pool wait"
    assert sum(x.busy.get("db_pool_timeout", 0) for x in lines) == 4
    assert all(x.instance == "wallet-1" and 0 < x.t < 5 and x.dt > 0 for x in lines)


# -- a system's own service: its metrics scraped during a real run ----------------------------

PROFILE = """\
name: own-metrics
users: {accounts: 20}
stages: [{name: steady, duration: 5s, rate: 24/s}]
journeys:
  - {name: look, weight: 2, http: [{name: health, path: /healthz}]}
  - {name: pushy, weight: 1, http: [{name: throttle, path: /throttle}]}
client: {timeout: 2s, retries: {attempts: 1}}
"""


@pytest.fixture
def shop(tls_ca: Any, tmp_path: Path) -> Iterator[str]:
    """The plain shop service over HTTPS on loopback (a certificate of the test's own CA, which
    the run is not told about: the system file says ``verify: false``)."""
    files = issue(tls_ca, tmp_path / "tls", "127.0.0.1")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.load.plain_service", str(port)),
            *("--cert", str(files.cert), "--key", str(files.key)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, "shop died"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_systems_metrics_endpoint_is_scraped_and_reported(shop: str, tmp_path: Path) -> None:
    """``--system`` with a service whose ``metrics:`` is the shop's own count of the 429s it
    sent (a Prometheus page beside it): server-causes.jsonl has them, every report shows them
    beside the client's causes, and the run that did not verify the shop's certificate says so
    in every report."""

    def page() -> str:
        stats = httpx.get(f"{shop}/stats", verify=False).json()
        return (
            "# TYPE shop_busy_total counter\n"
            f'shop_busy_total{{reason="rate_limit"}} {stats.get("GET /throttle", 0)}.0\n'
        )

    metrics = _Pages(page)
    try:
        (tmp_path / "p.yaml").write_text(PROFILE)
        (tmp_path / "system.yaml").write_text(
            "name: own\nservices:\n  shop:\n"
            f"    url: {shop}\n    tls: {{verify: false}}\n"
            f"    metrics: {{url: '{metrics.url}', metric: shop_busy_total, cause_label: reason}}\n"
        )
        out = tmp_path / "reports"
        done = loadkit("run", "p.yaml", "--system", "system.yaml", "--out", str(out), cwd=tmp_path)
        throttled = httpx.get(f"{shop}/stats", verify=False).json().get("GET /throttle", 0)
    finally:
        metrics.close()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    rd = RunDir(run_dir)

    found = read_server_causes(rd.server_causes)
    assert found is not None, "server-causes.jsonl written"
    header, lines = found
    assert header["source"] == metrics.url
    counted = sum(x.busy.get("rate_limit", 0) for x in lines)
    assert throttled > 20 and counted == throttled, (counted, throttled)
    assert {x.instance for x in lines} == {"shop"}
    client = rd.read_timeline().totals("request").busy.get("throttled", 0)
    assert client == throttled, (client, throttled)  # both sides saw every 429

    html = rd.report_html.read_text()
    assert f"beside what the target counted itself ({metrics.url})" in html
    assert "<h3>server</h3>" in html and f"<td>rate_limit</td><td>{throttled:,}</td>" in html
    md = (run_dir / "summary.md").read_text()
    assert f"#### Busy causes the target counted ({metrics.url})" in md
    assert f"| rate_limit |  | {throttled:,} | {throttled:,} |" in md, md
    doc = json.loads(rd.report_json.read_text())
    assert doc["server_causes"]["total"] == {"rate_limit": throttled}

    # the certificate was not checked: every report says so, not only the summary line
    assert doc["insecure_urls"] == [shop]
    assert doc["tls_banner"]["title"] == "TLS NOT VERIFIED"
    assert '<div class="banner" role="alert" id="tls"><b>TLS NOT VERIFIED</b>' in html
    assert "**TLS NOT VERIFIED**" in md and shop in md
    assert "TLS NOT VERIFIED" in done.stdout, done.stdout  # the terminal report
    assert "TLS NOT VERIFIED: certificates of" in done.stderr  # and the CLI's own line
