"""One pass over ``timeline.jsonl`` that sums everything a report shows.

Counts go per second and level (busy rate over time, windows, recovery), per phase and per
journey × endpoint. Latency histograms are decoded once per line (:mod:`loadkit.rundir.hdr`) and
added to one accumulator per (phase, journey, endpoint, level) — phases, endpoints and the whole
run are sums of those — plus one per requested window (fault windows) and one per time-series
bin, so a 1-hour run at 1,000 requests/s reports in seconds::

    agg = aggregate(RunDir(run_dir).timeline, windows={"f01": (30, 41)}, bin_s=1)
    agg.seconds["action"][42]      # [ok, rejected, busy, unsent]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loadkit.profile.outcome import Outcome
from loadkit.rundir import hdr

LEVELS = ("action", "request")
#: the keys of a timeline line's ``n``, in :class:`Acc`'s order (plain strings: the hot loop)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
SeriesKey = tuple[str, str, str, str]  # phase, journey, endpoint, level


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
    seconds: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    causes: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    windows: dict[str, dict[str, Acc]] = field(default_factory=dict)  # window → level → acc
    bins: dict[str, dict[int, list[float | None]]] = field(default_factory=dict)
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


BIN_PERCENTILES = (50.0, 95.0, 99.0)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def aggregate(
    path: Path, *, windows: Mapping[str, tuple[int, int]] | None = None, bin_s: int = 1
) -> Aggregates:
    """Sum every delta of ``path`` (missing file: nothing). ``windows`` maps a name to seconds
    ``[first, end)`` to sum latency for; ``bin_s`` is the latency time series' resolution."""
    windows = dict(windows or {})
    agg = Aggregates()
    agg.seconds = {lv: {} for lv in LEVELS}
    agg.causes = {lv: {} for lv in LEVELS}
    agg.bins = {lv: {} for lv in LEVELS}
    agg.windows = {w: {lv: Acc() for lv in LEVELS} for w in windows}
    try:
        data = path.read_bytes()
    except OSError:
        return agg
    rows: list[tuple[int, Acc, str, Any, Any]] = []
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
            key = (phase, str(line.get("journey") or ""), str(line.get("endpoint") or ""), level)
            counts = line.get("n") or {}
            n = [int(counts.get(o, 0)) for o in OUTCOMES]
            causes = {str(c): int(k) for c, k in (line.get("busy") or {}).items() if k}
        except (KeyError, TypeError, ValueError, AttributeError):
            agg.bad_lines += 1
            continue
        agg.lines += 1
        acc = agg.series.get(key)
        if acc is None:
            acc = agg.series[key] = Acc()
        acc.add_counts(n, causes)
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
            rows.append((t, acc, level, line.get("lat"), line.get("svc")))
    _latency(agg, rows, windows, max(1, bin_s))
    return agg


def _latency(
    agg: Aggregates,
    rows: list[tuple[int, Acc, str, Any, Any]],
    windows: Mapping[str, tuple[int, int]],
    bin_s: int,
) -> None:
    """Decode each histogram once; bins are filled in time order and finalised as they close,
    so only one bin per level is held at a time."""
    decoder = hdr.Decoder()
    rows.sort(key=lambda r: r[0])
    open_bin: dict[str, tuple[int, hdr.Counts]] = {}

    def close(level: str) -> None:
        b, counts = open_bin.pop(level)
        agg.bins[level][b] = list(hdr.percentiles_ms(counts, BIN_PERCENTILES))

    hit_windows = [(name, lo, hi) for name, (lo, hi) in windows.items()]
    in_windows: dict[tuple[int, str], list[Acc]] = {}
    for t, acc, level, lat, svc in rows:
        hits = in_windows.get((t, level))
        if hits is None:
            hits = in_windows[(t, level)] = [
                agg.windows[name][level] for name, lo, hi in hit_windows if lo <= t < hi
            ]
        if lat:
            decoded = decoder.decode(lat)
            if decoded is not None:
                first, counts = decoded
                last = first + len(counts)
                acc.lat[first:last] += counts
                for w in hits:
                    w.lat[first:last] += counts
                b = t // bin_s
                current = open_bin.get(level)
                if current is not None and current[0] != b:
                    close(level)
                    current = None
                if current is None:
                    current = open_bin[level] = (b, hdr.zeros())
                current[1][first:last] += counts
        if svc:
            decoded = decoder.decode(svc)
            if decoded is not None:
                first, counts = decoded
                last = first + len(counts)
                acc.svc[first:last] += counts
                for w in hits:
                    w.svc[first:last] += counts
    for level in list(open_bin):
        close(level)
    for name in windows:  # window counts come from the per-second counts
        lo, hi = windows[name]
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
