"""``timeline.cols``: the timeline's counts and latency pairs as binary columns, written beside
``timeline.jsonl`` so that a report of an hour-long run does not parse 100,000+ JSON lines.

``timeline.jsonl`` stays the source of truth (live tailing, ``grep``, every older reader); the
column file is an index of it that readers use when present and consistent, and any part of the
timeline it does not cover (an older run, a torn tail, lines appended by something else) is read
from the JSON lines. One record per writer flush::

    b"LKTC" | payload length u32 | crc32(payload) u32 | payload
    payload: header <q jsonl start, q jsonl end, u32 crc32 of those JSON bytes, u32 lines,
             u32 meta length> | meta JSON | t i64[m] | key i32[m] | n i64[m, outcomes]
             | causes i64[m, causes] | lat bytes i32[m] | svc bytes i32[m] | lat pairs | svc pairs

``meta`` names the keys first used in the record (``{"keys": [[id, phase, journey, endpoint,
level, instance, network], …]}``; the first record also names the outcome and cause columns);
pairs are :data:`~loadkit.rundir.hdr.PAIR` records, the bytes a ``sparse:`` histogram's base64
decodes to. A record that is torn, fails its checksum, does not continue the JSON bytes where
the previous one ended, or whose JSON bytes are no longer the timeline's (an edited line) ends
what the reader uses::

    cols = read_columns(run_dir / "timeline.jsonl")     # None: read the JSON lines
    for batch in cols.batches():                         # one Batch per record
        batch.t, batch.key, batch.n                      # cols.keys[batch.key[0]]
    cols.read_end                                        # JSON bytes from here: not covered
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import orjson

#: the column file of ``timeline.jsonl`` (``timeline.cols``, same directory)
COLUMNS_SUFFIX: Final = ".cols"
_MAGIC: Final = b"LKTC"
_RECORD = struct.Struct("<4sII")
_HEAD = struct.Struct("<qqIII")
#: a record larger than this is damage, not data (a flush of a busy second is ~100 kB)
_MAX_RECORD: Final = 1 << 30
#: the read buffer: a record (~10 kB for a second of 1,000 requests/s) and the seeks over one
#: stay inside it, one read call per megabyte
_BUFFER: Final = 1 << 20
#: the meta of a record that names no new key (most records: no JSON to parse)
_NO_NEW_KEYS: Final = b'{"keys":[]}'

Key = tuple[str, str, str, str, str, str]  # phase, journey, endpoint, level, instance, network
#: one line for :meth:`ColumnWriter.write`: t, key, n, causes, lat pairs, svc pairs
Row = tuple[int, Key, list[int], list[int], bytes, bytes]


def columns_path(timeline: Path) -> Path:
    """``timeline.cols`` beside ``timeline.jsonl``."""
    return timeline.with_suffix(COLUMNS_SUFFIX)


class ColumnWriter:
    """Appends one record per flush; :meth:`write` is given the JSON bytes just appended (and
    where they start) and each line's columns."""

    def __init__(self, path: Path, outcomes: tuple[str, ...], causes: tuple[str, ...]) -> None:
        self._handle: IO[bytes] = path.open("ab")
        self._outcomes, self._causes = outcomes, causes
        self._keys: dict[Key, int] = {}
        self._first = True

    def write(
        self,
        start: int,
        data: bytes,
        rows: list[Row],
    ) -> None:
        """One flush: ``data`` (the JSON lines, appended at byte ``start`` of the timeline) and
        per line ``(t, key, n, causes, lat pairs, svc pairs)``."""
        new = []
        ids = []
        for _t, key, _n, _c, _lat, _svc in rows:
            kid = self._keys.get(key)
            if kid is None:
                kid = self._keys[key] = len(self._keys)
                new.append([kid, *key])
            ids.append(kid)
        meta: dict[str, Any] = {"keys": new}
        if self._first:
            meta.update(outcomes=list(self._outcomes), causes=list(self._causes))
            self._first = False
        meta_raw = orjson.dumps(meta)
        m = len(rows)
        parts = [
            _HEAD.pack(start, start + len(data), zlib.crc32(data), m, len(meta_raw)),
            meta_raw,
            np.array([r[0] for r in rows], dtype="<i8").tobytes(),
            np.array(ids, dtype="<i4").tobytes(),
            np.array([r[2] for r in rows], dtype="<i8").reshape(m, -1).tobytes(),
            np.array([r[3] for r in rows], dtype="<i8").reshape(m, -1).tobytes(),
            np.array([len(r[4]) for r in rows], dtype="<i4").tobytes(),
            np.array([len(r[5]) for r in rows], dtype="<i4").tobytes(),
            b"".join(r[4] for r in rows),
            b"".join(r[5] for r in rows),
        ]
        payload = b"".join(parts)
        # one write per record: a crash leaves at most one torn record, at the end
        self._handle.write(_RECORD.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload)
        self._handle.flush()

    def close(self) -> None:
        # a full disk refusing the buffered tail leaves a torn record: readers skip it
        with contextlib.suppress(OSError):
            self._handle.close()


@dataclass
class Batch:
    """The lines of one record: ``key`` indexes :attr:`Columns.keys`."""

    t: npt.NDArray[np.int64]
    key: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]  # (lines, len(outcomes))
    causes: npt.NDArray[np.int64]  # (lines, len(cause names))
    lat_sizes: npt.NDArray[np.int64]  # pairs per line
    svc_sizes: npt.NDArray[np.int64]
    lat: bytes  # PAIR records
    svc: bytes


class Columns:
    """A column file found consistent with its timeline, up to JSON byte :attr:`end`:
    :meth:`batches` yields its records' lines and leaves :attr:`read_end` at the end of the JSON
    bytes they covered (a record damaged since the scan ends them early); the JSON bytes before
    :attr:`start` and from :attr:`read_end` on are the caller's to read as JSON lines."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self.path, self.start, self.end = path, start, end
        self.read_end = start
        self.outcomes: tuple[str, ...] = ()
        self.causes: tuple[str, ...] = ()
        #: key id → (phase, journey, endpoint, level, instance, network)
        self.keys: list[Key] = []

    def batches(self, lines: int = 16384) -> Iterator[Batch]:
        """The covered lines, records joined into batches of about ``lines`` lines (each
        column of a batch is one ``frombuffer``: a record is only sliced)."""
        try:
            fh = self.path.open("rb", buffering=_BUFFER)
        except OSError:
            return
        with fh:
            pending: list[_Raw] = []
            count = 0
            while self.read_end < self.end:
                raw = self._record(fh)
                if raw is None or raw.start != (pending[-1].end if pending else self.read_end):
                    break
                pending.append(raw)
                count += raw.m
                if count >= lines or raw.end >= self.end:
                    batch = self._join(pending)
                    if batch is None:
                        return
                    yield batch
                    self.read_end = pending[-1].end
                    pending, count = [], 0
            batch = self._join(pending) if pending else None
            if batch is not None:
                yield batch
                self.read_end = pending[-1].end

    def _record(self, fh: IO[bytes]) -> _Raw | None:
        head = fh.read(_RECORD.size)
        if len(head) < _RECORD.size:
            return None
        magic, length, crc = _RECORD.unpack(head)
        if magic != _MAGIC or not _HEAD.size <= length <= _MAX_RECORD:
            return None
        payload = fh.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return None
        start, end, _json_crc, m, meta_len = _HEAD.unpack_from(payload)
        at = _HEAD.size + meta_len
        meta = payload[_HEAD.size : at]
        if meta != _NO_NEW_KEYS and not self._meta(meta):  # most records name no new key
            return None
        view = memoryview(payload)
        parts = []
        for width in (8, 4, 8 * len(self.outcomes), 8 * len(self.causes), 4, 4):
            parts.append(view[at : at + width * m])
            at += width * m
        lat = sum(struct.unpack_from(f"<{m}i", payload, at - 8 * m))  # the lines' pair bytes
        svc = sum(struct.unpack_from(f"<{m}i", payload, at - 4 * m))
        if at + lat + svc != length:
            return None
        parts += [view[at : at + lat], view[at + lat : at + lat + svc]]
        return _Raw(start, end, m, parts)

    def _meta(self, raw: bytes) -> bool:
        """Take a record's meta (new keys; the first record's columns); ``False``: it does
        not fit what came before (the reading stops)."""
        try:
            meta = orjson.loads(raw)
            if "outcomes" in meta:
                self.outcomes = tuple(str(o) for o in meta["outcomes"])
                self.causes = tuple(str(c) for c in meta["causes"])
            for kid, *key in meta.get("keys", ()):
                if kid != len(self.keys):  # ids restart: another writer appended; stop here
                    return False
                phase, journey, endpoint, level, instance, network = (
                    "" if k is None else str(k) for k in key
                )
                self.keys.append((phase, journey, endpoint, level, instance, network))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return False
        return True

    def _join(self, raws: list[_Raw]) -> Batch | None:
        """One batch of ``raws``' lines (``None``: a key id the file never named)."""
        cols = [b"".join(r.parts[i] for r in raws) for i in range(8)]
        m = sum(r.m for r in raws)
        key = np.frombuffer(cols[1], dtype="<i4").astype(np.int64)
        if len(key) and (int(key.min()) < 0 or int(key.max()) >= len(self.keys)):
            return None
        return Batch(
            np.frombuffer(cols[0], dtype="<i8").astype(np.int64),
            key,
            np.frombuffer(cols[2], dtype="<i8").reshape(m, len(self.outcomes)).astype(np.int64),
            np.frombuffer(cols[3], dtype="<i8").reshape(m, len(self.causes)).astype(np.int64),
            np.frombuffer(cols[4], dtype="<i4") // 3,
            np.frombuffer(cols[5], dtype="<i4") // 3,
            cols[6],
            cols[7],
        )


@dataclass
class _Raw:
    """One record's JSON byte range, line count and column bytes (not yet arrays)."""

    start: int
    end: int
    m: int
    parts: list[memoryview]


def read_columns(timeline: Path) -> Columns | None:
    """The column file of ``timeline`` if it has one that fits it, else ``None``. Scans the
    records' headers: they must continue one another, and each one's JSON bytes must be the
    timeline's (their checksum: ~0.1 s for an hour-long run), so a timeline edited or rewritten
    since is covered only up to its first changed line."""
    path = columns_path(timeline)
    try:
        fh = path.open("rb", buffering=_BUFFER)
        tl = timeline.open("rb", buffering=_BUFFER)
    except OSError:
        return None
    first: int | None = None
    last_end = -1
    with fh, tl:
        while True:
            head = fh.read(_RECORD.size + _HEAD.size)
            if len(head) < _RECORD.size + _HEAD.size:
                break
            magic, length, _crc = _RECORD.unpack_from(head)
            if magic != _MAGIC or not _HEAD.size <= length <= _MAX_RECORD:
                break
            start, end, json_crc, _m, _meta = _HEAD.unpack_from(head, _RECORD.size)
            if (first is not None and start != last_end) or not 0 <= start <= end:
                break
            if first is None:
                tl.seek(start)
            data = tl.read(end - start)
            if len(data) != end - start or zlib.crc32(data) != json_crc:
                break
            if first is None:
                first = start
            last_end = end
            fh.seek(length - _HEAD.size, 1)
    if first is None:
        return None
    return Columns(path, first, last_end)
