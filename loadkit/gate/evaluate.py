"""SLO evaluation: a run's metrics against an SLO (and optionally a baseline run) → a verdict.

Every objective becomes one :class:`ObjectiveResult` (an objective on recovery without a
``fault:`` becomes one per fault of the run). A limit holds *at* its value: a busy rate of
exactly 2% meets ``max_busy_rate: 2%``. A run that did not complete, or that left more than 1%
of its arrivals unsent, never passes, whatever its objectives say (``invalid_reason``)::

    result = evaluate(compute_metrics(run_dir), load_slo("slo/smoke.yaml"))
    result.passed, [r.objective.label() for r in result.failed]

An objective on a slice of the run (``journey:``, ``endpoint:``, ``instance:``, ``network:``) is
measured on that slice's metrics (:func:`~loadkit.report.metrics.compute_metrics` with its
:class:`~loadkit.report.model.Scope`, computed once per distinct slice from ``run_dir``), so its
phase, fault, cause and level work as on the whole run.

With a baseline run and ``max_regression`` (a fraction: ``0.01`` = 1 percentage point), a busy
rate or unsent share that rose by more than that from the baseline fails even within its limit,
and so does a share of the offered rate that fell by more; latency and recovery objectives show
the baseline's value for reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadkit.gate.slo import Objective, Slo, format_percent
from loadkit.report.gateview import headline as gate_headline

if TYPE_CHECKING:
    from loadkit.report.model import FaultMetrics, PhaseMetrics, RunMetrics, Scope

#: the metrics of one slice of a run (``compute_metrics(run_dir, scope=scope)``)
Slicer = Callable[["Scope"], "RunMetrics"]

#: measures compared with a baseline in percentage points
POINT_MEASURES = ("max_busy_rate", "max_unsent")
_LATENCY = {"max_p95": "p95", "max_p99": "p99"}
_INTEGRITY_COUNTS = ("lost", "duplicated", "unexpected", "refused_applied", "negative_balances")


@dataclass
class ObjectiveResult:
    """How one objective fared. ``measured`` is in the objective's units (a fraction, seconds,
    arrivals per second); ``None`` when nothing could be measured (which fails)."""

    objective: Objective
    measured: float | None
    passed: bool
    detail: str
    baseline: float | None = None
    fault: str | None = None  # the fault an every-fault recovery objective was expanded to
    phase: str | None = None  # the repeat (``burst#2``) a repeated phase's objective expanded to

    def title(self) -> str:
        """The objective's name, else its label; an expanded one names its fault or repeat."""
        o = self.objective
        base = o.name or o.label()
        if self.fault is not None and o.fault is None:
            return f"{o.name} ({self.fault})" if o.name else base.replace("every fault", self.fault)
        if self.phase is not None and self.phase != o.phase:
            return (
                f"{o.name} ({self.phase})"
                if o.name
                else base.replace(f"phase {o.phase}", f"phase {self.phase}")
            )
        return base

    def measured_text(self) -> str:
        """The measured value as reports show it: ``2.13%``, ``312ms``; integrity is
        ``clean``, ``violated`` or ``not run``."""
        if self.objective.measure == "integrity":
            if self.passed:
                return "clean"
            return "violated" if self.detail.startswith("violated") else "not run"
        return format_value(self.objective, self.measured)

    def to_dict(self) -> dict[str, Any]:
        o = self.objective
        return {
            "title": self.title(),
            "label": o.label(),
            "measure": o.measure,
            "limit": o.limit,
            "limit_text": o.limit_text(),
            "level": o.level,
            "phase": self.phase or o.phase,
            "fault": self.fault or o.fault,
            "cause": o.cause,
            "scope": o.scope.to_dict() if o.scope is not None else None,
            "relative": o.relative,
            "line": o.line,
            "measured": self.measured,
            "measured_text": self.measured_text(),
            "baseline": self.baseline,
            "baseline_text": (
                format_value(o, self.baseline) if self.baseline is not None else None
            ),
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass
class GateResult:
    """The gate's verdict on one run directory."""

    slo: Slo
    run_dir: Path
    results: list[ObjectiveResult]
    passed: bool
    invalid_reason: str | None
    baseline_dir: Path | None = None
    max_regression: float | None = None
    run_id: str = ""
    status: str = ""
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[ObjectiveResult]:
        return [r for r in self.results if not r.passed]

    def headline(self) -> str:
        """``gate passed: 7 of 7 objectives met`` / ``gate FAILED: 2 of 7 objectives failed``
        (the reports' wording: :func:`loadkit.report.gateview.headline`)."""
        total, failed = len(self.results), len(self.failed)
        return gate_headline(self.passed, total, failed, self.invalid_reason, self.slo.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "loadkit.gate/v1",
            "passed": self.passed,
            "slo": {"name": self.slo.name, "file": self.slo.file},
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "status": self.status,
            "invalid_reason": self.invalid_reason,
            "baseline_dir": str(self.baseline_dir) if self.baseline_dir else None,
            "max_regression": self.max_regression,
            "failed": len(self.failed),
            "objectives": [r.to_dict() for r in self.results],
        }


def format_value(o: Objective, value: float | None) -> str:
    """A measured value in the objective's terms: ``2.13%``, ``312ms``, ``18s``, ``812/s``."""
    if value is None:
        return "-"
    if o.measure in _LATENCY:
        return f"{value * 1000:,.0f}ms" if value < 10 else f"{value:,.1f}s"
    if o.measure == "max_recovery":
        return f"{value:,.1f}s" if value < 10 and value != int(value) else f"{value:,.0f}s"
    if o.measure == "min_achieved_rate" and not o.relative:
        return f"{value:,.1f}/s"
    return f"{value * 100:.2f}%"


def within(value: float, limit: float, *, at_least: bool = False) -> bool:
    """``value ≤ limit`` (``≥`` for minimums), exactly at the limit included; a relative
    tolerance of 1e-9 absorbs float noise (``300 * 0.001 != 0.3``)."""
    eps = 1e-9 * max(1.0, abs(limit))
    return value >= limit - eps if at_least else value <= limit + eps


def invalid_reason(m: RunMetrics) -> str | None:
    """Why a run can never pass: it did not complete, or over 1% of its arrivals went unsent."""
    if m.status != "completed":
        return f"run {m.status}" + (f": {m.reason}" if m.reason else "")
    if not m.total.valid:
        return f"{format_percent(m.total.unsent_share)} of arrivals unsent (over 1%): invalid run"
    return None


def evaluate(
    metrics: RunMetrics,
    slo: Slo,
    *,
    baseline: RunMetrics | None = None,
    max_regression: float | None = None,
    run_dir: Path | None = None,
    baseline_dir: Path | None = None,
    sliced: Slicer | None = None,
    baseline_sliced: Slicer | None = None,
) -> GateResult:
    """Every objective of ``slo`` on ``metrics``; see the module notes. A sliced objective's
    metrics come from ``sliced`` (else from ``run_dir``; the baseline's from
    ``baseline_sliced`` or ``baseline_dir``)."""
    results: list[ObjectiveResult] = []
    slices = _Slices(metrics, sliced, run_dir)
    base_slices = _Slices(baseline, baseline_sliced, baseline_dir) if baseline else None
    for o in slo.objectives:
        m = slices.of(o)
        if isinstance(m, str):
            results.append(ObjectiveResult(o, None, False, m))
            continue
        for (phase, fault), (value, ok, detail) in _measure_all(o, m):
            result = ObjectiveResult(o, value, ok, detail, fault=fault, phase=phase)
            if o.scope is not None and value is None and not ok:
                result.detail = slices.hint(o, detail)
            if base_slices is not None:
                base = base_slices.of(o)
                if not isinstance(base, str):
                    _against_baseline(result, base, max_regression)
            results.append(result)
    reason = invalid_reason(metrics)
    return GateResult(
        slo=slo,
        run_dir=Path(run_dir) if run_dir is not None else Path(metrics.run_id),
        results=results,
        passed=reason is None and all(r.passed for r in results),
        invalid_reason=reason,
        max_regression=max_regression if baseline is not None else None,
        run_id=metrics.run_id,
        status=metrics.status,
    )


class _Slices:
    """The metrics each objective is measured on: the whole run's, or its slice's (computed
    once per distinct slice)."""

    def __init__(self, whole: RunMetrics | None, sliced: Slicer | None, run_dir: Path | None):
        self.whole = whole
        self.sliced = sliced
        self.run_dir = run_dir
        self.cache: dict[Scope, RunMetrics] = {}

    def of(self, o: Objective) -> RunMetrics | str:
        """The metrics of ``o``'s slice, or why there are none."""
        scope = o.scope
        assert self.whole is not None
        if scope is None:
            return self.whole
        if scope not in self.cache:
            if self.sliced is not None:
                self.cache[scope] = self.sliced(scope)
            elif self.run_dir is not None:
                from loadkit.report.metrics import compute_metrics

                self.cache[scope] = compute_metrics(self.run_dir, scope=scope)
            else:
                return f"{scope.label()}: a sliced objective needs the run directory"
        return self.cache[scope]

    def hint(self, o: Objective, detail: str) -> str:
        """``detail``, and what the run did have when the slice holds nothing."""
        scope = o.scope
        whole = self.whole
        if scope is None or whole is None:
            return detail
        known: list[str] = []
        for key in ("journey", "instance", "network"):
            value = getattr(scope, key)
            breakdown = whole.breakdown(key)
            values = [r.value for r in breakdown.rows] if breakdown else []
            if value is not None and value not in values:
                what = "network classes" if key == "network" else f"{key}s"
                known.append(f"this run's {what}: {', '.join(values) or 'none recorded'}")
        if scope.endpoint is not None:
            labels = sorted({e.endpoint for e in whole.endpoints if e.level == "request"})
            if scope.endpoint not in labels:
                known.append(f"this run's endpoints: {', '.join(labels) or 'none'}")
        return f"{detail} in {scope.label()}" + (f" ({'; '.join(known)})" if known else "")


Measured = tuple[float | None, bool, str]


Expansion = tuple[str | None, str | None]  # (phase repeat, fault) an objective was expanded to


def _measure_all(o: Objective, m: RunMetrics) -> list[tuple[Expansion, Measured]]:
    """An every-fault recovery objective per fault; a repeated phase's objective per repeat."""
    if o.measure == "max_recovery" and o.fault is None:
        if not m.faults:
            return [((None, None), (None, True, "no faults in this run: nothing to recover from"))]
        return [((None, f.name), _recovery(o, f)) for f in m.faults]
    repeats = phase_repeats(o.phase, [p.name for p in m.phases])
    if len(repeats) > 1 or (repeats and repeats[0] != o.phase):
        return [((name, None), measure(o, m, phase=name)) for name in repeats]
    return [((None, None), measure(o, m))]


def phase_repeats(phase: str | None, names: list[str]) -> list[str]:
    """``burst`` → ``["burst#1", "burst#2"]`` when a ``repeat`` group ran it several times;
    ``[phase]`` when it is a phase of its own; ``[]`` when there is no such phase."""
    if phase is None:
        return []
    if phase in names:
        return [phase]
    return [n for n in names if "#" not in phase and n.split("#", 1)[0] == phase]


def measure(o: Objective, m: RunMetrics, *, phase: str | None = None) -> Measured:
    """``(measured, passed, detail)`` of one objective on one run (``phase``: on this phase
    instead of the objective's own, for one repeat of a repeated phase)."""
    if o.measure == "integrity":
        return _integrity(m.integrity)
    scope = _scope(o if phase is None else replace(o, phase=phase), m)
    if isinstance(scope, str):
        return None, False, scope
    if o.measure == "max_recovery":
        return _recovery(o, scope)
    stats = scope.request if o.level == "request" else scope.action
    assert o.limit is not None
    if o.measure == "max_busy_rate":
        counts = stats.counts
        busy = counts.causes.get(o.cause, 0) if o.cause else counts.busy
        if not counts.answered:
            return None, False, "nothing was answered"
        rate = busy / counts.answered
        what = f"{o.cause} " if o.cause else ""
        return rate, within(rate, o.limit), f"{busy:,} {what}busy of {counts.answered:,} answered"
    if o.measure in _LATENCY:
        value_ms = getattr(stats.latency, _LATENCY[o.measure])
        if value_ms is None:
            return None, False, "no latency was recorded"
        seconds = value_ms / 1000
        return seconds, within(seconds, o.limit), ""
    if o.measure == "max_unsent":
        counts = stats.counts
        share = counts.unsent / counts.scheduled if counts.scheduled else 0.0
        return share, within(share, o.limit), f"{counts.unsent:,} of {counts.scheduled:,} arrivals"
    if o.measure == "min_achieved_rate":
        return _achieved(o, scope)
    raise ValueError(f"unknown measure {o.measure!r}")


def _scope(o: Objective, m: RunMetrics) -> Any:
    """The phase, the fault or the whole run (``m.total``) an objective applies to, or why not."""
    if o.phase is not None:
        phase = m.phase(o.phase)
        if phase is None:
            names = ", ".join(p.name for p in m.phases) or "none"
            return f"this run has no phase '{o.phase}'; its phases: {names}"
        return phase
    if o.fault is not None:
        fault = m.fault(o.fault)
        if fault is None:
            names = ", ".join(f.name for f in m.faults) or "none"
            return f"this run has no fault '{o.fault}'; its faults: {names}"
        return fault
    if o.measure == "max_recovery":
        return "no fault given"  # expanded per fault by _measure_all; not reached
    return m.total


def _recovery(o: Objective, f: FaultMetrics) -> Measured:
    assert o.limit is not None
    if f.error:
        return None, False, f"fault {f.name} was not injected: {f.error}"
    if f.end_s is None:
        return None, False, f"fault {f.name} was never reverted"
    if not f.recovered or f.recovery_s is None:
        return None, False, f"fault {f.name}: not recovered" + (f" ({f.note})" if f.note else "")
    return f.recovery_s, within(f.recovery_s, o.limit), f"from the end of fault {f.name}"


def _achieved(o: Objective, scope: PhaseMetrics | Any) -> Measured:
    assert o.limit is not None
    achieved = scope.achieved_rate
    offered = scope.offered_rate
    if achieved is None:
        return None, False, "no achieved rate (the run has no duration)"
    if not o.relative:
        detail = f"offered {offered:,.1f}/s" if offered is not None else "answered actions/s"
        return achieved, within(achieved, o.limit, at_least=True), detail
    if not offered:
        return None, False, "no offered rate to compare with (closed-model or missing profile)"
    share = achieved / offered
    detail = f"{achieved:,.1f}/s of {offered:,.1f}/s offered"
    return share, within(share, o.limit, at_least=True), detail


def _integrity(data: dict[str, Any] | None) -> Measured:
    if data is None:
        return None, False, "no integrity check ran: no integrity.json in the run directory"
    ok = data.get("ok")
    if ok is None:
        return None, False, f"the integrity check could not run: {data.get('error') or 'unknown'}"
    problems = [
        f"{data[k]:,} {k.replace('_', ' ')}"
        for k in _INTEGRITY_COUNTS
        if isinstance(data.get(k), int) and data[k] > 0
    ]
    if data.get("money_conserved") is False:
        problems.append("money not conserved")
    if ok is not True or problems:
        return None, False, "violated: " + (", ".join(problems) or "ok is false")
    acks = data.get("acks") or {}
    acked = acks.get("acknowledged") if isinstance(acks, dict) else None
    detail = "clean" + (f": {acked:,} acknowledged payments checked" if acked else "")
    return None, True, detail


def _against_baseline(
    result: ObjectiveResult, baseline: RunMetrics, max_regression: float | None
) -> None:
    o = result.objective
    if o.measure == "integrity":
        return
    if result.fault is not None:
        f = baseline.fault(result.fault)
        value = _recovery(o, f)[0] if f is not None else None
    else:
        value = measure(o, baseline, phase=result.phase)[0]
    result.baseline = value
    if max_regression is None or value is None or result.measured is None:
        return
    if o.measure in POINT_MEASURES:
        worse = result.measured - value
    elif o.measure == "min_achieved_rate" and o.relative:
        worse = value - result.measured
    else:
        return
    if not within(worse, max_regression):
        result.passed = False
        points = f"{worse * 100:.2f}".rstrip("0").rstrip(".")
        allowed = format_percent(max_regression).removesuffix("%")
        result.detail = (
            f"{points} pp worse than the baseline's {format_value(o, value)}, at most "
            f"{allowed} pp allowed; " + result.detail
        )
