"""Chaos scenarios: the typed model of a ``chaos/*.yaml`` file, and its plan on the run clock.

A scenario is a steady-state hypothesis (probes with tolerances, checked before the first fault
and after the last), a timeline of faults (each at a run-clock time, or relative to a profile
phase: ``midnight+10s``), and abort conditions. :func:`load_scenario` validates the whole file
(every mistake at ``file:line:column``); :func:`make_plan` puts it on the run clock, resolving
phase-relative times against a profile::

    scenario = load_scenario("chaos/db-crash.yaml")
    plan = make_plan(scenario, load_profile("profiles/double11.yaml"))
    [(f.name, f.start_s, f.end_s) for f in plan.faults]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from loadkit.profile.model import Profile
from loadkit.spec.errors import Problem, SpecError
from loadkit.spec.values import did_you_mean, format_duration


@dataclass(frozen=True)
class Where:
    """Where a value was written, for errors found after validation (at planning time)."""

    file: str
    line: int | None
    column: int | None
    path: str

    def problem(self, message: str) -> Problem:
        return Problem(self.file, self.line, self.column, self.path, message)


NOWHERE = Where("", None, None, "")


@dataclass(frozen=True)
class ClockTime:
    """A run-clock time: ``offset_s`` seconds after t=0, or after the start of ``phase``."""

    offset_s: float
    phase: str | None = None
    where: Where = field(default=NOWHERE, compare=False)

    def __str__(self) -> str:
        offset = format_duration(self.offset_s) if self.offset_s else "0s"
        if self.phase is None:
            return offset
        return self.phase if not self.offset_s else f"{self.phase}+{offset}"


@dataclass(frozen=True)
class FaultSpec:
    """One fault of the timeline, as validated (parameters in base units, defaults filled)."""

    name: str
    type: str
    target: str
    at: ClockTime
    duration_s: float | None = None
    until: ClockTime | None = None
    params: Mapping[str, object] = field(default_factory=dict)
    where: Where = field(default=NOWHERE, compare=False)


class ProbeKind(StrEnum):
    READYZ = "readyz"  # every wallet instance answers /readyz with 200
    INVARIANTS = "invariants"  # the wallet ledger's invariants hold (money conserved…)
    HTTP = "http"  # a loopback URL answers with the expected status
    BUSY_RATE = "busy-rate"  # busy / answered over a window, at most 'max'
    P95 = "p95"  # 95th percentile latency over a window, at most 'max'


@dataclass(frozen=True)
class ProbeSpec:
    """A steady-state probe. ``max`` is a fraction (busy-rate) or seconds (p95)."""

    name: str
    kind: ProbeKind
    max: float | None = None
    window_s: float = 10.0
    timeout_s: float = 2.0
    target: str = "wallets"
    url: str | None = None
    status: int = 200


class Request(StrEnum):
    """What the controller's own probe traffic sends when there is no load."""

    BALANCE = "balance"  # log in, then GET /v1/balance (a real, read-only user request)
    READYZ = "readyz"  # GET /readyz (no login; works for any service with such an endpoint)


@dataclass(frozen=True)
class Traffic:
    """Probe traffic through every wallet's client-side proxy, for the busy rate without load."""

    rate: float = 4.0
    request: Request = Request.BALANCE


@dataclass(frozen=True)
class SteadyState:
    probes: tuple[ProbeSpec, ...] = ()
    before: bool = True
    after: bool = True
    recover_within_s: float = 30.0
    traffic: Traffic = field(default_factory=Traffic)


class AbortWhen(StrEnum):
    BUSY_RATE = "busy-rate"
    P95 = "p95"
    PROBE = "probe"


@dataclass(frozen=True)
class AbortCondition:
    """Stop every fault, roll back and exit 4 when this holds for ``for_s`` seconds."""

    name: str
    when: AbortWhen
    above: float | None = None  # a fraction (busy-rate) or seconds (p95)
    window_s: float = 10.0
    for_s: float = 0.0
    probe: str | None = None
    every_s: float = 2.0

    def describe(self) -> str:
        held = f" for {format_duration(self.for_s)}" if self.for_s else ""
        if self.when is AbortWhen.PROBE:
            return f"probe '{self.probe}' fails{held}"
        if self.when is AbortWhen.BUSY_RATE:
            above = f"{(self.above or 0) * 100:g}%"
        else:
            above = format_duration(self.above or 0)
        window = format_duration(self.window_s)
        return f"{self.when.value} over {window} above {above}{held}"


@dataclass(frozen=True)
class Scenario:
    """A validated chaos scenario."""

    name: str
    faults: tuple[FaultSpec, ...]
    description: str = ""
    steady_state: SteadyState = field(default_factory=SteadyState)
    abort: tuple[AbortCondition, ...] = ()
    allow: tuple[str, ...] = ()  # target patterns; empty = the stack's own components
    duration_s: float | None = None
    source: str | None = None

    def probe(self, name: str) -> ProbeSpec | None:
        return next((p for p in self.steady_state.probes if p.name == name), None)


@dataclass(frozen=True)
class PlannedFault:
    """A fault placed on the run clock. ``end_s`` is None for an instant fault."""

    id: str
    spec: FaultSpec
    start_s: float
    end_s: float | None


@dataclass(frozen=True)
class Plan:
    """The scenario on the run clock: faults by start time, and when the run ends."""

    scenario: Scenario
    faults: tuple[PlannedFault, ...]
    end_s: float
    phases: Mapping[str, float] = field(default_factory=dict)


def phase_starts(profile: Profile) -> dict[str, float]:
    """Run-clock start of every phase (stage); a repeated stage's bare name is its first run."""
    starts: dict[str, float] = {}
    clock = 0.0
    for stage in profile.stages:
        starts.setdefault(stage.name, clock)
        starts.setdefault(stage.name.split("#", 1)[0], clock)
        clock += stage.duration_s * profile.time_scale
    return starts


def make_plan(scenario: Scenario, profile: Profile | None = None) -> Plan:
    """Put ``scenario`` on the run clock; :class:`SpecError` for phases the profile does not have,
    phase-relative times without a profile, open-ended faults without a run end, and overlaps."""
    phases = phase_starts(profile) if profile is not None else {}
    problems: list[Problem] = []

    def resolve(time: ClockTime) -> float:
        if time.phase is None:
            return time.offset_s
        if profile is None:
            problems.append(
                time.where.problem(
                    f"'{time}' is relative to a profile phase: give the profile "
                    "(`loadkit run PROFILE --chaos SCENARIO`, or `--profile`)"
                )
            )
            return time.offset_s
        if time.phase not in phases:
            hint = did_you_mean(time.phase, phases)
            known = ", ".join(s.name for s in profile.stages)
            message = f"no phase '{time.phase}' in profile '{profile.name}'{hint} (phases: {known})"
            problems.append(time.where.problem(message))
            return time.offset_s
        return phases[time.phase] + time.offset_s

    placed: list[tuple[FaultSpec, float, float | None]] = []
    for spec in scenario.faults:
        before = len(problems)
        start = resolve(spec.at)
        end: float | None = None
        if spec.duration_s is not None:
            end = start + spec.duration_s
        elif spec.until is not None:
            end = resolve(spec.until)
            if end <= start and len(problems) == before:
                problems.append(
                    spec.until.where.problem(
                        f"'{spec.until}' ({end:g}s) is not after 'at' ({spec.at}, {start:g}s)"
                    )
                )
        placed.append((spec, start, end))
    run_end = scenario.duration_s
    if run_end is None and profile is not None:
        run_end = profile.duration_s
    from loadkit.chaos.catalog import FAULTS
    from loadkit.chaos.faults.base import Window

    faults = []
    for index, (spec, start, end) in enumerate(placed):
        sustained = FAULTS[spec.type].window is Window.SUSTAINED
        if sustained and end is None:
            if run_end is None:
                problems.append(
                    spec.where.problem(
                        "no 'duration' or 'until', and the scenario has no 'duration' (nor a "
                        "profile) to say when the run ends"
                    )
                )
            end = run_end if run_end is not None else start
        if run_end is not None and start >= run_end:
            what = "the scenario's 'duration'" if scenario.duration_s else "the profile's end"
            problems.append(
                spec.at.where.problem(
                    f"starts at {start:g}s, after the run ends ({run_end:g}s: {what})"
                )
            )
        faults.append(PlannedFault(f"f{index + 1:02d}", spec, start, end))
    problems.extend(overlaps(faults))
    if problems:
        raise SpecError(problems)
    faults.sort(key=lambda f: f.start_s)
    last = max((f.end_s if f.end_s is not None else f.start_s for f in faults), default=0.0)
    return Plan(scenario, tuple(faults), max(run_end or 0.0, last), phases)


def overlaps(faults: list[PlannedFault]) -> list[Problem]:
    """Faults of one slot on one target must not overlap in time (their restores would undo
    each other's state); instant faults are sequenced at run time instead."""
    from loadkit.chaos.catalog import FAULTS

    problems = []
    for i, a in enumerate(faults):
        for b in faults[i + 1 :]:
            slot_a, slot_b = FAULTS[a.spec.type].slot, FAULTS[b.spec.type].slot
            if slot_a is None or slot_a != slot_b or not same_target(a.spec, b.spec):
                continue
            if a.end_s is None or b.end_s is None:
                continue
            if a.start_s < b.end_s and b.start_s < a.end_s:
                later, earlier = (b, a) if b.start_s >= a.start_s else (a, b)
                problems.append(
                    later.spec.where.problem(
                        f"overlaps '{earlier.spec.name}' ({earlier.start_s:g}s–"
                        f"{earlier.end_s:g}s) on '{later.spec.target}': {slot_a} faults on one "
                        "target must follow each other"
                    )
                )
    return problems


def same_target(a: FaultSpec, b: FaultSpec) -> bool:
    return a.target == b.target or "wallets" in (a.target, b.target)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; :class:`SpecError` lists every mistake."""
    from loadkit.chaos.spec import load_scenario as load

    return load(path)
