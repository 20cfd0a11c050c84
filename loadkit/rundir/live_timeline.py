"""A :class:`~loadkit.rundir.timeline.Timeline` for following a run while it goes, in bounded
memory and at a cost per call that does not grow with the run.

The run orchestrator tails ``timeline.jsonl`` twice a second and its listeners (the progress
line, ``--slo-abort``, the capacity search) ask for the last few seconds, a phase, or the whole
run so far. A plain ``Timeline`` keeps every per-second bucket and answers each question by
scanning all of them: after 30 minutes that is ~43,000 buckets, three scans per tick, and memory
that grows with the run. :class:`LiveTimeline` answers the same questions identically from

- an index of the buckets by second, for windows (``t_from``/``t_to``): a window touches only
  its seconds;
- running totals per (phase, journey, endpoint, level, instance, network) — a *slice* — updated
  as lines are fed, for phase and whole-run questions;
- only the last ``keep_s`` seconds of per-second buckets: older seconds are folded into their
  slice (counts were already there; their latency histograms are added to the slice's dense
  counts), so memory is bounded by the slices, not the run's length.

A window reaching before the folded seconds cannot be answered any more and raises
``ValueError`` (read ``timeline.jsonl`` with :meth:`Timeline.read` for those)::

    tl = LiveTimeline(keep_s=60)
    tl.tail(run_dir / "timeline.jsonl")          # every tick
    tl.select("action", t_from=t - 13, t_to=t - 3).busy_rate
    tl.select("action", phase="peak").percentile_ms(99)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hdrh.histogram import HdrHistogram

from loadkit.rundir.timeline import DIMENSIONS, Bucket, Key, Timeline

if TYPE_CHECKING:
    from loadkit.rundir.hdr import Counts, Decoder

#: phase, journey, endpoint, level, instance, network: a Key without its second
Slice = tuple[str, str, str, str, str, str]
#: what the orchestrator keeps per second: its listeners look back ~15 s at most, answers for a
#: second keep arriving for a while after it (the client's timeouts and retries)
KEEP_S = 60


class LiveTimeline(Timeline):
    """A timeline that keeps the last ``keep_s`` seconds per second and everything before as
    running totals per slice (see the module docstring)."""

    def __init__(self, keep_s: int = KEEP_S) -> None:
        super().__init__()
        if keep_s < 1:
            raise ValueError(f"keep_s must be at least 1, not {keep_s}")
        self.keep_s = keep_s
        #: the buckets of each kept second
        self._seconds: dict[int, dict[Key, Bucket]] = {}
        #: running totals per slice: every count fed, the histograms of folded seconds
        self._slices: dict[Slice, Bucket] = {}
        #: seconds before this one are folded into the slices
        self.folded_before: int | None = None
        self._first: dict[str, int] = {}
        self._last: int | None = None
        self._decoder: Decoder | None = None

    # -- input ----------------------------------------------------------------------------------

    def feed(self, lines: Iterable[str]) -> None:
        super().feed(lines)
        self._fold()

    def _added(self, key: Key, bucket: Bucket, delta: dict[str, Any]) -> None:
        t, phase = key[0], key[1]
        part = key[1:]
        total = self._slices.get(part)
        if total is None:
            total = self._slices[part] = Bucket()
        total.add_delta({k: delta[k] for k in ("n", "busy", "detail") if k in delta})
        if phase and (phase not in self._first or t < self._first[phase]):
            self._first[phase] = t
        if self._last is None or t > self._last:
            self._last = t
        if self.folded_before is not None and t < self.folded_before:
            # a late answer for a folded second: straight into its slice
            del self.buckets[key]
            self._fold_bucket(total, bucket)
        else:
            self._seconds.setdefault(t, {})[key] = bucket

    def _fold(self) -> None:
        if self._last is None:
            return
        horizon = self._last - self.keep_s + 1
        if self.folded_before is not None and horizon <= self.folded_before:
            return
        for t in [t for t in self._seconds if t < horizon]:
            for key, bucket in self._seconds.pop(t).items():
                del self.buckets[key]
                self._fold_bucket(self._slices[key[1:]], bucket)
        self.folded_before = horizon

    def _fold_bucket(self, total: Bucket, bucket: Bucket) -> None:
        """Add ``bucket``'s histograms to ``total``'s dense counts (its counts are there)."""
        from loadkit.rundir import hdr  # numpy: only once something is folded

        if self._decoder is None:
            self._decoder = hdr.Decoder()
        for attr in ("_lat", "_svc"):
            parts: list[Any] = getattr(bucket, attr)
            if not parts:
                continue
            into: list[Any] = getattr(total, attr)
            if not into:
                into.append(hdr.zeros())
            counts: Counts = into[0]
            for part in parts:
                _add_part(counts, part, self._decoder)
            total._hist.pop(attr[1:], None)  # the decoded cache is stale

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
        """As :meth:`Timeline.select`; a window touches only its seconds, a phase or the whole
        run only the slices and the kept seconds."""
        wanted = [
            (i, v)
            for i, v in (
                (1, phase),
                (2, journey),
                (3, endpoint),
                (4, level),
                (5, instance),
                (6, network),
            )
            if v is not None
        ]
        out = Bucket()
        if t_from is None and t_to is None:
            for part, total in self._slices.items():
                if all(part[i - 1] == v for i, v in wanted):
                    out.merge(total)  # counts of the whole run, histograms of folded seconds
            for buckets in self._seconds.values():
                for key, bucket in buckets.items():
                    if all(key[i] == v for i, v in wanted):
                        out._lat.extend(bucket._lat)
                        out._svc.extend(bucket._svc)
            return out
        first = math.ceil(t_from) if t_from is not None else None
        if self.folded_before is not None and (first is None or first < self.folded_before):
            raise ValueError(
                f"seconds before {self.folded_before} of this timeline were folded (it keeps "
                f"the last {self.keep_s} s); read timeline.jsonl for a window from {t_from}"
            )
        if first is None or t_to is None or t_to - first > len(self._seconds):
            seconds: Iterable[int] = [
                t
                for t in self._seconds
                if (first is None or t >= first) and (t_to is None or t < t_to)
            ]
        else:
            seconds = range(first, math.ceil(t_to))
        for t in seconds:
            for key, bucket in self._seconds.get(t, {}).items():
                if all(key[i] == v for i, v in wanted):
                    out.merge(bucket)
        return out

    def per_second(self, level: str = "action") -> dict[int, Bucket]:
        if self.folded_before is not None:
            raise ValueError(
                f"seconds before {self.folded_before} of this timeline were folded; read "
                "timeline.jsonl for every second"
            )
        return super().per_second(level)

    def values(self, dimension: str) -> list[str]:
        index = DIMENSIONS[dimension] - 1
        return sorted({str(p[index]) for p in self._slices} - {""})

    def phases(self) -> list[str]:
        return sorted(self._first, key=lambda p: self._first[p])

    def last_second(self) -> int | None:
        return self._last


def _add_part(counts: Counts, part: Any, decoder: Decoder) -> None:
    if isinstance(part, str):
        decoded = decoder.decode(part)
        if decoded is not None:
            first, found = decoded
            counts[first : first + len(found)] += found
    elif isinstance(part, HdrHistogram):
        from loadkit.rundir import hdr

        for item in part.get_recorded_iterator():
            counts[hdr.index_of(int(item.value_iterated_to))] += item.count_added_in_this_iter_step
    else:
        counts[: len(part)] += part
