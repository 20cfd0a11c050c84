"""Reading ``timeline.jsonl``: additive deltas summed per key (docs/run-directory.md).

:class:`Timeline` can be fed incrementally (the live progress display tails the file while a run
goes) or read whole (reports)::

    tl = Timeline.read(run_dir / "timeline.jsonl")
    tl.totals("action").busy_rate
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson
from hdrh.histogram import HdrHistogram

from loadkit.rundir import histogram

#: what the writer writes; v1 (hdrhistogram's base64 histograms) reads the same
SCHEMA = "loadkit.timeline/v2"
OUTCOMES = ("ok", "rejected", "busy", "unsent")
#: HDR range: 1 us to 10 minutes, 2 significant digits (what the recorder uses)
HIST_ARGS = (1, 600_000_000, 2)


if TYPE_CHECKING:
    from loadkit.rundir.hdr import Counts

#: one histogram of a bucket: wire-encoded, decoded, or dense counts
Part: TypeAlias = "str | HdrHistogram | Counts"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*HIST_ARGS)


class Bucket:
    """Summed outcomes, busy causes (and their details: ``detail["tls"]`` of the ``connection``
    failures) and latency of one key or window.

    Histograms stay encoded until a view needs them (``percentile_ms``, ``lat``, ``svc``):
    reading a long run costs the counts only (a 1-hour run at 1,000 requests/s holds ~100 MB of
    encoded histograms instead of ~3 GB decoded), and merging buckets is list concatenation.
    """

    __slots__ = ("_hist", "_lat", "_svc", "busy", "detail", "n")

    def __init__(
        self,
        n: dict[str, int] | None = None,
        busy: dict[str, int] | None = None,
        lat: HdrHistogram | None = None,
        svc: HdrHistogram | None = None,
    ) -> None:
        self.n: dict[str, int] = dict(n or {})
        self.busy: dict[str, int] = dict(busy or {})
        self.detail: dict[str, int] = {}
        # encoded histograms (str), already decoded ones, or dense counts (hdr.Counts: what a
        # LiveTimeline folded), per attribute
        self._lat: list[Part] = [lat] if lat is not None else []
        self._svc: list[Part] = [svc] if svc is not None else []
        self._hist: dict[str, HdrHistogram | None] = {}

    def add_delta(self, delta: dict[str, Any]) -> None:
        for k, v in delta.get("n", {}).items():
            self.n[k] = self.n.get(k, 0) + int(v)
        for k, v in delta.get("busy", {}).items():
            self.busy[k] = self.busy.get(k, 0) + int(v)
        for k, v in delta.get("detail", {}).items():
            self.detail[k] = self.detail.get(k, 0) + int(v)
        if delta.get("lat"):
            self._lat.append(str(delta["lat"]))
            self._hist.pop("lat", None)
        if delta.get("svc"):
            self._svc.append(str(delta["svc"]))
            self._hist.pop("svc", None)

    def merge(self, other: Bucket) -> None:
        for k, v in other.n.items():
            self.n[k] = self.n.get(k, 0) + v
        for k, v in other.busy.items():
            self.busy[k] = self.busy.get(k, 0) + v
        for k, v in other.detail.items():
            self.detail[k] = self.detail.get(k, 0) + v
        if other._lat:
            self._lat.extend(other._lat)
            self._hist.pop("lat", None)
        if other._svc:
            self._svc.extend(other._svc)
            self._hist.pop("svc", None)

    def _decoded(self, attr: str) -> HdrHistogram | None:
        if attr not in self._hist:
            parts = self._lat if attr == "lat" else self._svc
            hist = None
            if parts:
                hist = new_histogram()
                for part in parts:
                    if isinstance(part, str):
                        hist.add(histogram.decode(part))
                    elif isinstance(part, HdrHistogram):
                        hist.add(part)
                    else:  # dense counts folded by a LiveTimeline: one record per used slot
                        for i in part.nonzero()[0]:
                            hist.record_value(hist.get_value_from_index(int(i)), int(part[i]))
            self._hist[attr] = hist
        return self._hist[attr]

    @property
    def lat(self) -> HdrHistogram | None:
        """Latency from the intended send time, decoded (and cached) on first use."""
        return self._decoded("lat")

    @property
    def svc(self) -> HdrHistogram | None:
        """Latency from the actual send, decoded (and cached) on first use."""
        return self._decoded("svc")

    def count(self, outcome: str) -> int:
        return self.n.get(outcome, 0)

    @property
    def answered(self) -> int:
        """ok + rejected + busy: the denominator of the busy rate."""
        return self.count("ok") + self.count("rejected") + self.count("busy")

    @property
    def sent(self) -> int:
        return self.answered

    @property
    def busy_rate(self) -> float:
        return self.count("busy") / self.answered if self.answered else 0.0

    def percentile_ms(self, p: float, *, service: bool = False) -> float | None:
        """The ``p``-th percentile in ms; decodes only this bucket's histograms (fast path)."""
        from loadkit.rundir import hdr  # numpy: imported when a percentile is first asked for

        parts = self._svc if service else self._lat
        if not parts:
            return None
        counts = hdr.zeros()
        hdr.add_all(counts, [part for part in parts if isinstance(part, str)])
        for part in parts:
            if isinstance(part, str):  # added above, in bulk
                continue
            if not isinstance(part, HdrHistogram):  # dense counts (LiveTimeline's folds)
                counts[: len(part)] += part
                continue
            for item in part.get_recorded_iterator():
                counts[hdr.index_of(int(item.value_iterated_to))] += (
                    item.count_added_in_this_iter_step
                )
        return hdr.percentile_ms(counts, p)


#: t, phase, journey, endpoint, level, instance, network (the last two "" when not recorded)
Key = tuple[int, str, str, str, str, str, str]
#: the dimensions a view can be narrowed to, by their place in a :data:`Key`
DIMENSIONS = {"journey": 2, "endpoint": 3, "instance": 5, "network": 6}


class Timeline:
    """All deltas of a timeline, summed per (t, phase, journey, endpoint, level, instance,
    network); ``instance`` and ``network`` are optional in the file (older timelines have
    neither) and read as ``""``."""

    def __init__(self) -> None:
        self.buckets: dict[Key, Bucket] = {}
        self._partial = ""
        self._offset = 0

    @classmethod
    def read(cls, path: Path) -> Timeline:
        tl = cls()
        tl.tail(path)
        return tl

    def feed(self, lines: Iterable[str]) -> None:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                delta = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut short by a killed writer
            if not isinstance(delta, dict) or "schema" in delta:
                continue
            key = (
                int(delta["t"]),
                str(delta.get("phase") or ""),
                str(delta.get("journey") or ""),
                str(delta.get("endpoint") or ""),
                str(delta.get("level") or "request"),
                str(delta.get("instance") or ""),
                str(delta.get("network") or ""),
            )
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket()
            bucket.add_delta(delta)
            self._added(key, bucket, delta)

    def _added(self, key: Key, bucket: Bucket, delta: dict[str, Any]) -> None:
        """Hook for :class:`~loadkit.rundir.live_timeline.LiveTimeline` (running totals)."""

    def tail(self, path: Path) -> bool:
        """Read what was appended to ``path`` since the last call; True if anything was."""
        try:
            with path.open("r", encoding="utf-8") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except FileNotFoundError:
            return False
        if not chunk:
            return False
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next read
        self.feed(lines)
        return True

    # -- views ----------------------------------------------------------------------------------

    def select(
        self,
        level: str,
        *,
        t_from: float | None = None,
        t_to: float | None = None,
        phase: str | None = None,
        journey: str | None = None,
        endpoint: str | None = None,
        instance: str | None = None,
        network: str | None = None,
    ) -> Bucket:
        """Sum of every bucket at ``level`` in [t_from, t_to) and/or in ``phase``, of one
        ``journey``, ``endpoint``, target ``instance`` and/or ``network`` class (``None``:
        any)::

            tl.select("action", phase="peak", instance="wallet-1").busy_rate
        """
        out = Bucket()
        wanted = [
            (i, v)
            for i, v in ((2, journey), (3, endpoint), (5, instance), (6, network))
            if v is not None
        ]
        for key, bucket in self.buckets.items():
            t, ph, lv = key[0], key[1], key[4]
            if lv != level or (phase is not None and ph != phase):
                continue
            if (t_from is not None and t < t_from) or (t_to is not None and t >= t_to):
                continue
            if any(key[i] != v for i, v in wanted):
                continue
            out.merge(bucket)
        return out

    def values(self, dimension: str) -> list[str]:
        """Every value of ``dimension`` (``journey``, ``endpoint``, ``instance``, ``network``)
        seen so far, sorted; ``""`` (not recorded) left out."""
        index = DIMENSIONS[dimension]
        return sorted({str(k[index]) for k in self.buckets} - {""})

    def totals(self, level: str = "action") -> Bucket:
        return self.select(level)

    def per_second(self, level: str = "action") -> dict[int, Bucket]:
        out: dict[int, Bucket] = {}
        for key, bucket in self.buckets.items():
            t, lv = key[0], key[4]
            if lv == level:
                out.setdefault(t, Bucket()).merge(bucket)
        return out

    def phases(self) -> list[str]:
        """Phases in order of their first second."""
        first: dict[str, int] = {}
        for t, ph, *_ in self.buckets:
            if ph and (ph not in first or t < first[ph]):
                first[ph] = t
        return sorted(first, key=lambda p: first[p])

    def last_second(self) -> int | None:
        return max((k[0] for k in self.buckets), default=None)
