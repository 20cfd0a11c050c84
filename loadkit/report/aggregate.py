"""One pass over ``timeline.jsonl`` that sums everything a report shows.

Counts go per second and level (busy rate over time, windows, recovery), per phase and per
journey × endpoint. Latency histograms are decoded once per line (:mod:`loadkit.rundir.hdr`) and
added to one accumulator per (phase, journey, endpoint, level) — phases, endpoints and the whole
run are sums of those — one per (dimension, value, phase, level) for the target instance and the
network class (the breakdowns), one per requested window (fault windows) and per window ×
instance (how each instance fared during a fault), and one per time-series bin (latency and
service time), so a 1-hour run at 1,000 requests/s reports in seconds::

    agg = aggregate(RunDir(run_dir).timeline, windows={"f01": (30, 41)}, bin_s=1)
    agg.seconds["action"][42]      # [ok, rejected, busy, unsent]
    agg.dims[("instance", "wallet-1", "peak", "action")].n

With a ``scope``, only the lines of one journey, endpoint, instance and/or network class count:
every number of the report is then that slice's (``loadkit compare --journey …``, scoped SLOs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loadkit.profile.outcome import Outcome
from loadkit.report.model import Scope
from loadkit.rundir import hdr

LEVELS = ("action", "request")
#: the keys of a timeline line's ``n``, in :class:`Acc`'s order (plain strings: the hot loop)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
SeriesKey = tuple[str, str, str, str]  # phase, journey, endpoint, level
DimKey = tuple[str, str, str, str]  # dimension (instance | network), value, phase, level
#: the dimensions a timeline line may carry beyond journey and endpoint
DIMENSIONS = ("instance", "network")


@dataclass
class Acc:
    """Summed counts, causes and latency of one group of lines."""

    n: list[int] = field(default_factory=lambda: [0] * len(OUTCOMES))
    causes: dict[str, int] = field(default_factory=dict)
    lat: hdr.Counts = field(default_factory=hdr.zeros)
    svc: hdr.Counts = field(default_factory=hdr.zeros)

    def add_counts(self, n: list[int], causes: Mapping[str, int]) -> None:
        for i in range(len(OUTCOMES)):
            self.n[i] += n[i]
        for cause, count in causes.items():
            self.causes[cause] = self.causes.get(cause, 0) + count

    def merge(self, other: Acc) -> None:
        self.add_counts(other.n, other.causes)
        self.lat += other.lat
        self.svc += other.svc


@dataclass
class Aggregates:
    """What :func:`aggregate` found. ``seconds[level][t]`` and ``causes[level][t]`` are per run
    second; ``bins[level][b]`` the latency of seconds ``[b·bin_s, (b+1)·bin_s)``."""

    series: dict[SeriesKey, Acc] = field(default_factory=dict)
    dims: dict[DimKey, Acc] = field(default_factory=dict)
    #: (dimension, value) → second → action counts (a breakdown's busy rate over time)
    dim_seconds: dict[tuple[str, str], dict[int, list[int]]] = field(default_factory=dict)
    seconds: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    causes: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    windows: dict[str, dict[str, Acc]] = field(default_factory=dict)  # window → level → acc
    #: window → instance → action-level acc (how each instance fared during a fault)
    window_instances: dict[str, dict[str, Acc]] = field(default_factory=dict)
    bins: dict[str, dict[int, list[float | None]]] = field(default_factory=dict)
    #: like ``bins``, for the service time (from the actual send)
    service_bins: dict[str, dict[int, list[float | None]]] = field(default_factory=dict)
    phase_seconds: dict[str, set[int]] = field(default_factory=dict)
    phase_first: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    bad_lines: int = 0

    @property
    def last_second(self) -> int | None:
        ts = [t for level in self.seconds.values() for t in level]
        return max(ts) if ts else None

    def total(self, level: str, *, phase: str | None = None) -> Acc:
        out = Acc()
        for (ph, _j, _e, lv), acc in self.series.items():
            if lv == level and (phase is None or ph == phase):
                out.merge(acc)
        return out

    def values(self, dimension: str) -> list[str]:
        """The values of ``instance`` or ``network`` the timeline recorded, sorted."""
        return sorted({v for d, v, _p, _l in self.dims if d == dimension})

    def dim_total(self, dimension: str, value: str, level: str, *, phase: str | None = None) -> Acc:
        """One instance's (or network class's) lines at ``level``, in ``phase`` or in all."""
        out = Acc()
        for (d, v, ph, lv), acc in self.dims.items():
            if d == dimension and v == value and lv == level and (phase is None or ph == phase):
                out.merge(acc)
        return out


BIN_PERCENTILES = (50.0, 95.0, 99.0)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def aggregate(
    path: Path,
    *,
    windows: Mapping[str, tuple[int, int]] | None = None,
    bin_s: int = 1,
    scope: Scope | None = None,
) -> Aggregates:
    """Sum every delta of ``path`` (missing file: nothing). ``windows`` maps a name to seconds
    ``[first, end)`` to sum latency for; ``bin_s`` is the latency time series' resolution;
    ``scope`` keeps only its slice's lines."""
    windows = dict(windows or {})
    agg = Aggregates()
    agg.seconds = {lv: {} for lv in LEVELS}
    agg.causes = {lv: {} for lv in LEVELS}
    agg.bins = {lv: {} for lv in LEVELS}
    agg.service_bins = {lv: {} for lv in LEVELS}
    agg.windows = {w: {lv: Acc() for lv in LEVELS} for w in windows}
    agg.window_instances = {w: {} for w in windows}
    hit_windows = [(name, lo, hi) for name, (lo, hi) in windows.items()]
    if scope is not None and scope.is_everything:
        scope = None
    try:
        data = path.read_bytes()
    except OSError:
        return agg
    rows: list[tuple[int, list[Acc], str, Any, Any]] = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        line = _parse(raw)
        if line is None or "schema" in line:
            agg.bad_lines += line is None
            continue
        try:
            t = int(line["t"])
            level = str(line.get("level") or "request")
            phase = str(line.get("phase") or "")
            journey = str(line.get("journey") or "")
            endpoint = str(line.get("endpoint") or "")
            instance = str(line.get("instance") or "")
            network = str(line.get("network") or "")
            key = (phase, journey, endpoint, level)
            counts = line.get("n") or {}
            n = [int(counts.get(o, 0)) for o in OUTCOMES]
            causes = {str(c): int(k) for c, k in (line.get("busy") or {}).items() if k}
        except (KeyError, TypeError, ValueError, AttributeError):
            agg.bad_lines += 1
            continue
        if scope is not None and not scope.matches(journey, endpoint, instance, network):
            continue
        agg.lines += 1
        acc = agg.series.get(key)
        if acc is None:
            acc = agg.series[key] = Acc()
        acc.add_counts(n, causes)
        accs = [acc]
        for dimension, value in (("instance", instance), ("network", network)):
            if value:
                dim = agg.dims.get((dimension, value, phase, level))
                if dim is None:
                    dim = agg.dims[(dimension, value, phase, level)] = Acc()
                dim.add_counts(n, causes)
                accs.append(dim)
                if level == "action":
                    per = agg.dim_seconds.setdefault((dimension, value), {})
                    cell = per.get(t)
                    if cell is None:
                        per[t] = list(n)
                    else:
                        for i in range(len(OUTCOMES)):
                            cell[i] += n[i]
        if instance and level == "action":
            for name, lo, hi in hit_windows:
                if lo <= t < hi:
                    during = agg.window_instances[name].get(instance)
                    if during is None:
                        during = agg.window_instances[name][instance] = Acc()
                    during.add_counts(n, causes)
                    accs.append(during)
        per_second = agg.seconds.setdefault(level, {}).setdefault(t, [0] * len(OUTCOMES))
        for i in range(len(OUTCOMES)):
            per_second[i] += n[i]
        if causes:
            sec_causes = agg.causes.setdefault(level, {}).setdefault(t, {})
            for c, k in causes.items():
                sec_causes[c] = sec_causes.get(c, 0) + k
        if phase:
            agg.phase_seconds.setdefault(phase, set()).add(t)
            if t < agg.phase_first.get(phase, t + 1):
                agg.phase_first[phase] = t
        if line.get("lat") or line.get("svc"):
            rows.append((t, accs, level, line.get("lat"), line.get("svc")))
    _latency(agg, rows, hit_windows, max(1, bin_s))
    return agg


def _latency(
    agg: Aggregates,
    rows: list[tuple[int, list[Acc], str, Any, Any]],
    hit_windows: list[tuple[str, int, int]],
    bin_s: int,
) -> None:
    """Decode each histogram once; bins are filled in time order and finalised as they close,
    so only one bin per level (and histogram) is held at a time."""
    decoder = hdr.Decoder()
    rows.sort(key=lambda r: r[0])
    open_bins: dict[tuple[str, str], tuple[int, hdr.Counts]] = {}
    targets = {"lat": agg.bins, "svc": agg.service_bins}

    def close(which: str, level: str) -> None:
        b, counts = open_bins.pop((which, level))
        targets[which][level][b] = list(hdr.percentiles_ms(counts, BIN_PERCENTILES))

    in_windows: dict[tuple[int, str], list[Acc]] = {}
    for t, accs, level, lat, svc in rows:
        hits = in_windows.get((t, level))
        if hits is None:
            hits = in_windows[(t, level)] = [
                agg.windows[name][level] for name, lo, hi in hit_windows if lo <= t < hi
            ]
        for which, encoded in (("lat", lat), ("svc", svc)):
            if not encoded:
                continue
            decoded = decoder.decode(encoded)
            if decoded is None:
                continue
            first, counts = decoded
            last = first + len(counts)
            for acc in accs:
                getattr(acc, which)[first:last] += counts
            for w in hits:
                getattr(w, which)[first:last] += counts
            b = t // bin_s
            current = open_bins.get((which, level))
            if current is not None and current[0] != b:
                close(which, level)
                current = None
            if current is None:
                current = open_bins[(which, level)] = (b, hdr.zeros())
            current[1][first:last] += counts
    for which, level in list(open_bins):
        close(which, level)
    for name, lo, hi in hit_windows:  # window counts come from the per-second counts
        for level in LEVELS:
            w = agg.windows[name][level]
            for t, n in agg.seconds[level].items():
                if lo <= t < hi:
                    w.add_counts(n, agg.causes[level].get(t, {}))


def as_array(per_second: Mapping[int, list[int]], length: int) -> np.ndarray[Any, Any]:
    """Per-second counts as a ``(length, 4)`` array (seconds without lines are zeros)."""
    out = np.zeros((max(length, 0), 4), dtype=np.int64)
    for t, n in per_second.items():
        if 0 <= t < length:
            out[t] = n
    return out
