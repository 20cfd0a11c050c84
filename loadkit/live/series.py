"""The live numbers of one run, per run-clock second, kept up to date as they arrive.

:class:`Series` sums what a run records — the timeline's deltas (``timeline.jsonl``, tailed on
its own offset) or, for ``loadkit chaos run``, the controller's probe answers — into per-second
points (outcomes at both levels, action busy causes, action latency percentiles from the intended
send time) and run totals (counts and latency histograms for the OpenMetrics endpoint). Work is
proportional to what arrived since the last call, never to the run's length::

    series = Series(profile)
    tail = TimelineTail(RunDir(run_dir).timeline)
    series.add_lines(tail.read())
    series.settle()
    series.points(t_from=30)      # [{"t": 30, "a": [ok, rejected, busy, unsent], …}, …]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
from hdrh.histogram import HdrHistogram

from loadkit.profile.model import LoadModel, Profile
from loadkit.rundir import hdr

LEVELS: Final = ("action", "request")
OUTCOMES: Final = ("ok", "rejected", "busy", "unsent")
#: classic histogram buckets of the OpenMetrics endpoint, seconds
BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: per-second latency histograms are kept this long (a late answer updates its second's
#: percentiles; older seconds keep theirs and drop the 24 KB histogram)
KEEP_HIST_S: Final = 90

_T = HdrHistogram(hdr.LOWEST_US, hdr.HIGHEST_US, hdr.SIGNIFICANT_FIGURES)
#: per counts index: the highest value it stands for, and its middle (µs)
_HIGHEST = np.array(
    [_T.get_highest_equivalent_value(_T.get_value_from_index(i)) for i in range(hdr.COUNTS_LEN)],
    dtype=np.float64,
)
_LOWEST = np.array(
    [_T.get_lowest_equivalent_value(_T.get_value_from_index(i)) for i in range(hdr.COUNTS_LEN)],
    dtype=np.float64,
)
_MIDDLE = (_LOWEST + _HIGHEST) / 2
#: last counts index inside each bucket (values ≤ le)
_BUCKET_LAST = [int(np.searchsorted(_HIGHEST, le * 1e6, side="right")) - 1 for le in BUCKETS_S]


class TimelineTail:
    """The deltas appended to ``timeline.jsonl`` since the last :meth:`read` (a line cut short
    waits for the next call; a missing file is no lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        out = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # a line cut short by a killed writer
            if isinstance(line, dict) and "schema" not in line:
                out.append(line)
        return out


class _Second:
    __slots__ = ("causes", "dirty", "hist", "n", "pct", "phase", "r_causes")

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.n = {level: [0, 0, 0, 0] for level in LEVELS}
        self.causes: dict[str, int] = {}  # action level
        self.r_causes: dict[str, int] = {}  # request level
        self.hist: hdr.Counts | None = None  # action latency, intended time
        self.pct: list[float | None] = [None, None, None]
        self.dirty = False


class Series:
    """Per-second points and run totals (see the module docstring). Not thread-safe: the live
    view holds its lock around every call."""

    def __init__(self, profile: Profile | None = None) -> None:
        self.profile = profile
        self.seconds: dict[int, _Second] = {}
        #: run totals by level: outcome counts, busy causes, latency counts (intended time)
        self.totals = {level: [0, 0, 0, 0] for level in LEVELS}
        self.causes: dict[str, dict[str, int]] = {level: {} for level in LEVELS}
        self.latency = {level: hdr.zeros() for level in LEVELS}
        self._decoder = hdr.Decoder()
        self.last_t: int | None = None

    # -- input -------------------------------------------------------------------------------

    def _second(self, t: int, phase: str | None) -> _Second:
        sec = self.seconds.get(t)
        if sec is None:
            if not phase and self.profile is not None:
                phase = self.profile.phase_at(t)
            sec = self.seconds[t] = _Second(phase or "")
            if self.last_t is None or t > self.last_t:
                self.last_t = t
        return sec

    def add_lines(self, lines: Iterable[Mapping[str, Any]]) -> int:
        """Add timeline deltas (docs/run-directory.md); returns how many were taken."""
        taken = 0
        for line in lines:
            try:
                t = int(line["t"])
                level = str(line.get("level") or "request")
                counts = line.get("n") or {}
                n = [int(counts.get(o, 0)) for o in OUTCOMES]
                busy = {str(c): int(k) for c, k in (line.get("busy") or {}).items() if k}
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if level not in LEVELS:
                continue
            taken += 1
            sec = self._second(t, str(line.get("phase") or ""))
            per, total = sec.n[level], self.totals[level]
            for i in range(4):
                per[i] += n[i]
                total[i] += n[i]
            into = sec.causes if level == "action" else sec.r_causes
            for c, k in busy.items():
                into[c] = into.get(c, 0) + k
                self.causes[level][c] = self.causes[level].get(c, 0) + k
            if line.get("lat") and (decoded := self._decoder.decode(line["lat"])) is not None:
                first, found = decoded
                last = first + len(found)
                self.latency[level][first:last] += found
                if level == "action":
                    if sec.hist is None:
                        sec.hist = hdr.zeros()
                    sec.hist[first:last] += found
                    sec.dirty = True
        return taken

    def add_answer(self, t: float, outcome: str, cause: str | None, latency_s: float) -> None:
        """One probe answer (``loadkit chaos run``): an action and a request at once."""
        sec = self._second(int(t), None)
        index = OUTCOMES.index(outcome) if outcome in OUTCOMES else 2
        lat_index = hdr.index_of(int(latency_s * 1e6))
        for level in LEVELS:
            sec.n[level][index] += 1
            self.totals[level][index] += 1
            self.latency[level][lat_index] += 1
            if outcome == "busy":
                word = (cause or "unknown").split("/", 1)[0]
                into = sec.causes if level == "action" else sec.r_causes
                into[word] = into.get(word, 0) + 1
                self.causes[level][word] = self.causes[level].get(word, 0) + 1
        if sec.hist is None:
            sec.hist = hdr.zeros()
        sec.hist[lat_index] += 1
        sec.dirty = True

    def settle(self) -> None:
        """Percentiles of the seconds that changed; histograms of old seconds dropped."""
        horizon = (self.last_t or 0) - KEEP_HIST_S
        for t, sec in self.seconds.items():
            if sec.hist is None:
                continue
            if sec.dirty:
                sec.pct = hdr.percentiles_ms(sec.hist, (50.0, 95.0, 99.0))
                sec.dirty = False
            if t < horizon:
                sec.hist = None

    # -- output ------------------------------------------------------------------------------

    def offered(self, t_from: float, t_to: float) -> float | None:
        """Arrivals the profile scheduled in ``[t_from, t_to)`` (None: no open-model profile)."""
        if self.profile is None or self.profile.model is not LoadModel.OPEN or t_to <= t_from:
            return None
        return self.profile.arrivals_between(max(0.0, t_from), t_to)

    def points(self, t_from: int = 0) -> list[dict[str, Any]]:
        """Seconds ``t ≥ t_from`` that have data, in order: ``t``, ``ph`` (phase), ``off``
        (arrivals scheduled), ``a`` / ``r`` (actions / requests: ok, rejected, busy, unsent),
        ``c`` (busy actions by cause), ``p`` (action p50, p95, p99 in ms)."""
        out = []
        for t in sorted(t for t in self.seconds if t >= t_from):
            sec = self.seconds[t]
            off = self.offered(t, t + 1)
            out.append(
                {
                    "t": t,
                    "ph": sec.phase,
                    "off": None if off is None else round(off, 2),
                    "a": sec.n["action"],
                    "r": sec.n["request"],
                    "c": sec.causes,
                    "p": sec.pct,
                }
            )
        return out

    def window(self, t_from: int, t_to: int) -> dict[str, Any]:
        """Sums over the seconds ``[t_from, t_to)``: the page's tiles."""
        a, r = [0, 0, 0, 0], [0, 0, 0, 0]
        for t, sec in self.seconds.items():
            if t_from <= t < t_to:
                for i in range(4):
                    a[i] += sec.n["action"][i]
                    r[i] += sec.n["request"][i]
        return {"a": a, "r": r, "seconds": max(0, t_to - t_from)}

    def histogram(self, level: str) -> tuple[list[tuple[str, float]], float, int]:
        """The run's latency at ``level`` as classic buckets: ``([(le, cumulative count)…,
        ("+Inf", count)], sum in seconds, count)``. HDR values are exact to 1%; a value is
        counted by the highest value its HDR slot stands for, the sum by the slot's middle."""
        counts = self.latency[level]
        cumulative = np.cumsum(counts)
        total = int(cumulative[-1])
        buckets = [
            (_le(le), float(cumulative[i]) if i >= 0 else 0.0)
            for le, i in zip(BUCKETS_S, _BUCKET_LAST, strict=True)
        ]
        buckets.append(("+Inf", float(total)))
        total_s = float(np.dot(counts, _MIDDLE)) / 1e6
        return buckets, total_s, total


def _le(value: float) -> str:
    return f"{value:g}" if value < 1 else f"{value:.1f}"
