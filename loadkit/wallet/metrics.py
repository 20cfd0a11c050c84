"""Prometheus metrics of one wallet instance (its own registry, so several apps can share a
process in tests).

Label children are cached per route and status: the hot path pays a dict lookup, not
prometheus_client's locked label resolution::

    metrics = WalletMetrics()
    metrics.observe("transfers", "POST", 201, 0.004)
    text = metrics.render()
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from loadkit.wallet.contract import BusyCause

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    10.0,
)


class WalletMetrics:
    """The instance's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wallet_http_requests",
            "HTTP requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "wallet_http_request_duration_seconds",
            "Time from the request reaching the app to its response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "wallet_http_inflight_requests", "Requests admitted and not yet answered", registry=r
        )
        self.busy = Counter(
            "wallet_busy_responses",
            "WALLET_BUSY answers (429/503), by cause",
            ["cause"],
            registry=r,
        )
        for cause in BusyCause:
            self.busy.labels(cause.value)
        self.pool_wait = Histogram(
            "wallet_db_pool_wait_seconds",
            "Time spent waiting for a database connection from the pool",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.pool_connections = Gauge(
            "wallet_db_pool_connections",
            "Database connections by state (open, idle, max)",
            ["state"],
            registry=r,
        )
        self.movements = Counter(
            "wallet_money_movements",
            "Money movement requests that reached the ledger, by kind and result",
            ["kind", "result"],
            registry=r,
        )
        self.unhandled = Counter(
            "wallet_unhandled_exceptions",
            "Requests that failed with an unexpected exception (answered 500)",
            registry=r,
        )
        self.policy = Gauge(
            "wallet_risk_policy", "1 for the active risk policy", ["policy"], registry=r
        )
        self.maintenance = Gauge(
            "wallet_maintenance", "1 while the instance is in maintenance mode", registry=r
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._duration_children: dict[str, Histogram] = {}
        self._busy_children: dict[str, Counter] = {}

    def track_inflight(self, read: Callable[[], float]) -> None:
        """Report the in-flight gauge from ``read`` at scrape time (no per-request updates)."""
        self.inflight.set_function(read)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        hist = self._duration_children.get(route)
        if hist is None:
            hist = self._duration_children[route] = self.duration.labels(route)
        hist.observe(seconds)

    def busy_answer(self, cause: str) -> None:
        child = self._busy_children.get(cause)
        if child is None:
            child = self._busy_children[cause] = self.busy.labels(cause)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
