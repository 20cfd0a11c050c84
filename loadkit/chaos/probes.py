"""Measuring the business metric while faults run: the busy rate and p95 over a window, from the
run's timeline when there is load, or from the controller's own light probe traffic when there is
none; and the steady-state probes (``/readyz``, the ledger invariants, any loopback URL).

Every answer is classified with the one taxonomy of :mod:`loadkit.profile.outcome`::

    prober = Prober(stack, Traffic(rate=4), clock=lambda: time.time() - t0); prober.start()
    stats = prober.window(now_t=30.0, window_s=10.0)   # WindowStats(answered=40, busy=12, …)
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from loadkit.chaos.faults.base import ALL_WALLETS, ChaosEnv
from loadkit.chaos.scenario import ProbeKind, ProbeSpec, Request, Traffic
from loadkit.errors import ConfigError
from loadkit.profile.outcome import (
    MAINTENANCE_HEADER,
    Failure,
    Outcome,
    classify,
    maintenance_marked,
)
from loadkit.rundir import RunDir
from loadkit.rundir.timeline import Timeline
from loadkit.stack.manifest import WalletInfo
from loadkit.stack.reference import ReferenceStack

#: seconds of the timeline whose answers may still be arriving (it is written every ~2 s)
TIMELINE_LAG = 3.0


@dataclass
class WindowStats:
    """Outcomes over a window: the busy rate, p95 and the busy causes seen."""

    answered: int = 0
    busy: int = 0
    p95_s: float | None = None
    causes: dict[str, int] = field(default_factory=dict)
    source: str = "probes"

    @property
    def busy_rate(self) -> float:
        return self.busy / self.answered if self.answered else 0.0

    def top_cause(self) -> str | None:
        return max(self.causes, key=lambda c: self.causes[c]) if self.causes else None


class BusySource(Protocol):
    """Where the busy rate comes from."""

    def window(self, now_t: float, window_s: float) -> WindowStats: ...


class TimelineSource:
    """The busy rate of the run's load, from ``timeline.jsonl`` (action level)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunDir(run_dir).timeline
        self.timeline = Timeline()

    def window(self, now_t: float, window_s: float) -> WindowStats:
        self.timeline.tail(self.path)
        end = now_t - TIMELINE_LAG
        bucket = self.timeline.select("action", t_from=end - window_s, t_to=end)
        p95 = bucket.percentile_ms(95)
        return WindowStats(
            answered=bucket.answered,
            busy=bucket.count("busy"),
            p95_s=p95 / 1000 if p95 is not None else None,
            causes=dict(self.timeline.select("request", t_from=end - window_s, t_to=end).busy),
            source="timeline",
        )


@dataclass(frozen=True)
class Sample:
    t: float  # run clock, when it was sent
    outcome: str
    cause: str | None  # the taxonomy's cause, with the service's own word: 'unavailable/db_down'
    latency_s: float


class Prober:
    """Light traffic through every wallet instance's client-side proxy (so client network faults
    apply): one thread per instance, ``rate`` requests/s in all. Without a stack (a system
    file), ``GET`` on each of ``urls`` (the system's probes) instead."""

    def __init__(
        self,
        stack: ReferenceStack | None,
        traffic: Traffic,
        clock: Callable[[], float],
        urls: tuple[str, ...] = (),
    ) -> None:
        self.stack = stack
        self.traffic = traffic
        self.clock = clock
        self.urls = urls
        self.samples: collections.deque[Sample] = collections.deque(maxlen=20_000)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.stack is None:
            interval = max(1, len(self.urls)) / self.traffic.rate
            for i, url in enumerate(self.urls):
                thread = threading.Thread(
                    target=self._run_plain,
                    args=(url, interval, i * interval / len(self.urls)),
                    name=f"chaos-probe-{i}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            return
        wallets = self.stack.manifest.wallets
        users = int(self.stack.manifest.seed.get("users", 1) or 1)
        interval = len(wallets) / self.traffic.rate
        for i, w in enumerate(wallets):
            user = f"user{max(1, users - i):05d}"  # one user per instance, far from hot ids
            thread = threading.Thread(
                target=self._run,
                args=(w, user, interval, i * interval / len(wallets)),
                name=f"chaos-probe-{w.name}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _run(self, w: WalletInfo, user: str, interval: float, offset: float) -> None:
        token: str | None = None
        next_at = time.monotonic() + offset
        with httpx.Client(base_url=w.client_url, timeout=2.0, verify=w.verify) as http:
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                next_at += interval
                if next_at < time.monotonic():  # a slow answer: skip, do not burst to catch up
                    next_at = time.monotonic() + interval
                sent, t = time.monotonic(), self.clock()
                if self.traffic.request is Request.READYZ:
                    self._record(t, sent, self._get(http, "/readyz", None))
                    continue
                if token is None:
                    answer = self._post_login(http, user)
                    if isinstance(answer, str):
                        token = answer
                        sent, t = time.monotonic(), self.clock()
                    else:
                        self._record(t, sent, answer)
                        continue
                answer = self._get(http, "/v1/balance", token)
                if answer[0] == 401:
                    token = None
                self._record(t, sent, answer)

    def _run_plain(self, url: str, interval: float, offset: float) -> None:
        next_at = time.monotonic() + offset
        with httpx.Client(timeout=2.0) as http:
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                next_at = max(next_at + interval, time.monotonic())
                sent, t = time.monotonic(), self.clock()
                try:
                    r = http.get(url)
                    answer: tuple[int | None, str | None] = (r.status_code, _detail(r))
                except httpx.HTTPError as exc:
                    answer = (None, _failure(exc).value)
                self._record(t, sent, answer)

    def _post_login(self, http: httpx.Client, user: str) -> str | tuple[int | None, str | None]:
        assert self.stack is not None
        body = {"username": user, "password": self.stack.password}
        try:
            r = http.post("/v1/login", json=body)
        except httpx.HTTPError as exc:
            return None, _failure(exc).value
        if r.status_code == 200:
            try:
                return str(r.json()["token"])
            except (ValueError, KeyError, TypeError):
                return 502, "bad login answer"  # counted as a busy (unavailable) answer
        return r.status_code, _detail(r)

    def _get(
        self, http: httpx.Client, path: str, token: str | None
    ) -> tuple[int | None, str | None]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            r = http.get(path, headers=headers)
        except httpx.HTTPError as exc:
            return None, _failure(exc).value
        return r.status_code, _detail(r)

    def _record(self, t: float, sent: float, answer: tuple[int | None, str | None]) -> None:
        status, detail = answer
        if status is None:
            failure = Failure.TIMEOUT if detail == "timeout" else Failure.CONNECTION
            outcome, cause = classify(None, failure=failure)
        else:
            outcome, cause = classify(status, maintenance=detail == "maintenance")
        word = None if cause is None else cause.value
        if word and detail and detail != word:
            word = f"{word}/{detail}"
        self.samples.append(Sample(t, outcome.value, word, time.monotonic() - sent))

    def window(self, now_t: float, window_s: float) -> WindowStats:
        stats = WindowStats(source="probes")
        latencies = []
        for s in list(self.samples):
            if now_t - window_s <= s.t < now_t:
                stats.answered += 1
                latencies.append(s.latency_s)
                if s.outcome == Outcome.BUSY.value:
                    stats.busy += 1
                    cause = s.cause or "unknown"
                    stats.causes[cause] = stats.causes.get(cause, 0) + 1
        if latencies:
            latencies.sort()
            stats.p95_s = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)]
        return stats


def _failure(exc: httpx.HTTPError) -> Failure:
    return Failure.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Failure.CONNECTION


def _detail(r: httpx.Response) -> str | None:
    """The service's own word for a busy answer (``maintenance``, ``db_unavailable``…)."""
    if r.status_code < 429:
        return None
    if maintenance_marked(r.headers.get(MAINTENANCE_HEADER), r.content):
        return "maintenance"
    try:
        body = r.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        word = body.get("cause") or body.get("reason")
        return str(word) if word else None
    return None


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    detail: str
    unknown: bool = False  # the probe could not be evaluated (its target did not answer)


def check_probe(probe: ProbeSpec, env: ChaosEnv, source: BusySource, now_t: float) -> ProbeResult:
    """Evaluate one steady-state probe now."""
    try:
        ok, detail = _check(probe, env, source, now_t)
    except Exception as exc:  # a probe that cannot tell is a failing probe…
        detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        # …but not evidence for an abort condition: a ledger check cannot run while the
        # database is down, and that is no sign that money was lost
        return ProbeResult(probe.name, False, f"could not check: {detail}", unknown=True)
    return ProbeResult(probe.name, ok, detail)


def _check(probe: ProbeSpec, env: ChaosEnv, source: BusySource, now_t: float) -> tuple[bool, str]:
    if probe.kind is ProbeKind.READYZ:
        names = env.wallet_names(probe.target if probe.target != ALL_WALLETS else ALL_WALLETS)
        bad = []
        for name in names:
            info = env.wallet(name).info
            try:
                r = httpx.get(
                    f"{info.client_url}/readyz", timeout=probe.timeout_s, verify=info.verify
                )
                if r.status_code != 200:
                    bad.append(f"{name}: {r.status_code} {_detail(r) or ''}".strip())
            except httpx.HTTPError as exc:
                bad.append(f"{name}: {_failure(exc).value}")
        return not bad, "; ".join(bad) or f"{len(names)} ready"
    if probe.kind is ProbeKind.INVARIANTS:
        stack: ReferenceStack | None = getattr(env, "stack", None)
        if stack is None:
            raise ConfigError("an invariants probe needs the reference wallet's ledger")
        report = stack.admin.invariants()
        broken = [k for k, v in report.items() if k not in ("ok",) and isinstance(v, int) and v]
        return bool(report.get("ok")), "ledger consistent" if report.get("ok") else str(broken)
    if probe.kind is ProbeKind.HTTP:
        assert probe.url is not None
        r = httpx.get(probe.url, timeout=probe.timeout_s)
        return r.status_code == probe.status, f"{r.status_code} (expected {probe.status})"
    stats = source.window(now_t, probe.window_s)
    if not stats.answered:
        return True, "no answered requests in the window yet"
    limit = probe.max if probe.max is not None else math.inf
    if probe.kind is ProbeKind.BUSY_RATE:
        text = f"busy {stats.busy_rate:.1%} (limit {limit:.1%}, {stats.answered} answered)"
        return stats.busy_rate <= limit, text
    p95 = stats.p95_s or 0.0
    return p95 <= limit, f"p95 {p95 * 1000:.0f}ms (limit {limit * 1000:.0f}ms)"
