"""Busy-rate metrics of one run: the single implementation every renderer, ``compare`` and the
gate use (definitions in docs/design.md; the model in :mod:`loadkit.report.model`)::

    m = compute_metrics(Path("reports/20261128-193000-double11"))
    print(m.verdict)                       # "double11: 7.3% of user actions busy; …"
    m.fault("db-down").recovery_s          # 18.0

Beyond the phases, faults, endpoints and causes: breakdowns by target instance, network class
and journey (:class:`~loadkit.report.model.Breakdown`), how each instance fared during each
fault, goodput (answered actions that were not busy) and service time, and the target's own
busy causes when they were scraped (``server-causes.jsonl``). With a ``scope``, every number is
that slice's (``compute_metrics(run_dir, scope=Scope(instance="wallet-1"))``); the offered
load, a property of the whole schedule, is then unknown.

Recovery of a fault: ``W(s)`` is the action-level busy rate of the 10 seconds ``[s, s+10)``.
The fault recovered at the first second ``s ≥ its end`` from which ``W(s), W(s+1) … W(s+9)``
are all within the limit (the rate is back, and stays back for 10 s); recovery time is
``s − end``. Windows must lie inside the recorded data, so a run that ends too soon after a fault
reports it "not recovered" with a note. The limit is the scenario's busy-rate probe ``max``; else
the action busy rate before the first fault + 1 percentage point (``BASELINE_MARGIN``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loadkit.profile.model import LoadModel, Profile
from loadkit.profile.outcome import BUSY, UNSENT
from loadkit.report.aggregate import OUTCOMES, Acc, Aggregates, aggregate, as_array
from loadkit.report.model import (
    Breakdown,
    CauseMetrics,
    Counts,
    EndpointMetrics,
    FaultInstance,
    FaultMetrics,
    Latency,
    LevelStats,
    Limit,
    PhaseMetrics,
    Point,
    RunMetrics,
    Scope,
    ServerCauses,
    SliceMetrics,
    SlicePhase,
    TotalMetrics,
    Window,
)
from loadkit.report.rundata import FaultWindow, RunData
from loadkit.report.verdict import verdict
from loadkit.rundir import RunDir, hdr
from loadkit.rundir.servercauses import CauseLine, read_server_causes

WINDOW_S = 10  # the rolling busy rate's window
HOLD_S = 10  # how long it must stay within the limit
BASELINE_MARGIN = 0.01
MAX_UNSENT = 0.01
MAX_POINTS = 1200  # longer runs get coarser time-series points
#: statuses of a run that stopped before its profile's end
ENDED_EARLY = ("aborted", "interrupted", "failed", "running")
PERCENTILES = (50.0, 95.0, 99.0, 99.9)
ANSWERED = UNSENT  # ok, rejected and busy come before unsent: [:ANSWERED] is what was answered


def compute_metrics(
    run_dir: str | Path | RunDir,
    *,
    busy_limit: float | None = None,
    scope: Scope | None = None,
) -> RunMetrics:
    """Read a run directory (complete or cut short) and compute its metrics. ``busy_limit``
    overrides the steady-state limit for recovery (a fraction); ``scope``: only that slice."""
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    data = RunData.load(rd)
    duration = _duration(data)
    bin_s = max(1, math.ceil(duration / MAX_POINTS)) if duration else 1
    windows = {f.id: _fault_seconds(f) for f in data.faults}
    if scope is not None and scope.is_everything:
        scope = None
    # latency over time: the charts show the action level's (the request level's not kept)
    agg = aggregate(rd.timeline, windows=windows, bin_s=bin_s, scope=scope, bin_levels=["action"])
    # the schedule's offered load is the whole run's: a slice of it has no known share
    offer = data.profile if scope is None else None
    server = _server_lines(rd) if scope is None or scope.instance is not None else None
    if server is not None and scope is not None and scope.instance is not None:
        server = (server[0], [x for x in server[1] if x.instance == scope.instance])
    last = agg.last_second
    end = max(math.ceil(duration), (last + 1) if last is not None else 0)
    if agg.bad_lines:
        data.notes.append(f"{agg.bad_lines} unreadable timeline line(s) skipped")
    if agg.lines == 0:
        data.notes.append("no timeline data")
    actions = as_array(agg.seconds["action"], end)
    data_end = (last + 1) if last is not None else 0
    limit = _limit(data, actions, busy_limit)
    # a run stopped before its profile's end: rates over what it ran, not the whole schedule
    stopped = float(data_end) if data.status in ENDED_EARLY and 0 < data_end < duration else None
    total = _total(agg, offer, stopped or duration)
    lines = server[1] if server is not None else []
    phases = _phases(agg, data.profile, offer, lines, stopped)
    instances = agg.values("instance")
    faults = [
        _fault(f, agg, actions, data_end, limit, instances, lines, duration) for f in data.faults
    ]
    m = RunMetrics(
        run_id=data.run_id,
        profile=data.profile_name,
        status=data.status,
        reason=data.run.get("reason"),
        scenario=data.scenario_name,
        started_at=data.run.get("started_at_iso"),
        ended_at=data.run.get("ended_at_iso"),
        duration_s=float(duration or data_end),
        time_scale=(data.run.get("profile") or {}).get("time_scale"),
        total=total,
        phases=phases,
        faults=faults,
        endpoints=_endpoints(agg),
        causes=_causes(agg),
        worst_10s=_worst(actions[:data_end]),
        limit=limit,
        series=_series(agg, data.profile, offer, data_end, bin_s),
        integrity=data.integrity,
        notes=data.notes,
        verdict="",
        gate=data.gate,
        clock_t0=_clock_t0(data),
        security=data.security,
        breakdowns=_breakdowns(agg, phases, data_end, bin_s),
        server_causes=_server_causes(server),
        scope=scope.to_dict() if scope is not None else None,
        stopped_s=stopped,
        insecure_urls=data.insecure_urls,
    )
    object.__setattr__(m, "verdict", verdict(m))
    return m


# -- building blocks -------------------------------------------------------------------------


def stats(acc: Acc) -> LevelStats:
    """Counts and latency percentiles of one accumulator."""
    n = dict(zip(OUTCOMES, acc.n, strict=True))
    counts = Counts(
        n["ok"], n["rejected"], n["busy"], n["unsent"], dict(sorted(acc.causes.items()))
    )
    return LevelStats(
        counts,
        Latency(*hdr.percentiles_ms(acc.lat, PERCENTILES)),
        Latency(*hdr.percentiles_ms(acc.svc, PERCENTILES)),
    )


def _rate(busy: int, answered: int) -> float | None:
    return busy / answered if answered else None


def _clock_t0(data: RunData) -> float | None:
    for value in (data.clock.get("t0"), data.run.get("clock_t0")):
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def _duration(data: RunData) -> float:
    if data.profile is not None:
        return data.profile.duration_s
    for source in (data.clock, data.run.get("profile") or {}):
        if source.get("duration_s"):
            return float(source["duration_s"])
    return 0.0


def _fault_seconds(f: FaultWindow) -> tuple[int, int]:
    """Run seconds a fault touches: ``[floor(start), ceil(end))``, at least one second; one
    never reverted lasts until the data ends."""
    lo = math.floor(f.start_s)
    hi = 2**62 if f.end_s is None else math.ceil(f.end_s)
    return lo, max(hi, lo + 1)


def _offered(profile: Profile | None, a: float, b: float) -> float | None:
    if profile is None or profile.model is not LoadModel.OPEN:
        return None
    return profile.arrivals_between(a, b)


def _total(agg: Aggregates, profile: Profile | None, duration: float) -> TotalMetrics:
    action, request = stats(agg.total("action")), stats(agg.total("request"))
    offered = _offered(profile, 0.0, duration)
    scheduled = action.counts.scheduled
    unsent = action.counts.unsent / scheduled if scheduled else 0.0
    counts = action.counts
    return TotalMetrics(
        action=action,
        request=request,
        offered=offered,
        offered_rate=offered / duration if offered is not None and duration else None,
        achieved_rate=counts.answered / duration if duration else None,
        unsent_share=unsent,
        valid=unsent <= MAX_UNSENT,
        goodput_rate=(counts.answered - counts.busy) / duration if duration else None,
    )


def _phase_windows(agg: Aggregates, profile: Profile | None) -> list[tuple[str, float, float]]:
    if profile is not None:
        out: dict[str, tuple[float, float]] = {}
        clock = 0.0
        for stage in profile.stages:
            run_s = stage.duration_s * profile.time_scale
            start, _ = out.get(stage.name, (clock, clock))
            out[stage.name] = (start, clock + run_s)
            clock += run_s
        names = list(out) + [p for p in agg.phase_first if p not in out]
        return [(n, *out.get(n, _seen(agg, n))) for n in names]
    names = sorted(agg.phase_first, key=lambda p: agg.phase_first[p])
    return [(n, *_seen(agg, n)) for n in names]


def _seen(agg: Aggregates, phase: str) -> tuple[float, float]:
    seconds = agg.phase_seconds.get(phase) or {0}
    return float(min(seconds)), float(max(seconds) + 1)


def _phases(
    agg: Aggregates,
    profile: Profile | None,
    offer: Profile | None,
    server: list[CauseLine],
    stopped: float | None = None,
) -> list[PhaseMetrics]:
    out = []
    for name, start, end in _phase_windows(agg, profile):
        action, request = (
            stats(agg.total("action", phase=name)),
            stats(agg.total("request", phase=name)),
        )
        ran = max(start, min(end, stopped)) if stopped is not None else end  # its part that ran
        length = ran - start
        offered = _offered(offer, start, ran)
        counts = action.counts
        out.append(
            PhaseMetrics(
                name=name,
                start_s=start,
                end_s=end,
                offered=offered,
                offered_rate=offered / length if offered is not None and length else None,
                achieved_rate=counts.answered / length if length else None,
                action=action,
                request=request,
                goodput_rate=(counts.answered - counts.busy) / length if length else None,
                server_causes=_server_between(server, start, end),
            )
        )
    return out


def _limit(data: RunData, actions: np.ndarray, given: float | None) -> Limit | None:
    if given is not None:
        return Limit(given, "given")
    if data.busy_limit is not None:
        return Limit(data.busy_limit, "scenario")
    if not data.faults:
        return None
    first = max(0, math.floor(min(f.start_s for f in data.faults)))
    before = actions[:first]
    answered = int(before[:, :3].sum()) if len(before) else 0
    baseline = int(before[:, BUSY].sum()) / answered if answered else 0.0
    return Limit(baseline + BASELINE_MARGIN, "baseline", baseline)


def window_rates(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Busy, answered and busy rate (0 where nothing answered) of every full 10-second window
    ``[s, s+10)`` of a ``(seconds, 4)`` counts array, indexed by ``s``."""
    if len(actions) < WINDOW_S:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    window = np.ones(WINDOW_S, dtype=np.int64)
    busy = np.convolve(actions[:, BUSY], window, mode="valid")
    answered = np.convolve(actions[:, :ANSWERED].sum(axis=1), window, "valid")
    rate = np.divide(busy, answered, out=np.zeros(len(busy)), where=answered > 0)
    return busy, answered, rate


def _worst(actions: np.ndarray) -> Window | None:
    if len(actions) == 0:
        return None
    if len(actions) < WINDOW_S:
        b, a = int(actions[:, BUSY].sum()), int(actions[:, :ANSWERED].sum())
        return Window(0, len(actions), _rate(b, a), a, b)
    busy, answered, rate = window_rates(actions)
    # of equally bad windows, the first that starts on a busy second (where the trouble starts)
    ties = np.flatnonzero(rate >= rate.max() - 1e-12)
    starts = [int(i) for i in ties if actions[i, BUSY] > 0]
    s = starts[0] if starts else int(ties[0])
    b, a = int(busy[s]), int(answered[s])
    return Window(s, s + WINDOW_S, _rate(b, a), a, b)


def recovery(
    actions: np.ndarray, end_s: float, limit: float, data_end: int
) -> tuple[float | None, str | None]:
    """Seconds from ``end_s`` to recovery (module docstring), or ``None`` and why not."""
    _busy, _answered, rate = window_rates(actions[:data_end])
    first = math.ceil(end_s)
    ok = rate <= limit + 1e-12
    for s in range(first, len(rate) - HOLD_S + 1):
        if ok[s : s + HOLD_S].all():
            return max(0.0, round(s - end_s, 3)), None
    if len(rate) - HOLD_S + 1 <= first or ok[max(first, len(rate) - HOLD_S + 1) :].all():
        return None, "the run ended before recovery could be confirmed"
    return None, None


def _fault(
    f: FaultWindow,
    agg: Aggregates,
    actions: np.ndarray,
    data_end: int,
    limit: Limit | None,
    instances: list[str],
    server: list[CauseLine],
    duration: float,
) -> FaultMetrics:
    action, request = stats(agg.windows[f.id]["action"]), stats(agg.windows[f.id]["request"])
    rec: float | None = None
    note: str | None = f"injection failed: {f.error}" if f.error else None
    if f.end_s is None:
        note = note or "never reverted: still injected when the run ended"
    elif limit is not None and not f.error:
        rec, why = recovery(actions, f.end_s, limit.value, data_end)
        note = why
    lo = math.floor(f.start_s)
    hi = data_end
    if rec is not None and f.end_s is not None:
        hi = min(data_end, math.ceil(f.end_s + rec))
    span = actions[lo:hi]
    answered_s = span[:, :3].sum(axis=1) if len(span) else np.zeros(0)
    per_second = np.divide(span[:, BUSY], answered_s, out=np.zeros(len(span)), where=answered_s > 0)
    busy_s = int((per_second > (limit.value if limit else 0.0) + 1e-12).sum())
    _b, _a, rates = window_rates(actions[:data_end])
    peak = rates[lo : max(lo + 1, hi - WINDOW_S + 1)]
    return FaultMetrics(
        id=f.id,
        name=f.name,
        type=f.type,
        target=f.target,
        start_s=f.start_s,
        end_s=f.end_s,
        error=f.error,
        action=action,
        request=request,
        busy_s=busy_s,
        peak_10s=float(peak.max()) if len(peak) else None,
        recovered=rec is not None,
        recovery_s=rec,
        note=note,
        instances=[
            FaultInstance(
                name,
                names_instance(f.target, name),
                stats(agg.window_instances.get(f.id, {}).get(name) or Acc()),
            )
            for name in instances
        ],
        server_causes=_server_between(
            server, f.start_s, f.end_s if f.end_s is not None else max(duration, data_end)
        ),
    )


def names_instance(target: str, instance: str) -> bool:
    """Whether a fault's ``target`` names ``instance`` as a whole word: ``client-wallet-1``,
    ``wallet-1-postgres`` and ``wallet-1`` name ``wallet-1``; ``wallet-10`` does not."""
    if not target or not instance:
        return False
    pattern = rf"(?<![A-Za-z0-9]){re.escape(instance)}(?![A-Za-z0-9])"
    return re.search(pattern, target) is not None


def _breakdowns(
    agg: Aggregates, phases: list[PhaseMetrics], data_end: int, bin_s: int
) -> list[Breakdown]:
    """By instance and network class (when the timeline recorded them), and by journey."""
    names = [p.name for p in phases]
    out = []
    for dimension in ("instance", "network"):
        values = agg.values(dimension)
        if not values:
            continue
        rows = [
            _slice(
                value,
                agg.dim_total(dimension, value, "action"),
                agg.dim_total(dimension, value, "request"),
                [(n, agg.dim_total(dimension, value, "action", phase=n)) for n in names],
                _busy_series(agg.dim_seconds.get((dimension, value), {}), data_end, bin_s),
            )
            for value in values
        ]
        out.append(Breakdown(dimension, rows))
    journeys = sorted({j for _p, j, _e, _l in agg.series if j})
    if journeys:
        rows = []
        for journey in journeys:
            per_level: dict[str, Acc] = {"action": Acc(), "request": Acc()}
            per_phase: dict[str, Acc] = {n: Acc() for n in names}
            for (ph, j, _e, lv), acc in agg.series.items():
                if j != journey:
                    continue
                per_level[lv].merge(acc)
                if lv == "action" and ph in per_phase:
                    per_phase[ph].merge(acc)
            rows.append(
                _slice(journey, per_level["action"], per_level["request"], list(per_phase.items()))
            )
        out.append(Breakdown("journey", rows))
    return out


def _slice(
    value: str,
    action: Acc,
    request: Acc,
    phases: list[tuple[str, Acc]],
    series: list[float | None] | None = None,
) -> SliceMetrics:
    per_phase = []
    for name, acc in phases:
        answered = sum(acc.n[:ANSWERED])
        busy = acc.n[BUSY]
        p95 = hdr.percentiles_ms(acc.lat, (95.0,))[0] if answered else None
        per_phase.append(SlicePhase(name, answered, busy, _rate(busy, answered), p95))
    return SliceMetrics(value, stats(action), stats(request), per_phase, series or [])


def _busy_series(per_second: dict[int, list[int]], data_end: int, bin_s: int) -> list[float | None]:
    """The action busy rate of each time-series point (the run's ``series`` bins)."""
    sums = _bin_sums(per_second, data_end, bin_s)
    busy = sums[:, BUSY].tolist()
    answered = sums[:, :ANSWERED].sum(axis=1).tolist()
    return [_rate(b, a) for b, a in zip(busy, answered, strict=True)]


def _bin_sums(per_second: dict[int, list[int]], data_end: int, bin_s: int) -> npt.NDArray[np.int64]:
    """Per-second counts summed over each time-series point's ``bin_s`` seconds: a
    ``(points, outcomes)`` array (the last point may be shorter)."""
    if data_end <= 0:
        return np.zeros((0, len(OUTCOMES)), dtype=np.int64)
    return np.add.reduceat(as_array(per_second, data_end), np.arange(0, data_end, bin_s))


def _server_lines(rd: RunDir) -> tuple[dict[str, object], list[CauseLine]] | None:
    found = read_server_causes(rd.server_causes)
    return (dict(found[0]), found[1]) if found is not None else None


def _server_between(lines: list[CauseLine], start: float, end: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        if start <= line.mid < end:
            for cause, n in line.busy.items():
                out[cause] = out.get(cause, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _server_causes(
    found: tuple[dict[str, object], list[CauseLine]] | None,
) -> ServerCauses | None:
    if found is None:
        return None
    header, lines = found
    total: dict[str, int] = {}
    instances: dict[str, dict[str, int]] = {}
    for line in lines:
        per = instances.setdefault(line.instance, {})
        for cause, n in line.busy.items():
            total[cause] = total.get(cause, 0) + n
            per[cause] = per.get(cause, 0) + n
    groups = header.get("groups")
    return ServerCauses(
        source=str(header.get("source") or "the target's metrics"),
        total=dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))),
        instances={k: instances[k] for k in sorted(instances)},
        groups={str(k): str(v) for k, v in groups.items()} if isinstance(groups, dict) else {},
    )


def _endpoints(agg: Aggregates) -> list[EndpointMetrics]:
    merged: dict[tuple[str, str, str], Acc] = {}
    for (_ph, journey, endpoint, level), acc in agg.series.items():
        merged.setdefault((journey, endpoint, level), Acc()).merge(acc)
    rows = [EndpointMetrics(j, e, lv, stats(acc)) for (j, e, lv), acc in merged.items()]
    return sorted(rows, key=lambda r: (r.level != "action", r.journey, r.endpoint))


def _causes(agg: Aggregates) -> list[CauseMetrics]:
    req, act = agg.total("request").causes, agg.total("action").causes
    busy = sum(req.values())
    names = sorted(set(req) | set(act), key=lambda c: (-req.get(c, 0), -act.get(c, 0), c))
    return [
        CauseMetrics(c, req.get(c, 0), act.get(c, 0), _share(req.get(c, 0), busy)) for c in names
    ]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _series(
    agg: Aggregates, profile: Profile | None, offer: Profile | None, data_end: int, bin_s: int
) -> list[Point]:
    points = []
    acts = _bin_sums(agg.seconds["action"], data_end, bin_s).tolist()
    reqs = _bin_sums(agg.seconds["request"], data_end, bin_s).tolist()
    # each point's action causes, merged second by second in time order
    bin_causes: dict[int, dict[str, int]] = {}
    per_second = agg.causes["action"]
    for t in sorted(t for t in per_second if 0 <= t < data_end):
        causes = bin_causes.setdefault(t // bin_s, {})
        for c, k in per_second[t].items():
            causes[c] = causes.get(c, 0) + k
    for b, (a, r) in enumerate(zip(acts, reqs, strict=True)):
        lo, hi = b * bin_s, min((b + 1) * bin_s, data_end)
        lat = agg.bins["action"].get(b, [None, None, None])
        svc = agg.service_bins["action"].get(b, [None, None, None])
        phase = profile.phase_at(lo) if profile is not None else None
        points.append(
            Point(
                t=lo,
                width_s=hi - lo,
                phase=phase or _phase_of(agg, lo),
                offered=_offered(offer, lo, hi),
                answered=sum(a[:ANSWERED]),
                busy=a[BUSY],
                unsent=a[UNSENT],
                busy_rate=_rate(a[BUSY], sum(a[:ANSWERED])),
                request_answered=sum(r[:3]),
                request_busy=r[BUSY],
                request_busy_rate=_rate(r[BUSY], sum(r[:ANSWERED])),
                causes=bin_causes.get(b, {}),
                p50=lat[0],
                p95=lat[1],
                p99=lat[2],
                goodput=sum(a[:ANSWERED]) - a[BUSY],
                service_p50=svc[0],
                service_p95=svc[1],
            )
        )
    return points


def _phase_of(agg: Aggregates, t: int) -> str:
    return next((p for p, seconds in agg.phase_seconds.items() if t in seconds), "")
