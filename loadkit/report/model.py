"""The report's typed model: what :func:`~loadkit.report.metrics.compute_metrics` returns and every
renderer (terminal, Markdown, JSON, JUnit, HTML), ``compare`` and the gate read.

Rates are fractions (0.073 = 7.3%); latencies are milliseconds; times are run-clock seconds.
``busy_rate`` is ``None`` where nothing was answered::

    m = compute_metrics(run_dir)
    m.total.action.busy_rate, [(p.name, p.action.busy_rate) for p in m.phases]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Counts:
    """Outcomes of requests or actions (docs/design.md's taxonomy) and busy causes."""

    ok: int = 0
    rejected: int = 0
    busy: int = 0
    unsent: int = 0
    causes: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        """ok + rejected + busy: the busy rate's denominator."""
        return self.ok + self.rejected + self.busy

    @property
    def scheduled(self) -> int:
        return self.answered + self.unsent

    @property
    def busy_rate(self) -> float | None:
        return self.busy / self.answered if self.answered else None


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds (``None``: no latency recorded)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None


@dataclass(frozen=True)
class LevelStats:
    """One level (``action``: user actions after retries; ``request``: every HTTP request)."""

    counts: Counts
    latency: Latency  # from the intended send time: what the user waited
    service: Latency  # from the actual send

    @property
    def busy_rate(self) -> float | None:
        return self.counts.busy_rate


@dataclass(frozen=True)
class PhaseMetrics:
    """One profile phase. ``offered`` is the schedule's expected arrivals (``None`` without the
    profile); ``achieved_rate`` answered actions per second of the phase."""

    name: str
    start_s: float
    end_s: float
    offered: float | None
    offered_rate: float | None
    achieved_rate: float | None
    action: LevelStats
    request: LevelStats

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class FaultMetrics:
    """One fault: busy rate while it lasted, how long users saw busy, and recovery (seconds from
    its end until the 10-second busy rate is within ``limit`` and stays there for 10 s)."""

    id: str
    name: str
    type: str
    target: str
    start_s: float
    end_s: float | None  # None: never reverted
    error: str | None
    action: LevelStats
    request: LevelStats
    busy_s: int  # seconds from its start to its recovery with a 1-s busy rate above the limit
    peak_10s: float | None  # worst 10-second busy rate from its start to its recovery
    recovered: bool
    recovery_s: float | None
    note: str | None = None


@dataclass(frozen=True)
class EndpointMetrics:
    """One journey × endpoint (``endpoint`` ``*`` at action level: the journey as a whole)."""

    journey: str
    endpoint: str
    level: str
    stats: LevelStats


@dataclass(frozen=True)
class CauseMetrics:
    """One busy cause: counts at both levels, and its share of busy answers (request level)."""

    cause: str
    requests: int
    actions: int
    share: float


@dataclass(frozen=True)
class Window:
    """A window of the run clock ``[start_s, end_s)`` and its action-level busy rate."""

    start_s: float
    end_s: float
    busy_rate: float | None
    answered: int
    busy: int


@dataclass(frozen=True)
class Point:
    """One point of the time series: ``width_s`` seconds from ``t``. Counts are actions unless
    named ``request_…``; causes are action level; latency is action level, intended time."""

    t: int
    width_s: int
    phase: str
    offered: float | None
    answered: int
    busy: int
    unsent: int
    busy_rate: float | None
    request_answered: int
    request_busy: int
    request_busy_rate: float | None
    causes: dict[str, int]
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class Limit:
    """The steady-state busy-rate limit recovery is measured against, and where it came from:
    ``scenario`` (its busy-rate probe), ``baseline`` (pre-fault busy rate + 1 point) or
    ``given`` (the caller's)."""

    value: float
    source: str
    baseline: float | None = None


@dataclass(frozen=True)
class TotalMetrics:
    action: LevelStats
    request: LevelStats
    offered: float | None
    offered_rate: float | None
    achieved_rate: float | None
    unsent_share: float
    valid: bool  # at most 1% unsent (docs/design.md)


@dataclass(frozen=True)
class RunMetrics:
    """Everything a report says about one run."""

    run_id: str
    profile: str
    status: str
    reason: str | None
    scenario: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float
    time_scale: float | None
    total: TotalMetrics
    phases: list[PhaseMetrics]
    faults: list[FaultMetrics]
    endpoints: list[EndpointMetrics]
    causes: list[CauseMetrics]
    worst_10s: Window | None
    limit: Limit | None
    series: list[Point]
    integrity: dict[str, Any] | None
    notes: list[str]
    verdict: str
    gate: dict[str, Any] | None = None  # gate.json (loadkit.gate/v1) when the run was gated
    #: Unix time of run-clock second 0 (clock.json): run-clock ``t`` is wall time ``clock_t0 + t``
    clock_t0: float | None = None
    #: security.json (loadkit.security/v1): the wallet's anomaly counters during the run
    security: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the ``loadkit.report/v1`` body without its envelope)."""
        return asdict(self)

    def phase(self, name: str) -> PhaseMetrics | None:
        return next((p for p in self.phases if p.name == name), None)

    def fault(self, name: str) -> FaultMetrics | None:
        return next((f for f in self.faults if f.name == name or f.id == name), None)
