"""Judging a capacity step against its objectives, and the search's conclusion over all its
steps (the knee: the highest passing rate below the lowest failing one)::

    failed = judge({"action": m_action, "request": m_request}, objectives)
    verdict_of(m_action, failed)     # Verdict.PASS / FAIL / GENERATOR_LIMITED / NO_DATA
    conclude(steps)                  # (Outcome.KNEE, 300.0, 300.0, 310.0, "knee at 300/s: …")
"""

from __future__ import annotations

from dataclasses import dataclass

from loadkit.capacity.model import Measure, Outcome, StepObjective, StepResult, Verdict
from loadkit.report.model import LevelStats
from loadkit.rundir.timeline import Bucket

#: a step with more unsent arrivals than this share is generator-limited (docs/design.md's 1%)
MAX_UNSENT = 0.01


@dataclass
class Measured:
    """What one step's measurement window holds, at one level."""

    answered: int
    busy: int
    unsent: int
    causes: dict[str, int]
    p95_ms: float | None
    p99_ms: float | None


def judge(measured: dict[str, Measured], objectives: tuple[StepObjective, ...]) -> list[str]:
    """The objectives lost (``label: measured``); empty when the step passed."""
    failed = []
    for obj in objectives:
        m = measured[obj.level]
        if obj.measure is Measure.BUSY_RATE:
            busy = m.causes.get(obj.cause, 0) if obj.cause else m.busy
            value = busy / m.answered if m.answered else 0.0
            if value > obj.limit + 1e-12:
                failed.append(f"{obj.label()}: {value * 100:.2f}%")
        else:
            ms = m.p95_ms if obj.measure is Measure.P95 else m.p99_ms
            if ms is not None and ms > obj.limit * 1000 + 1e-9:
                failed.append(f"{obj.label()}: {ms:,.0f}ms")
    return failed


def verdict_of(action: Measured, failed: list[str]) -> Verdict:
    """A step's verdict from its action level and the objectives it lost."""
    scheduled = action.answered + action.unsent
    if scheduled and action.unsent / scheduled > MAX_UNSENT:
        return Verdict.GENERATOR_LIMITED
    if action.answered == 0:
        return Verdict.NO_DATA
    return Verdict.FAIL if failed else Verdict.PASS


def from_stats(stats: LevelStats) -> Measured:
    """A phase's level from the report's metrics (what the final verdict uses)."""
    c = stats.counts
    return Measured(
        c.answered, c.busy, c.unsent, dict(c.causes), stats.latency.p95, stats.latency.p99
    )


def from_bucket(b: Bucket) -> Measured:
    """A phase's level from the live timeline (what the early stop uses)."""
    return Measured(
        b.answered,
        b.count("busy"),
        b.count("unsent"),
        dict(b.busy),
        b.percentile_ms(95),
        b.percentile_ms(99),
    )


def bracket(steps: list[StepResult]) -> tuple[float | None, float | None]:
    """The highest passing rate below the lowest failing one, and that failing rate."""
    fails = [s.rate for s in steps if s.verdict is Verdict.FAIL]
    high = min(fails) if fails else None
    passes = [
        s.rate for s in steps if s.verdict is Verdict.PASS and (high is None or s.rate < high)
    ]
    return (max(passes) if passes else None), high


def conclude(
    steps: list[StepResult],
) -> tuple[Outcome, float | None, float | None, float | None, str]:
    """``(outcome, knee, at_least, first failing rate, message)`` over every measured step."""
    low, high = bracket(steps)
    limited = [s.rate for s in steps if s.verdict is Verdict.GENERATOR_LIMITED]
    if high is not None and low is None:
        return (
            Outcome.NOT_MET,
            None,
            None,
            high,
            f"the objective is not met even at the lowest rate tried ({high:g}/s)",
        )
    if high is not None and low is not None:
        return (
            Outcome.KNEE,
            low,
            low,
            high,
            f"knee at {low:g}/s: the highest rate that meets the objective (lost at {high:g}/s)",
        )
    if low is not None and limited and max(limited) > low:
        return (
            Outcome.GENERATOR_LIMITED,
            None,
            low,
            None,
            f"capacity ≥ {low:g}/s: the load generator could not offer more "
            "(add --workers or raise users.max_in_flight)",
        )
    if low is not None:
        return (
            Outcome.AT_LEAST,
            None,
            low,
            None,
            f"capacity ≥ {low:g}/s, the highest rate tried: no knee below --max-rate",
        )
    if limited:
        return (
            Outcome.GENERATOR_LIMITED,
            None,
            None,
            None,
            "no step could be measured: the load generator could not keep the schedule",
        )
    return Outcome.NOT_MET, None, None, None, "no step could be measured (nothing answered)"
