"""The target's own busy causes, scraped during a run: Prometheus text parsed as Prometheus
writes it, deltas per instance (restarts and silent instances included), and the listener
writing ``server-causes.jsonl`` from a real HTTP endpoint."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from loadkit.run.servercauses import (
    MetricsEndpoint,
    Scraper,
    ServerCausesListener,
    busy_counts,
)
from loadkit.rundir import RunDir
from loadkit.rundir.servercauses import read_server_causes

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

    def __init__(self) -> None:
        self.text = PAGE
        self.down = False
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if pages.down:
                    self.send_error(503)
                    return
                body = pages.text.encode()
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
