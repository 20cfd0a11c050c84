"""The report's typed model: what :func:`~loadkit.report.metrics.compute_metrics` returns and every
renderer (terminal, Markdown, JSON, JUnit, HTML), ``compare`` and the gate read.

Rates are fractions (0.073 = 7.3%); latencies are milliseconds; times are run-clock seconds.
``busy_rate`` is ``None`` where nothing was answered::

    m = compute_metrics(run_dir)
    m.total.action.busy_rate, [(p.name, p.action.busy_rate) for p in m.phases]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

#: the dimensions a scope narrows and a breakdown splits by (the timeline's keys)
SCOPE_KEYS = ("journey", "endpoint", "instance", "network")


@dataclass(frozen=True)
class Scope:
    """A slice of a run: only its answers of one journey, endpoint (a request's label, e.g.
    ``POST /v1/transfers``), target instance (``wallet-1``, or a URL) and/or network class
    (``None``: any)::

        Scope(journey="p2p_transfer", instance="wallet-1").label()
        # 'journey p2p_transfer, instance wallet-1'
    """

    journey: str | None = None
    endpoint: str | None = None
    instance: str | None = None
    network: str | None = None

    @property
    def is_everything(self) -> bool:
        return not any(getattr(self, k) is not None for k in SCOPE_KEYS)

    def matches(self, journey: str, endpoint: str, instance: str, network: str) -> bool:
        """Whether a timeline line of these keys is in the slice."""
        return (
            (self.journey is None or journey == self.journey)
            and (self.endpoint is None or endpoint == self.endpoint)
            and (self.instance is None or instance == self.instance)
            and (self.network is None or network == self.network)
        )

    def label(self) -> str:
        """``journey p2p_transfer, network weak-4g`` (``""`` for the whole run)."""
        words = {"network": "network class"}
        return ", ".join(
            f"{words.get(k, k)} {getattr(self, k)}"
            for k in SCOPE_KEYS
            if getattr(self, k) is not None
        )

    def to_dict(self) -> dict[str, str]:
        return {k: v for k in SCOPE_KEYS if (v := getattr(self, k)) is not None}


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
    profile); ``achieved_rate`` answered actions per second of the phase, ``goodput_rate`` the
    answered actions that were not busy (achieved − busy). ``server_causes``: the busy answers
    the target itself counted, by its own cause (its ``/metrics``; empty when not scraped)."""

    name: str
    start_s: float
    end_s: float
    offered: float | None
    offered_rate: float | None
    achieved_rate: float | None
    action: LevelStats
    request: LevelStats
    goodput_rate: float | None = None
    server_causes: dict[str, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class FaultInstance:
    """How one target instance fared during a fault (user actions it answered while the fault
    was on); ``hit``: the fault's target names this instance (``client-wallet-1`` names
    ``wallet-1``)."""

    instance: str
    hit: bool
    action: LevelStats


@dataclass(frozen=True)
class FaultMetrics:
    """One fault: busy rate while it lasted, how long users saw busy, and recovery (seconds from
    its end until the 10-second busy rate is within ``limit`` and stays there for 10 s);
    ``instances``: each target instance during it; ``server_causes`` as for a phase."""

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
    instances: list[FaultInstance] = field(default_factory=list)
    server_causes: dict[str, int] = field(default_factory=dict)

    @property
    def hit(self) -> list[str]:
        """The instances the fault's target names."""
        return [i.instance for i in self.instances if i.hit]


@dataclass(frozen=True)
class EndpointMetrics:
    """One journey × endpoint (``endpoint`` ``*`` at action level: the journey as a whole)."""

    journey: str
    endpoint: str
    level: str
    stats: LevelStats


@dataclass(frozen=True)
class SlicePhase:
    """One value of a breakdown in one phase (user actions)."""

    phase: str
    answered: int
    busy: int
    busy_rate: float | None
    p95: float | None


@dataclass(frozen=True)
class SliceMetrics:
    """One value of a breakdown (one instance, network class or journey): its numbers over
    the whole run, and per phase."""

    value: str
    action: LevelStats
    request: LevelStats
    phases: list[SlicePhase] = field(default_factory=list)
    #: action busy rate at each point of the run's ``series`` (instance and network only)
    busy_series: list[float | None] = field(default_factory=list)


@dataclass(frozen=True)
class Breakdown:
    """Busy rate, causes and latency split by one ``dimension``: ``instance`` (the target
    instance answers came from), ``network`` (the users' network class) or ``journey``."""

    dimension: str
    rows: list[SliceMetrics]


@dataclass(frozen=True)
class ServerCauses:
    """Busy answers the target counted itself, by its own cause (scraped from its metrics
    during the run: ``server-causes.jsonl``): over the run and per instance. ``groups`` names
    where each cause comes from, when the source said (the reference wallet's ``pool wait``,
    ``database``…)."""

    source: str
    total: dict[str, int]
    instances: dict[str, dict[str, int]]
    groups: dict[str, str] = field(default_factory=dict)


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
    #: answered actions that were not busy: achieved − busy
    goodput: int = 0
    #: service time (from the actual send) percentiles of the point's actions, ms
    service_p50: float | None = None
    service_p95: float | None = None


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
    goodput_rate: float | None = None  # answered actions that were not busy, per second


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
    #: busy rate, causes and latency by instance, network class and journey
    breakdowns: list[Breakdown] = field(default_factory=list)
    #: the target's own busy causes (None: not scraped)
    server_causes: ServerCauses | None = None
    #: the slice these metrics are of (None: the whole run)
    scope: dict[str, str] | None = None
    #: run-clock second where a run that ended early stopped (rates are over what it ran)
    stopped_s: float | None = None
    #: https URLs whose certificates the run did not verify (``verify: false``)
    insecure_urls: list[str] = field(default_factory=list)

    @property
    def ended_early(self) -> bool:
        """The run did not end as planned (aborted, interrupted, failed, killed): what it
        recorded is reported, and every report says so."""
        return self.status in ("aborted", "interrupted", "failed", "running")

    def breakdown(self, dimension: str) -> Breakdown | None:
        return next((b for b in self.breakdowns if b.dimension == dimension), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the ``loadkit.report/v1`` body without its envelope): ``asdict``'s,
        with ``answered`` and ``busy_rate`` in every counts object."""
        body: dict[str, Any] = _plain(self)
        return body

    def phase(self, name: str) -> PhaseMetrics | None:
        return next((p for p in self.phases if p.name == name), None)

    def fault(self, name: str) -> FaultMetrics | None:
        return next((f for f in self.faults if f.name == name or f.id == name), None)


_COUNT_KEYS = {"ok", "rejected", "busy", "unsent", "causes"}
#: a dataclass's field names, by class (``dataclasses.fields`` once per class, not per object)
_FIELDS: dict[type, tuple[str, ...]] = {}
_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s plain data (dataclasses as dicts of their fields, in order),
    with ``answered`` and ``busy_rate`` added to every counts object (they are properties)."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    names = _FIELDS.get(cls)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[cls] = tuple(f.name for f in fields(value))
    if names is not None:
        out = {name: _plain(getattr(value, name)) for name in names}
    elif isinstance(value, dict):
        out = {k: _plain(v) for k, v in value.items()}
    elif isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    else:
        return value
    if len(out) == len(_COUNT_KEYS) and out.keys() == _COUNT_KEYS:
        answered = out["ok"] + out["rejected"] + out["busy"]
        out["answered"] = answered
        out["busy_rate"] = out["busy"] / answered if answered else None
    return out
