"""The target's own busy causes while a run goes: each instance's Prometheus counter of busy
answers by cause, scraped about once a second and written to ``server-causes.jsonl``, so reports
show what the server said beside what the client saw (docs/run-directory.md).

The reference wallet exports ``wallet_busy_responses_total{cause=…}`` on each instance's
``/metrics``, and the orchestrator attaches :class:`ServerCausesListener` to every run against
the reference stack (scraping each instance directly, not through the proxies client network
faults go to). A system file names any other endpoint (``services.NAME.metrics``: a URL, or the
counter, its cause label, and a label that tells instances apart): :func:`system_endpoints`::

    listener = ServerCausesListener([MetricsEndpoint("shop", "http://127.0.0.1:9100/metrics")])
    listener.attach(runner.events)

:class:`WalletCauses` is the same scrape for ``loadkit capacity`` (busy answers by cause between
two wall-clock moments).
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from loadkit.run.events import RunListener
from loadkit.rundir.servercauses import ServerCausesWriter
from loadkit.wallet.contract import BusyCause

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner
    from loadkit.stack.reference import ReferenceStack
    from loadkit.stack.system import System

log = logging.getLogger("loadkit.run")

#: the reference wallet's counter of busy answers, by ``cause``
WALLET_METRIC = "wallet_busy_responses_total"
#: how often each endpoint is scraped
INTERVAL_S = 1.0
SCRAPE_TIMEOUT_S = 0.8
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class MetricsEndpoint:
    """One Prometheus endpoint: ``instance`` names it in reports; with ``instance_label`` its
    samples are split into instances by that label's values instead."""

    instance: str
    url: str
    metric: str = WALLET_METRIC
    cause_label: str = "cause"
    instance_label: str | None = None
    #: httpx's ``verify=`` for an https endpoint (the stack's CA, a system service's TLS)
    verify: ssl.SSLContext | bool = field(default=True, compare=False)


def busy_counts(
    text: str, metric: str, cause_label: str = "cause", instance_label: str | None = None
) -> dict[str, dict[str, float]]:
    """The ``metric`` samples of a Prometheus text page, summed by cause (and split by
    ``instance_label``; ``""`` when there is none)::

        busy_counts('x_total{cause="a"} 3\\n', "x_total")   # {"": {"a": 3.0}}
    """
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith(metric):
            continue
        match = _SAMPLE.match(line)
        if match is None or match[1] != metric:
            continue
        try:
            value = float(match[4])
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match[3] or ""))
        cause = labels.get(cause_label, "")
        where = labels.get(instance_label, "") if instance_label else ""
        per = out.setdefault(where, {})
        per[cause] = per.get(cause, 0.0) + value
    return out


class Scraper:
    """Reads every endpoint's counters; :meth:`sample` returns each instance's busy answers
    by cause since the previous sample (an instance whose counters went back, a restart, counts
    from zero again; one that did not answer waits for the next sample)."""

    def __init__(self, endpoints: Sequence[MetricsEndpoint]) -> None:
        self.endpoints = list(endpoints)
        # one client per endpoint: each checks its certificate its own way
        self._clients = [
            httpx.Client(timeout=SCRAPE_TIMEOUT_S, verify=ep.verify) for ep in self.endpoints
        ]
        self._last: dict[str, dict[str, float]] = {}

    def read(self) -> dict[str, dict[str, float]]:
        """Each instance's counters now (instances that did not answer are left out)."""
        now: dict[str, dict[str, float]] = {}
        for ep, client in zip(self.endpoints, self._clients, strict=True):
            try:
                response = client.get(ep.url)
            except httpx.HTTPError:
                continue
            if not response.is_success:
                continue
            text = response.text
            for where, causes in busy_counts(
                text, ep.metric, ep.cause_label, ep.instance_label
            ).items():
                name = where or ep.instance
                into = now.setdefault(name, {})
                for cause, value in causes.items():
                    into[cause] = into.get(cause, 0.0) + value
            if not ep.instance_label:
                now.setdefault(ep.instance, {})  # answered, with no busy answer yet
        return now

    def sample(self) -> dict[str, dict[str, int]]:
        """Busy answers by cause per instance since the last call (the first call only
        remembers the counters)."""
        now = self.read()
        deltas: dict[str, dict[str, int]] = {}
        for name, counts in now.items():
            before = self._last.get(name)
            if before is not None:
                restarted = any(counts.get(c, 0.0) < v for c, v in before.items())
                base = {} if restarted else before
                moved = {
                    c: round(v - base.get(c, 0.0)) for c, v in counts.items() if v > base.get(c, 0)
                }
                if moved:
                    deltas[name] = moved
            self._last[name] = counts
        return deltas

    def close(self) -> None:
        for client in self._clients:
            client.close()


class ServerCausesListener(RunListener):
    """Scrapes from ``started`` until ``stopping`` (and once more then), on a thread of its own;
    without ``endpoints``, those of the run's reference stack (none: it does nothing)."""

    def __init__(
        self,
        endpoints: Sequence[MetricsEndpoint] | None = None,
        *,
        interval_s: float = INTERVAL_S,
        source: str | None = None,
    ) -> None:
        self.endpoints = list(endpoints) if endpoints is not None else None
        self.interval_s = interval_s
        self.source = source
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scraper: Scraper | None = None
        self._writer: ServerCausesWriter | None = None
        self._t0 = 0.0
        self._last = 0.0

    def on_started(self, run: Runner, t0: float) -> None:
        endpoints = self.endpoints
        source = self.source
        if endpoints is None:
            endpoints = reference_endpoints(run.stack) if run.stack is not None else []
            source = source or "the reference wallet's /metrics (wallet_busy_responses_total)"
        if not endpoints or run.rundir is None:
            return
        groups = (
            {c.value: c.group for c in BusyCause} if endpoints[0].metric == WALLET_METRIC else {}
        )
        self._writer = ServerCausesWriter(
            run.rundir.server_causes,
            source=source or ", ".join(sorted({e.url for e in endpoints})),
            groups=groups,
        )
        self._scraper = Scraper(endpoints)
        self._t0 = t0
        self._scraper.sample()  # the counters at the start: what came before is not this run's
        self._last = time.time()
        self._thread = threading.Thread(
            target=self._loop, name="loadkit-server-causes", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._once()

    def _once(self) -> None:
        scraper, writer = self._scraper, self._writer
        if scraper is None or writer is None:
            return
        try:
            deltas = scraper.sample()
        except Exception:  # a scrape must never break the run
            log.exception("scraping the target's busy causes failed")
            return
        now = time.time()
        for instance, busy in deltas.items():
            writer.add(t=now - self._t0, dt=now - self._last, instance=instance, busy=busy)
        self._last = now

    def on_stopping(self, run: Runner, reason: str | None) -> None:
        self.close(final=True)

    def on_finished(self, run: Runner, result: Any) -> None:
        self.close(final=False)

    def close(self, *, final: bool) -> None:
        """Stop scraping (``final``: one last sample first, for the last second's answers)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=5.0)
        if final:
            self._once()
        if self._scraper is not None:
            self._scraper.close()
        if self._writer is not None:
            self._writer.close()


def reference_endpoints(stack: ReferenceStack) -> list[MetricsEndpoint]:
    """Each wallet instance's own ``/metrics`` (not through its client proxy, so client network
    faults do not hide it)."""
    return [
        MetricsEndpoint(w.name, f"{w.url}/metrics", verify=w.verify) for w in stack.manifest.wallets
    ]


def system_endpoints(
    system: System, verify: Callable[[str], ssl.SSLContext | bool] | None = None
) -> list[MetricsEndpoint]:
    """The ``metrics:`` endpoints of a system file's services (by service name); ``verify``
    says how to check an https endpoint's certificate (the run's ``verify_for``)."""
    out = []
    for service in system.services:
        m = service.metrics
        if m is not None:
            out.append(
                MetricsEndpoint(
                    service.name,
                    m.url,
                    m.metric,
                    m.cause_label,
                    m.instance_label,
                    verify=verify(m.url) if verify is not None else True,
                )
            )
    return out


class WalletCauses:
    """Samples each wallet instance's ``wallet_busy_responses_total`` (at most twice a second)
    and answers "how many busy answers of each cause between two wall-clock times" (``loadkit
    capacity``)::

        causes = WalletCauses([w.url for w in stack.manifest.wallets])
        causes.sample()                       # call it while the run goes
        causes.between(t0 + 12.0, t0 + 15.0)  # {"rate_limited": 180, "db_pool_timeout": 3}
    """

    def __init__(self, urls: Iterable[str], verify: ssl.SSLContext | bool = True) -> None:
        self.urls = list(urls)
        self.samples: list[tuple[float, dict[str, dict[str, float]]]] = []
        self._client = httpx.Client(timeout=0.5, verify=verify) if self.urls else None

    def sample(self, *, force: bool = False) -> None:
        now = time.time()
        if self._client is None or (not force and self.samples and now - self.samples[-1][0] < 0.4):
            return
        counts: dict[str, dict[str, float]] = {}
        for url in self.urls:
            with contextlib.suppress(httpx.HTTPError):
                text = self._client.get(f"{url}/metrics").text
                counts[url] = busy_counts(text, WALLET_METRIC).get("", {})
        self.samples.append((now, counts))

    def between(self, a: float, b: float) -> dict[str, int] | None:
        """Busy answers by wallet cause in wall-clock ``[a, b]`` (nearest samples)."""
        if len(self.samples) < 2:
            return None
        before = [s for s in self.samples if s[0] <= a] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= b] or self.samples[-1:]
        lo, hi = before[-1][1], after[0][1]
        out: dict[str, int] = {}
        for url, end in hi.items():
            start = lo.get(url)
            if start is None:
                continue
            diffs = {c: end.get(c, 0.0) - start.get(c, 0.0) for c in end}
            if any(d < 0 for d in diffs.values()):
                continue  # the instance restarted: its counters began again
            for cause, d in diffs.items():
                out[cause] = out.get(cause, 0) + round(d)
        return {cause: n for cause, n in out.items() if n}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
