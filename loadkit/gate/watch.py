"""Early abort (``loadkit run --slo SLO --slo-abort``): stop the load once an objective can no
longer be met, instead of running a long profile to a foregone failure.

An objective is given up on only when no answers still to come could save it:

- a **phase** objective (busy rate at either level, per cause, p95/p99, unsent, achieved rate)
  is decided once its phase has ended and its answers had time to arrive (the client's drain:
  every attempt's timeout and backoff); it is then final, so a failure is a failure;
- a **whole-run** busy rate (action level, with or without a cause) or unsent share fails early
  when the busy (or unsent) arrivals counted so far already exceed the limit of *every* arrival
  the profile schedules, with 5% to spare for the schedule's noise: even if every remaining
  arrival were answered ok, the run could not get back under the limit.

An objective on a slice (``journey:``, ``endpoint:``, ``instance:``, ``network:``) is watched on
that slice's answers the same way (its whole-run bound still counts every arrival of the run:
the slice's share of them is not known in advance, so that check is looser, never wrong).

Whole-run latency, request-level whole-run busy rates, recovery, fault-scoped objectives and
integrity are judged by the gate at the end only. ::

    watch = SloWatch(slo, profile, drain_s=11.0)
    reason = watch.check(timeline, elapsed_s)   # None, or why the SLO can no longer be met
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from loadkit.gate.evaluate import format_value, phase_repeats, within
from loadkit.gate.slo import Objective, Slo

if TYPE_CHECKING:
    from loadkit.profile.model import Profile
    from loadkit.rundir.timeline import Bucket, Timeline

#: headroom over the profile's expected arrivals when bounding the final count
SCHEDULE_SLACK = 1.05
#: seconds after a phase's drain before it is judged (the recorder's one-second flush and lag)
SETTLE_S = 3.0
CHECK_EVERY_S = 2.0


class SloWatch:
    """Checks the objectives that can be decided while the run goes (see the module notes)."""

    def __init__(self, slo: Slo, profile: Profile, *, drain_s: float) -> None:
        self.slo = slo
        self.profile = profile
        self.drain_s = drain_s
        self.windows = phase_windows(profile)
        self.open_model = profile.model.value == "open"
        self.total_offered = (
            profile.arrivals_between(0.0, profile.duration_s) if self.open_model else None
        )
        self.decided: set[tuple[int, str]] = set()
        self._last = 0.0

    def check(self, timeline: Timeline, elapsed: float, *, force: bool = False) -> str | None:
        """Why the SLO can no longer be met, or ``None``; at most every ``CHECK_EVERY_S``."""
        now = time.monotonic()
        if not force and now - self._last < CHECK_EVERY_S:
            return None
        self._last = now
        for index, o in enumerate(self.slo.objectives):
            if o.phase is not None:
                for phase in phase_repeats(o.phase, list(self.windows)):
                    reason = self._settled(index, o, phase, timeline, elapsed)
                    if reason is not None:
                        where = "" if phase == o.phase else f" (in {phase})"
                        return f"{o.name or o.label()} can no longer be met{where}: {reason}"
            elif o.fault is None and o.measure in ("max_busy_rate", "max_unsent"):
                reason = self._whole_run(o, timeline)
                if reason is not None:
                    return f"{o.name or o.label()} can no longer be met: {reason}"
        return None

    def _settled(
        self, index: int, o: Objective, phase: str, timeline: Timeline, elapsed: float
    ) -> str | None:
        """A phase's verdict once its answers are in (each phase is judged once)."""
        window = self.windows[phase]
        if (index, phase) in self.decided or elapsed < window[1] + self.drain_s + SETTLE_S:
            return None
        self.decided.add((index, phase))
        return self._phase(o, phase, timeline, window)

    def _phase(
        self, o: Objective, phase: str, timeline: Timeline, window: tuple[float, float]
    ) -> str | None:
        assert o.limit is not None
        bucket = _select(timeline, o, o.level, phase)
        start, end = window
        if o.measure == "max_busy_rate":
            busy = _busy(bucket, o.cause)
            if bucket.answered and not within(busy / bucket.answered, o.limit):
                rate = busy / bucket.answered
                return f"{format_value(o, rate)} ({busy:,} busy of {bucket.answered:,} answered)"
        elif o.measure in ("max_p95", "max_p99"):
            value_ms = bucket.percentile_ms(95 if o.measure == "max_p95" else 99)
            if value_ms is not None and not within(value_ms / 1000, o.limit):
                return f"{format_value(o, value_ms / 1000)}"
        elif o.measure == "max_unsent":
            unsent = bucket.count("unsent")
            scheduled = bucket.answered + unsent
            if scheduled and not within(unsent / scheduled, o.limit):
                return f"{format_value(o, unsent / scheduled)} ({unsent:,} of {scheduled:,})"
        elif o.measure == "min_achieved_rate" and end > start:
            achieved = bucket.answered / (end - start)
            value = achieved
            if o.relative:
                if not self.open_model:
                    return None
                offered = self.profile.arrivals_between(start, end) / (end - start)
                if not offered:
                    return None
                value = achieved / offered
            if not within(value, o.limit, at_least=True):
                return f"{format_value(o, value)}"
        return None

    def _whole_run(self, o: Objective, timeline: Timeline) -> str | None:
        if self.total_offered is None or o.level != "action":
            return None
        assert o.limit is not None
        bucket = _select(timeline, o, "action", None)
        counted = bucket.answered + bucket.count("unsent")
        bound = max(float(counted), self.total_offered) * SCHEDULE_SLACK + 5
        part = _busy(bucket, o.cause) if o.measure == "max_busy_rate" else bucket.count("unsent")
        if within(part / bound, o.limit):
            return None
        what = "busy" if o.measure == "max_busy_rate" else "unsent"
        return (
            f"{part:,} {what} already, more than {format_value(o, o.limit)} of the at most "
            f"{bound:,.0f} arrivals the whole run can have"
        )


def _select(timeline: Timeline, o: Objective, level: str, phase: str | None) -> Bucket:
    """The answers of ``o``'s slice at ``level`` (in ``phase``, or in the whole run)."""
    return timeline.select(
        level,
        phase=phase,
        journey=o.journey,
        endpoint=o.endpoint,
        instance=o.instance,
        network=o.network,
    )


def _busy(bucket: Bucket, cause: str | None) -> int:
    return bucket.busy.get(cause, 0) if cause else bucket.count("busy")


def phase_windows(profile: Profile) -> dict[str, tuple[float, float]]:
    """Each phase's run-clock window: from its first stage's start to its last stage's end (a
    repeated phase spans its repeats, as the report's phase metrics do)."""
    out: dict[str, tuple[float, float]] = {}
    clock = 0.0
    for stage in profile.stages:
        length = stage.duration_s * profile.time_scale
        start = out[stage.name][0] if stage.name in out else clock
        out[stage.name] = (start, clock + length)
        clock += length
    return out
