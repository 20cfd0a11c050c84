"""The run as OpenMetrics, for Prometheus (``--metrics [ADDR:]PORT``) and a Pushgateway
(``--push-to URL``), made with ``prometheus_client`` from the live state at every scrape.

Every series carries the run id (``run_id``); counters are totals since the run started, so
``rate(…[1m])`` gives per-second rates. Answers are counted by the second they were meant to be
sent, once they are in (a few seconds after): the same counts ``report.json`` has at the end.

=============================================  ==========================================
``loadkit_run_info{run_id,profile,scenario,kind}``  1 for the run being watched
``loadkit_run_clock_seconds``                 run-clock seconds now
``loadkit_phase{phase}``                      1 for the profile phase running now, else 0
``loadkit_offered_arrivals_total``            arrivals the profile scheduled so far (open model)
``loadkit_answered_total{level,outcome}``     answered actions / requests: ok, rejected, busy
``loadkit_busy_total{level,cause}``           busy answers by cause
``loadkit_unsent_total{level}``               arrivals the generator could not send
``loadkit_latency_seconds{level}``            histogram, from the intended send time
``loadkit_fault_active{fault,type,target}``   1 while a chaos fault is in, else 0
``loadkit_busy_rate_limit{source}``           the busy-rate objective the alert rules use
=============================================  ==========================================

The latency histogram has classic buckets (:data:`~loadkit.live.series.BUCKETS_S`): the
``prometheus_client`` in use writes native histograms only in its experimental OpenMetrics 2.0
text, which Prometheus does not scrape (it takes native histograms as protobuf only)::

    registry = metrics_registry(state)
    server = MetricsServer(Listen("127.0.0.1", 9464), registry); server.start()
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app, push_to_gateway
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from loadkit.live.address import Listen
from loadkit.live.series import LEVELS, OUTCOMES
from loadkit.live.state import LAG_S, LiveState

log = logging.getLogger(__name__)

#: every metric family the endpoint exports (the shipped dashboard and rules use only these)
METRIC_NAMES = (
    "loadkit_run_info",
    "loadkit_run_clock_seconds",
    "loadkit_phase",
    "loadkit_offered_arrivals_total",
    "loadkit_answered_total",
    "loadkit_busy_total",
    "loadkit_unsent_total",
    "loadkit_latency_seconds",
    "loadkit_fault_active",
    "loadkit_busy_rate_limit",
)


class RunCollector(Collector):
    """The live state as metric families, read at every scrape (see the module docstring)."""

    def __init__(self, state: LiveState) -> None:
        self.state = state
        #: scrapes answered so far
        self.scrapes = 0
        #: when the latest answered scrape started reading the state (time.monotonic())
        self.read_at = 0.0
        self._scraped = threading.Condition()

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        families = self._families()
        with self._scraped:
            self.scrapes += 1
            self.read_at = max(self.read_at, started)
            self._scraped.notify_all()
        yield from families

    def wait_for_scrape(self, since: float, timeout: float) -> bool:
        """Wait until a scrape that started reading after ``since`` (``time.monotonic()``)
        was answered: it holds everything recorded before then. False on timeout."""
        with self._scraped:
            return self._scraped.wait_for(lambda: self.read_at > since, timeout)

    def _families(self) -> list[Metric]:
        s = self.state
        with s.lock:
            run = s.run
            if not run.run_id:
                return []
            rid = run.run_id
            series = s.series
            now = s.now()
            info = GaugeMetricFamily(
                "loadkit_run_info",
                "The run being watched (value 1)",
                labels=["run_id", "profile", "scenario", "kind"],
            )
            profile = s.profile.name if s.profile else ""
            info.add_metric([rid, profile, s.scenario or "", run.kind], 1)
            clock = GaugeMetricFamily(
                "loadkit_run_clock_seconds", "Run-clock seconds now", labels=["run_id"]
            )
            clock.add_metric([rid], now if now is not None else 0.0)
            phase = GaugeMetricFamily(
                "loadkit_phase",
                "1 for the profile phase running now, 0 for the others",
                labels=["run_id", "phase"],
            )
            current = s.phase_at(now) if run.status in ("running", "starting") else None
            for p in run.phases:
                phase.add_metric([rid, p["name"]], 1.0 if p["name"] == current else 0.0)
            offered = CounterMetricFamily(
                "loadkit_offered_arrivals",
                "Arrivals the profile's schedule offered so far (open model; lags the run "
                f"clock by {LAG_S}s, as answers do)",
                labels=["run_id"],
            )
            upto = _offered_until(run.stopped_at, now, run.status)
            scheduled = series.offered(0.0, upto) if upto else None
            offered.add_metric([rid], scheduled or 0.0)
            answered = CounterMetricFamily(
                "loadkit_answered",
                "Answered user actions (after retries) and requests, by outcome",
                labels=["run_id", "level", "outcome"],
            )
            busy = CounterMetricFamily(
                "loadkit_busy", "Busy answers by cause", labels=["run_id", "level", "cause"]
            )
            unsent = CounterMetricFamily(
                "loadkit_unsent",
                "Arrivals the generator was due to send but could not",
                labels=["run_id", "level"],
            )
            latency = HistogramMetricFamily(
                "loadkit_latency_seconds",
                "Latency from the intended send time (what users waited), classic buckets",
                labels=["run_id", "level"],
                unit="seconds",
            )
            for level in LEVELS:
                n = series.totals[level]
                for i, outcome in enumerate(OUTCOMES[:3]):
                    answered.add_metric([rid, level, outcome], n[i])
                unsent.add_metric([rid, level], n[3])
                for cause, count in sorted(series.causes[level].items()):
                    busy.add_metric([rid, level, cause], count)
                buckets, total_s, _count = series.histogram(level)
                latency.add_metric([rid, level], buckets, total_s)
            faults = GaugeMetricFamily(
                "loadkit_fault_active",
                "1 while a chaos fault is injected, else 0",
                labels=["run_id", "fault", "type", "target"],
            )
            for f in s.faults:
                value = 1.0 if f.state in ("active", "reverting") else 0.0
                faults.add_metric([rid, f.name, f.type, f.target], value)
            families: list[Metric] = [
                info,
                clock,
                phase,
                offered,
                answered,
                busy,
                unsent,
                latency,
                faults,
            ]
            if s.busy_limit is not None:
                limit = GaugeMetricFamily(
                    "loadkit_busy_rate_limit",
                    "The busy-rate objective of the run (a fraction) and where it comes from",
                    labels=["run_id", "source"],
                )
                limit.add_metric([rid, s.busy_limit[1]], s.busy_limit[0])
                families.append(limit)
        return families


def _offered_until(stopped_at: float | None, now: float | None, status: str) -> float | None:
    if stopped_at is not None:
        return stopped_at
    if now is None:
        return None
    return max(0.0, now - LAG_S) if status != "finished" else now


def metrics_registry(state: LiveState) -> tuple[CollectorRegistry, RunCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = RunCollector(state)
    registry.register(collector)
    return registry, collector


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every second would fill the terminal


class _Server(WSGIServer):
    def process_request(self, request: Any, client_address: Any) -> None:
        # one thread per scrape (as prometheus_client's own server): a slow reader blocks none
        thread = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class MetricsServer:
    """``/metrics`` (any path, as ``prometheus_client``'s own server) on ``listen``, in a
    thread; off loopback every scrape must carry the token (``Authorization: Bearer TOKEN`` —
    Prometheus's ``authorization`` scrape setting — or ``?token=TOKEN``)."""

    def __init__(self, listen: Listen, registry: CollectorRegistry) -> None:
        self.listen = listen
        app = make_wsgi_app(registry)

        def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not listen.accepts(_token(environ)):
                start_response("401 Unauthorized", [("Content-Type", "text/plain")])
                return [b"a token is needed: see the terminal of the run\n"]
            return app(environ, start_response)  # type: ignore[no-any-return]

        self.httpd = make_server(
            listen.host, listen.port, guarded, server_class=_Server, handler_class=_QuietHandler
        )
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.listen.url(self.port, "/metrics")

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="loadkit-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
        self.httpd.server_close()


def _token(environ: dict[str, Any]) -> str | None:
    auth = str(environ.get("HTTP_AUTHORIZATION") or "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    values = parse_qs(str(environ.get("QUERY_STRING") or "")).get("token")
    return values[0] if values else None


class Pusher:
    """Pushes the registry to a Pushgateway every ``every_s`` seconds and once at the end
    (group ``job="loadkit", run_id=…``)."""

    def __init__(
        self, url: str, registry: CollectorRegistry, state: LiveState, every_s: float = 5.0
    ) -> None:
        self.url = url
        self.registry = registry
        self.state = state
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushes = 0
        self.error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="loadkit-push", daemon=True)
        self._thread.start()

    def push(self) -> None:
        run_id = self.state.run.run_id
        if not run_id:
            return
        try:
            push_to_gateway(
                self.url,
                job="loadkit",
                registry=self.registry,
                grouping_key={"run_id": run_id},
                timeout=5,
            )
            self.pushes += 1
            self.error = None
        except OSError as exc:  # a gateway away for a while: the next push tries again
            if self.error is None:
                log.warning("--push-to %s: %s", self.url, exc)
            self.error = str(exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.push()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with contextlib.suppress(Exception):
            self.push()
