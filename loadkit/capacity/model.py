"""What a capacity search tests at each step, and what it found (``capacity.json``).

Rates are arrivals per second, shares are fractions (0.01 = 1%), latencies milliseconds::

    result = find_capacity(CapacityOptions(profile=Path("profiles/smoke.yaml")))
    result.knee_rate, [(s.rate, s.verdict) for s in result.steps]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from loadkit.wallet.contract import BusyCause

SCHEMA = "loadkit.capacity/v1"

#: the wallet's busy causes (``WALLET_BUSY`` ``cause``), grouped as people ask "where from?"
WALLET_CAUSE_GROUPS = {cause.value: cause.group for cause in BusyCause}


class Measure(StrEnum):
    BUSY_RATE = "busy_rate"
    P95 = "p95"
    P99 = "p99"


@dataclass(frozen=True)
class StepObjective:
    """The test every step must pass: busy rate (a fraction, optionally of one ``cause``) or a
    latency percentile (``limit`` in seconds), at ``action`` or ``request`` level::

        StepObjective(Measure.BUSY_RATE, 0.01)          # at most 1% of user actions busy
        StepObjective(Measure.P99, 0.8, level="request")
    """

    measure: Measure
    limit: float
    level: str = "action"
    cause: str | None = None
    name: str | None = None

    def label(self) -> str:
        if self.name:
            return self.name
        if self.measure is Measure.BUSY_RATE:
            what = f"{self.cause} busy rate" if self.cause else "busy rate"
            return f"{what} ({self.level}) ≤ {self.limit * 100:g}%"
        return f"{self.measure.value} ({self.level}) ≤ {self.limit * 1000:g}ms"


class Verdict(StrEnum):
    """One step: met the objectives, lost them, or cannot tell."""

    PASS = "pass"
    FAIL = "fail"
    GENERATOR_LIMITED = "generator-limited"  # unsent > 1%: the generator, not the service
    NO_DATA = "no-data"  # nothing answered in the measurement window
    NOT_RUN = "not-run"  # the search stopped before this step was measured


class Outcome(StrEnum):
    """What the whole search found (``capacity.json`` ``status``)."""

    KNEE = "knee"  # the highest rate that meets the objectives, below a rate that does not
    NOT_MET = "not-met"  # not even the lowest rate tried meets them
    AT_LEAST = "at-least"  # every rate tried met them: capacity ≥ the highest
    GENERATOR_LIMITED = "generator-limited"  # the generator could not offer more


@dataclass
class StepResult:
    """One step of one pass. ``causes`` are the client's busy causes (request level);
    ``wallet_causes`` the reference wallet's own (``rate_limited``, ``db_pool_timeout``…) from
    its ``/metrics`` over the step, when the target is the reference stack."""

    index: int
    pass_name: str
    rate: float
    start_s: float
    end_s: float
    verdict: Verdict = Verdict.NOT_RUN
    offered_rate: float | None = None
    achieved_rate: float | None = None
    answered: int = 0
    busy: int = 0
    unsent: int = 0
    busy_rate: float | None = None
    request_busy_rate: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    unsent_share: float = 0.0
    causes: dict[str, int] = field(default_factory=dict)
    wallet_causes: dict[str, int] | None = None
    failed: list[str] = field(default_factory=list)  # objectives lost, with measured values
    run_id: str | None = None

    @property
    def phase(self) -> str:
        return step_phase(self.index)

    def cause_groups(self) -> dict[str, int]:
        """Busy answers by where they came from: the wallet's causes grouped (throttled, pool
        wait, database…) when known, else the client's causes. Wallet counters are sampled
        twice a second, so they are shown only for steps where the client saw busy answers."""
        if not self.causes:
            return {}
        if self.wallet_causes:
            out: dict[str, int] = {}
            for cause, n in self.wallet_causes.items():
                group = WALLET_CAUSE_GROUPS.get(cause, cause)
                out[group] = out.get(group, 0) + n
            return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v}
        return {k: v for k, v in sorted(self.causes.items(), key=lambda kv: -kv[1]) if v}


@dataclass
class PassRecord:
    """One Locust run of the search (``coarse``, then ``fine`` around the knee)."""

    name: str
    run_dir: str
    status: str
    reason: str | None = None


@dataclass
class CapacityResult:
    """The search's answer. ``knee_rate`` is ``None`` unless ``outcome`` is ``knee``;
    ``at_least`` is the highest rate that passed (a lower bound when no knee was found)."""

    capacity_dir: str
    profile: str
    objectives: list[str]
    outcome: Outcome
    knee_rate: float | None
    at_least: float | None
    first_failing_rate: float | None
    message: str
    steps: list[StepResult]
    passes: list[PassRecord]
    settings: dict[str, Any]
    scenario: str | None = None
    target: str = "reference"
    started_at: float | None = None
    ended_at: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.outcome is Outcome.KNEE

    def knee_step(self) -> StepResult | None:
        if self.knee_rate is None:
            return None
        return max(
            (s for s in self.steps if s.verdict is Verdict.PASS and s.rate == self.knee_rate),
            key=lambda s: s.pass_name == "fine",
            default=None,
        )

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for step in body["steps"]:
            step["phase"] = step_phase(step["index"])
        return {"schema": SCHEMA, **body}


def step_phase(index: int) -> str:
    """The profile stage a step is measured in (its warm-up is ``step-NN-warmup``)."""
    return f"step-{index:02d}"


def objectives_from_slo(slo: Any) -> tuple[list[StepObjective], list[str]]:
    """The per-step test from an SLO file (``loadkit.gate.load_slo``): its whole-run
    ``max_busy_rate`` objectives, and ``max_p95``/``max_p99`` if present. Returns the objectives
    and the labels of the ones a step cannot test (scoped to a phase, a fault or a slice such as
    a journey, or another measure)."""
    measures = {
        "max_busy_rate": Measure.BUSY_RATE,
        "max_p95": Measure.P95,
        "max_p99": Measure.P99,
    }
    out: list[StepObjective] = []
    skipped: list[str] = []
    for obj in slo.objectives:
        measure = measures.get(obj.measure)
        sliced = getattr(obj, "scope", None) is not None
        if measure is None or obj.phase or obj.fault or sliced or obj.limit is None:
            skipped.append(obj.label())
            continue
        out.append(
            StepObjective(
                measure,
                float(obj.limit),
                level=obj.level or "action",
                cause=obj.cause if measure is Measure.BUSY_RATE else None,
                name=obj.name,
            )
        )
    return out, skipped
