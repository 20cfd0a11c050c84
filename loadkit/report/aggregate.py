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

import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from loadkit.profile.outcome import Outcome
from loadkit.report.model import Scope
from loadkit.rundir import hdr
from loadkit.rundir.columns import Batch, Columns, read_columns
from loadkit.rundir.histogram import SPARSE_PREFIX

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
    second; ``bins[level][b]`` the latency of seconds ``[b·bin_s, (b+1)·bin_s)`` (of the
    levels :func:`aggregate` was asked to bin)."""

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
#: bytes of timeline read (and lines summed with numpy) at a time: memory stays flat
_CHUNK = 4 << 20
#: how far behind the newest second a latency bin is closed (its percentiles computed and its
#: counts dropped); a line for a closed bin (a writer that far out of order) reopens the bins it
#: touches in a second pass, so the result never depends on the order of lines
_CLOSE_AFTER_S = 120
_C = hdr.COUNTS_LEN
_HISTS = ("lat", "svc")
_SKIP = len(SPARSE_PREFIX)


@dataclass(frozen=True)
class _KeyInfo:
    """One distinct (phase, journey, endpoint, level, instance, network) of the timeline."""

    phase: str
    journey: str
    endpoint: str
    level: str
    instance: str
    network: str
    series: int  # index into the series groups
    dims: tuple[int, ...]  # indexes into the dims groups (instance, network when recorded)
    level_code: int


class _Reader:
    """Sums a timeline chunk by chunk: a Python pass per line for its keys and counts, numpy
    for everything else (the latency pairs never become Python objects)."""

    def __init__(
        self,
        agg: Aggregates,
        windows: list[tuple[str, int, int]],
        bin_s: int,
        scope: Scope | None,
        bin_levels: Collection[str] = LEVELS,
    ) -> None:
        self.agg, self.windows, self.bin_s, self.scope = agg, windows, bin_s, scope
        self.bin_levels = frozenset(bin_levels)
        self.keys: dict[tuple[Any, ...], int] = {}  # as the line spells it → key id (-1: out)
        self.infos: list[_KeyInfo] = []
        self.by_norm: dict[tuple[str, ...], int] = {}
        self.levels: list[str] = []
        self.series: dict[SeriesKey, int] = {}
        self.dims: dict[DimKey, int] = {}
        #: latency counts per key id (series and breakdowns are sums of keys)
        self.kid_hist = {h: np.zeros((0, _C), dtype=np.int64) for h in _HISTS}
        #: latency during each window: by (window index, level), by (window index, instance)
        self.win_hist: dict[tuple[int, str], dict[str, hdr.Counts]] = {}
        self.win_inst_hist: dict[tuple[int, str], dict[str, hdr.Counts]] = {}
        self.t: list[npt.NDArray[np.int64]] = []
        self.kid: list[npt.NDArray[np.intp]] = []
        self.n: list[npt.NDArray[np.int64]] = []
        #: (key id, t, cause) → count
        self.causes: dict[tuple[int, int, str], int] = {}
        #: (hist, level code) → bin → dense counts, while the bin is open
        self.open: dict[tuple[str, int], dict[int, hdr.Counts]] = {}
        self.closed: set[tuple[str, int, int]] = set()
        self.late: set[tuple[int, int]] = set()  # (level code, bin) seen after closing
        self.newest = -(2**62)
        #: (hist) → [lowest, highest + 1] counts index any pair had: the bins' percentiles
        #: sum only that window of their rows (every count outside it is 0)
        self.span: dict[str, list[int]] = {h: [_C, 0] for h in _HISTS}
        self.rows = 0
        self.strict = False
        #: ``timeline.cols`` key id → key id here
        self.col_kids: list[int] = []

    # -- keys -----------------------------------------------------------------------------

    def key_id(self, raw: tuple[Any, ...]) -> int:
        phase, journey, endpoint, level, instance, network = (str(v or "") for v in raw)
        level = level or "request"
        norm = (phase, journey, endpoint, level, instance, network)
        kid = self.by_norm.get(norm)
        if kid is None:
            if self.scope is not None and not self.scope.matches(
                journey, endpoint, instance, network
            ):
                kid = -1
            else:
                if level not in self.levels:
                    self.levels.append(level)
                dims = tuple(
                    self.dims.setdefault((dimension, value, phase, level), len(self.dims))
                    for dimension, value in (("instance", instance), ("network", network))
                    if value
                )
                series = self.series.setdefault((phase, journey, endpoint, level), len(self.series))
                kid = len(self.infos)
                self.infos.append(_KeyInfo(*norm, series, dims, self.levels.index(level)))
            self.by_norm[norm] = kid
        self.keys[raw] = kid
        return kid

    # -- the per-line pass ----------------------------------------------------------------

    def feed(self, lines: list[bytes]) -> None:
        loads, decode_error, keys = orjson.loads, orjson.JSONDecodeError, self.keys
        ts: list[int] = []
        kids: list[int] = []
        ns: list[int] = []
        raw = {h: bytearray() for h in _HISTS}
        blobs: dict[str, tuple[list[int], list[int]]] = {h: ([], []) for h in _HISTS}
        dense: dict[str, list[tuple[int, npt.NDArray[np.intp], hdr.Counts]]] = {
            h: [] for h in _HISTS
        }
        causes: list[tuple[tuple[int, int, str], int]] = []  # merged once the chunk is read
        decoder = hdr.Decoder()
        bad = 0
        fast_rows: list[int] = []
        pieces: dict[str, list[str]] = {h: [] for h in _HISTS}
        strict = self.strict
        for line_raw in lines:
            try:
                line = loads(line_raw)
            except decode_error:
                if line_raw.strip():
                    bad += 1
                continue
            if type(line) is not dict:
                bad += 1
                continue
            if "schema" in line:
                continue
            try:
                t = int(line["t"])
                k = (
                    line.get("phase"),
                    line.get("journey"),
                    line.get("endpoint"),
                    line.get("level"),
                    line.get("instance"),
                    line.get("network"),
                )
                kid = keys.get(k)
                if kid is None:
                    kid = self.key_id(k)
                counts = line.get("n") or {}
                get = counts.get
                if strict:  # a chunk whose counts numpy could not take: check each line
                    n = [int(get(o, 0)) for o in OUTCOMES]
                else:  # checked by np.array for the whole chunk
                    n = [get("ok", 0), get("rejected", 0), get("busy", 0), get("unsent", 0)]
                busy = line.get("busy")
                found = [(str(c), int(v)) for c, v in busy.items() if v] if busy else ()
            except (KeyError, TypeError, ValueError, AttributeError):
                bad += 1
                continue
            if kid < 0:
                continue
            row = len(ts)
            ts.append(t)
            kids.append(kid)
            ns += n
            for c, v in found:
                causes.append(((kid, t, c), v))
            lat, svc = line.get("lat"), line.get("svc")
            if (
                type(lat) is str
                and type(svc) is str
                and lat.startswith(SPARSE_PREFIX)
                and svc.startswith(SPARSE_PREFIX)
                and not (len(lat) - _SKIP) % 4
                and not (len(svc) - _SKIP) % 4
            ):  # the writer's lines: their base64 is decoded in one call per chunk (below)
                fast_rows.append(row)
                pieces["lat"].append(lat[_SKIP:])
                pieces["svc"].append(svc[_SKIP:])
                continue
            for which in _HISTS:
                encoded = line.get(which)
                if not encoded or not isinstance(encoded, str):
                    continue
                if encoded.startswith(SPARSE_PREFIX):
                    pairs = hdr.sparse_raw(encoded)
                    if pairs:
                        raw[which] += pairs
                        rows_of, sizes = blobs[which]
                        rows_of.append(row)
                        sizes.append(len(pairs) // hdr.PAIR.itemsize)
                else:  # a v1 line: hdrhistogram's encoding
                    decoded = decoder.decode(encoded)
                    if decoded is not None:
                        first, values = decoded
                        nz = np.flatnonzero(values)
                        dense[which].append((row, nz + first, values[nz].copy()))
        if not strict:
            try:
                n_arr = np.array(ns, dtype=np.int64).reshape(-1, len(OUTCOMES))
            except (TypeError, ValueError, OverflowError):
                self.strict = True
                try:
                    self.feed(lines)
                finally:
                    self.strict = False
                return
        else:
            n_arr = np.array(ns, dtype=np.int64).reshape(-1, len(OUTCOMES))
        merged = self.causes
        for ck, v in causes:
            merged[ck] = merged.get(ck, 0) + v
        for which in _HISTS:
            if fast_rows:
                _decode_pieces(pieces[which], fast_rows, raw[which], blobs[which])
        self.agg.bad_lines += bad
        if not ts:
            return
        hists: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[Any]]] = {}
        for which in _HISTS:
            rows_of, sizes = blobs[which]
            row_parts: list[npt.NDArray[np.intp]] = []
            idx_parts: list[npt.NDArray[np.intp]] = []
            cnt_parts: list[npt.NDArray[Any]] = []
            if rows_of:
                pair_array: npt.NDArray[Any] = np.frombuffer(raw[which], dtype=hdr.PAIR)
                row_parts.append(np.repeat(np.array(rows_of, dtype=np.intp), sizes))
                idx_parts.append(pair_array["index"].astype(np.intp))
                cnt_parts.append(pair_array["count"])
            for row, idx, cnt in dense[which]:
                row_parts.append(np.full(len(idx), row, dtype=np.intp))
                idx_parts.append(idx.astype(np.intp))
                cnt_parts.append(cnt)
            if row_parts:
                hists[which] = (
                    np.concatenate(row_parts) if len(row_parts) > 1 else row_parts[0],
                    np.concatenate(idx_parts) if len(idx_parts) > 1 else idx_parts[0],
                    np.concatenate(cnt_parts) if len(cnt_parts) > 1 else cnt_parts[0],
                )
        self._add(np.array(ts, dtype=np.int64), np.array(kids, dtype=np.intp), n_arr, hists)

    def feed_columns(self, cols: Columns, batch: Batch) -> None:
        """One record of ``timeline.cols``: the same lines as JSON, already in columns."""
        keys = cols.keys
        kid_of = self.col_kids
        while len(kid_of) < len(keys):  # the record's new keys (scope applied as for JSON)
            kid_of.append(self.key_id(keys[len(kid_of)]))
        kid_arr = np.array(kid_of, dtype=np.intp)[batch.key]
        keep = kid_arr >= 0
        # the record's columns in this reader's order (a column it lacks: zeros)
        n_arr = np.zeros((len(kid_arr), len(OUTCOMES)), dtype=np.int64)
        for i, name in enumerate(cols.outcomes):
            if name in OUTCOMES:
                n_arr[:, OUTCOMES.index(name)] = batch.n[:, i]
        t_arr = batch.t
        hists = {}
        for which, raw, sizes in (
            ("lat", batch.lat, batch.lat_sizes),
            ("svc", batch.svc, batch.svc_sizes),
        ):
            pairs: npt.NDArray[Any] = np.frombuffer(raw, dtype=hdr.PAIR)
            rows = np.repeat(np.arange(len(kid_arr), dtype=np.intp), sizes)
            hists[which] = (rows, pairs["index"].astype(np.intp), pairs["count"])
        if not keep.all():  # lines outside the scope
            new_row = np.cumsum(keep) - 1
            for which, (rows, index, count) in hists.items():
                sel = keep[rows]
                hists[which] = (new_row[rows[sel]], index[sel], count[sel])
            t_arr, kid_arr, n_arr = t_arr[keep], kid_arr[keep], n_arr[keep]
            causes = batch.causes[keep]
        else:
            causes = batch.causes
        merged = self.causes
        for row, c in zip(*np.nonzero(causes), strict=True):
            ck = (int(kid_arr[row]), int(t_arr[row]), cols.causes[c])
            merged[ck] = merged.get(ck, 0) + int(causes[row, c])
        if len(t_arr):
            self._add(t_arr, kid_arr, n_arr, hists)

    def _add(
        self,
        t_arr: npt.NDArray[np.int64],
        kid_arr: npt.NDArray[np.intp],
        n_arr: npt.NDArray[np.int64],
        hists: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[Any]]],
    ) -> None:
        """Some lines' columns, and their latency pairs as (line row, counts index, count)."""
        self.t.append(t_arr)
        self.kid.append(kid_arr)
        self.n.append(n_arr)
        self.rows += len(t_arr)
        for which, (rows, index, count) in hists.items():
            if len(index) and int(index.max()) >= _C:  # a damaged line: keep what fits
                keep = index < _C
                rows, index, count = rows[keep], index[keep], count[keep]
            self._latency(which, t_arr, kid_arr, rows, index, count)
        self._close_bins(int(t_arr.max()))

    # -- latency --------------------------------------------------------------------------

    def _latency(
        self,
        which: str,
        t_arr: npt.NDArray[np.int64],
        kid_arr: npt.NDArray[np.intp],
        rows: npt.NDArray[np.intp],
        index: npt.NDArray[np.intp],
        count: npt.NDArray[Any],
    ) -> None:
        """Add one chunk's latency pairs (each with the chunk row it came from): per key (the
        series and breakdowns are sums of keys), per fault window and per time bin."""
        infos = self.infos
        nk = len(infos)
        if len(index):
            span = self.span[which]
            span[0] = min(span[0], int(index.min()))
            span[1] = max(span[1], int(index.max()) + 1)
        # line → pair through the lines' offsets: the multiply runs per line, not per pair
        key = (kid_arr * _C)[rows]
        key += index
        count = count.astype(np.float64)  # bincount's weights: converted once, not per call
        per_kid = np.bincount(key, weights=count, minlength=nk * _C).reshape(nk, _C)
        totals = self.kid_hist[which]
        if totals.shape[0] < nk:
            grown = np.zeros((max(nk, 2 * totals.shape[0]), _C), dtype=np.int64)
            grown[: totals.shape[0]] = totals
            totals = self.kid_hist[which] = grown
        np.add(totals[:nk], per_kid, out=totals[:nk], casting="unsafe")  # whole counts
        for w, (_name, lo, hi) in enumerate(self.windows):
            inside = (t_arr >= lo) & (t_arr < hi)
            if not inside.any():
                continue
            sel = inside[rows]
            during = np.bincount(key[sel], weights=count[sel], minlength=nk * _C)
            during = during.reshape(nk, _C)
            # the keys present (a bincount: np.unique would import numpy.ma, ~10 ms)
            for k in np.flatnonzero(np.bincount(kid_arr[inside], minlength=nk)).tolist():
                info = infos[k]
                row = during[k].astype(np.int64)
                self.win_add((w, info.level), which, row)
                if info.instance and info.level == "action":
                    self.win_inst_add((w, info.instance), which, row)
        # time bins: one dense row per (level, bin) this chunk touches, for the levels asked
        level_of = np.array([i.level_code for i in infos], dtype=np.int64)
        binned = np.array([i.level in self.bin_levels for i in infos], dtype=bool)[kid_arr]
        if not binned.any():
            return
        group = level_of[kid_arr[binned]] * (2**40) + t_arr[binned] // self.bin_s
        present, inverse = np.unique(group, return_inverse=True)
        # each line's first cell in the dense rows (-1: a level not binned), then its pairs'
        line_at = np.full(len(kid_arr), -1, dtype=np.intp)
        line_at[binned] = inverse.reshape(-1) * _C
        at = line_at[rows]
        if binned.all():
            at += index
            weights = count
        else:
            keep = at >= 0
            at = at[keep]
            at += index[keep]
            weights = count[keep]
        dense = np.bincount(at, weights=weights, minlength=len(present) * _C)
        dense_rows = dense.astype(np.int64).reshape(len(present), _C)  # one conversion
        for g, g_key in enumerate(present.tolist()):
            code, bin_ = divmod(g_key, 2**40)
            if (which, code, bin_) in self.closed:
                self.late.add((code, bin_))
                continue
            open_bins = self.open.setdefault((which, code), {})
            counts = open_bins.get(bin_)
            row = dense_rows[g]  # a view: this chunk's array is its own
            if counts is None:
                open_bins[bin_] = row
            else:
                counts += row

    def win_add(self, name: tuple[int, str], which: str, row: hdr.Counts) -> None:
        self._add_row(self.win_hist, name, which, row)

    def win_inst_add(self, name: tuple[int, str], which: str, row: hdr.Counts) -> None:
        self._add_row(self.win_inst_hist, name, which, row)

    @staticmethod
    def _add_row(
        into: dict[tuple[int, str], dict[str, hdr.Counts]],
        name: tuple[int, str],
        which: str,
        row: hdr.Counts,
    ) -> None:
        hists = into.setdefault(name, {})
        if which in hists:
            hists[which] += row
        else:
            hists[which] = row.copy()  # the same row goes to more than one group

    def _close_bins(self, newest_t: int, *, everything: bool = False) -> None:
        self.newest = max(self.newest, newest_t)
        limit = (self.newest - _CLOSE_AFTER_S) // self.bin_s
        targets = {"lat": self.agg.bins, "svc": self.agg.service_bins}
        for (which, code), open_bins in self.open.items():
            level = self.levels[code]
            done = sorted(b for b in open_bins if everything or b < limit)
            if not done:
                continue
            lo, hi = self.span[which]
            lo = min(lo, hi)  # no pair yet: an empty window, every bin without latency
            values = hdr.percentiles_rows_ms(
                np.stack([open_bins.pop(b)[lo:hi] for b in done]), BIN_PERCENTILES, lo
            )
            target = targets[which].setdefault(level, {})
            for bin_, row in zip(done, values, strict=True):
                target[bin_] = row
                self.closed.add((which, code, bin_))
            # the bins left open get arrays of their own: a view would keep its chunk's whole
            # matrix (~8 MB) alive
            for bin_, counts in open_bins.items():
                if counts.base is not None:
                    open_bins[bin_] = counts.copy()

    # -- the end: counts with numpy -------------------------------------------------------

    def finish(self) -> None:
        self._close_bins(self.newest, everything=True)
        agg, infos = self.agg, self.infos
        agg.lines = self.rows
        if not self.rows:
            return
        t = np.concatenate(self.t)
        kid = np.concatenate(self.kid)
        n = np.concatenate(self.n)
        nk = len(infos)
        # per key: counts → series and dims accumulators
        # (bincount, not np.add.at: ~10x faster; float sums of counts are exact below 2**53)
        per_key = np.stack(
            [np.bincount(kid, weights=n[:, i], minlength=nk) for i in range(len(OUTCOMES))],
            axis=1,
        ).astype(np.int64)
        key_causes: dict[int, dict[str, int]] = {}
        for (k, _t, c), v in self.causes.items():
            d = key_causes.setdefault(k, {})
            d[c] = d.get(c, 0) + v
        series_names = list(self.series)
        dim_names = list(self.dims)
        for k, info in enumerate(infos):
            targets = [(agg.series, series_names[info.series])]
            targets += [(agg.dims, dim_names[gid]) for gid in info.dims]
            for target, name in targets:
                acc = target.get(name)
                if acc is None:
                    acc = target[name] = Acc()
                acc.add_counts(per_key[k].tolist(), key_causes.get(k, {}))
                for which in _HISTS:
                    totals = self.kid_hist[which]
                    if k < totals.shape[0]:
                        getattr(acc, which)[:] += totals[k]
        # per level and second
        level_of = np.array([i.level_code for i in infos], dtype=np.intp)[kid]
        t_min = int(t.min())
        span = int(t.max()) - t_min + 1
        for code, level in enumerate(self.levels):
            sel = level_of == code
            agg.seconds[level] = _per_second(t[sel] - t_min, n[sel], span, t_min)
        for (k, sec, c), v in self.causes.items():
            per = agg.causes.setdefault(infos[k].level, {}).setdefault(sec, {})
            per[c] = per.get(c, 0) + v
        # phases
        for phase in {i.phase for i in infos if i.phase}:
            codes = np.array([i.phase == phase for i in infos])
            seen = (np.flatnonzero(np.bincount(t[codes[kid]] - t_min)) + t_min).tolist()
            agg.phase_seconds[phase] = set(seen)
            agg.phase_first[phase] = seen[0]
        # breakdowns: a dimension value's action counts per second
        action = self.levels.index("action") if "action" in self.levels else -1
        if action >= 0:
            for dimension in DIMENSIONS:
                values = {getattr(i, dimension) for i in infos if getattr(i, dimension)}
                for value in sorted(values):
                    mask = np.array(
                        [getattr(i, dimension) == value and i.level_code == action for i in infos]
                    )[kid]
                    agg.dim_seconds[(dimension, value)] = _per_second(
                        t[mask] - t_min, n[mask], span, t_min
                    )
        # fault windows: counts from the seconds, latency from the groups; instances' counts
        inst_of = [i.instance for i in infos]
        for w, (window, lo, hi) in enumerate(self.windows):
            for level in LEVELS:
                acc = agg.windows[window].setdefault(level, Acc())
                for which, row in self.win_hist.get((w, level), {}).items():
                    setattr(acc, which, row)
                for sec, counts in agg.seconds.get(level, {}).items():
                    if lo <= sec < hi:
                        acc.add_counts(counts, agg.causes.get(level, {}).get(sec, {}))
            if action < 0:
                continue
            inside = (t >= lo) & (t < hi) & (level_of == action)
            if not inside.any():
                continue
            for instance in sorted({v for v in inst_of if v}):
                mask = inside & np.array([v == instance for v in inst_of])[kid]
                if not mask.any():
                    continue
                acc = agg.window_instances[window][instance] = Acc()
                acc.add_counts(n[mask].sum(axis=0).tolist(), {})
                for (k, sec, c), v in self.causes.items():
                    if inst_of[k] == instance and infos[k].level_code == action and lo <= sec < hi:
                        acc.causes[c] = acc.causes.get(c, 0) + v
                for which, row in self.win_inst_hist.get((w, instance), {}).items():
                    setattr(acc, which, row)


def _decode_pieces(
    pieces: list[str],
    rows: list[int],
    raw: bytearray,
    blobs: tuple[list[int], list[int]],
) -> None:
    """Decode the base64 of many lines' pairs at once (each piece is whole 4-character groups,
    so the pieces' concatenation decodes to their pairs' concatenation); a chunk with a
    damaged piece is decoded piece by piece, skipping the damaged ones."""
    rows_of, sizes = blobs
    try:
        decoded = binascii.a2b_base64("".join(pieces), strict_mode=True)
    except (binascii.Error, ValueError):
        for row, piece in zip(rows, pieces, strict=True):
            try:
                part = binascii.a2b_base64(piece, strict_mode=True)
            except (binascii.Error, ValueError):
                continue
            raw += part
            rows_of.append(row)
            sizes.append(len(part) // hdr.PAIR.itemsize)
        return
    raw += decoded
    rows_of += rows
    sizes += [len(piece) // 4 for piece in pieces]


def _per_second(
    t: npt.NDArray[np.int64], n: npt.NDArray[np.int64], span: int, t_min: int
) -> dict[int, list[int]]:
    """``{second: [ok, rejected, busy, unsent]}`` for every second some line had."""
    if not len(t):
        return {}
    seen = np.bincount(t, minlength=span) > 0
    sums = np.stack(
        [np.bincount(t, weights=n[:, i], minlength=span) for i in range(n.shape[1])], axis=1
    ).astype(np.int64)
    at = np.flatnonzero(seen)
    return dict(zip((at + t_min).tolist(), sums[at].tolist(), strict=True))


def aggregate(
    path: Path,
    *,
    windows: Mapping[str, tuple[int, int]] | None = None,
    bin_s: int = 1,
    scope: Scope | None = None,
    bin_levels: Collection[str] = LEVELS,
) -> Aggregates:
    """Sum every delta of ``path`` (missing file: nothing). ``windows`` maps a name to seconds
    ``[first, end)`` to sum latency for; ``bin_s`` is the latency time series' resolution and
    ``bin_levels`` the levels it is kept for (a report's charts show the action level's: the
    request level's would be two thirds of the work); ``scope`` keeps only its slice's
    lines."""
    windows = dict(windows or {})
    agg = Aggregates()
    agg.seconds = {lv: {} for lv in LEVELS}
    agg.causes = {lv: {} for lv in LEVELS}
    agg.bins = {lv: {} for lv in LEVELS}
    agg.service_bins = {lv: {} for lv in LEVELS}
    agg.windows = {w: {lv: Acc() for lv in LEVELS} for w in windows}
    agg.window_instances = {w: {} for w in windows}
    if scope is not None and scope.is_everything:
        scope = None
    hit_windows = [(name, lo, hi) for name, (lo, hi) in windows.items()]
    reader = _Reader(agg, hit_windows, max(1, bin_s), scope, bin_levels)
    try:
        fh = path.open("rb")
    except OSError:
        return agg
    with fh:
        cols = read_columns(path)
        if cols is None:
            _feed_json(reader, fh, None)
        else:  # the JSON lines the column file does not cover, and its records
            _feed_json(reader, fh, cols.start)
            for batch in cols.batches():
                reader.feed_columns(cols, batch)
            fh.seek(cols.read_end)
            _feed_json(reader, fh, None)
    reader.finish()
    if reader.late:
        _late_bins(path, reader)
    return agg


def _feed_json(reader: _Reader, fh: Any, until: int | None) -> None:
    """Feed the JSON lines from ``fh``'s position to ``until`` (``None``: the end)."""
    partial = b""
    left = until - fh.tell() if until is not None else None
    while left is None or left > 0:
        chunk = fh.read(_CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            break
        if left is not None:
            left -= len(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        reader.feed(lines)
    if partial:
        reader.feed([partial])


def _late_bins(path: Path, reader: _Reader) -> None:
    """Recompute the latency bins a line reached after they were closed (a writer far out of
    order): a second pass over the file keeps only those bins' lines."""
    late = reader.late
    bin_s = reader.bin_s
    late_bins = {b for _code, b in late}
    again = _Reader(Aggregates(), [], bin_s, reader.scope, reader.bin_levels)
    again.levels = list(reader.levels)  # the same level codes as the first pass
    wanted = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            line = orjson.loads(raw)
            keep = isinstance(line, dict) and int(line["t"]) // bin_s in late_bins
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if keep:
            wanted.append(raw)
    again.feed(wanted)
    again._close_bins(0, everything=True)
    for source, target in (
        (again.agg.bins, reader.agg.bins),
        (again.agg.service_bins, reader.agg.service_bins),
    ):
        for level, bins in source.items():
            code = reader.levels.index(level) if level in reader.levels else -1
            for bin_, values in bins.items():
                if (code, bin_) in late:
                    target.setdefault(level, {})[bin_] = values


def as_array(per_second: Mapping[int, list[int]], length: int) -> np.ndarray[Any, Any]:
    """Per-second counts as a ``(length, 4)`` array (seconds without lines are zeros)."""
    out = np.zeros((max(length, 0), 4), dtype=np.int64)
    if not per_second:
        return out
    t = np.fromiter(per_second, dtype=np.int64, count=len(per_second))
    counts = np.array(list(per_second.values()), dtype=np.int64).reshape(len(t), 4)
    inside = (t >= 0) & (t < length)
    out[t[inside]] = counts[inside]
    return out
