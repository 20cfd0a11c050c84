"""The run-directory files the Locust master (or the single process) writes, and the
acknowledgement logs every load process keeps.

``timeline.jsonl`` and ``acks.bin`` are appended as payloads of :class:`~loadkit.load.recorder.
Recorder` arrive (from workers' reports, or from the local recorder): :meth:`RunWriter.add` merges
cells with the same key, :meth:`RunWriter.flush` appends one additive delta line per key and the
ack lines, then flushes the files, so a killed run still leaves a readable directory. Each
flush's deltas also go to ``timeline.cols`` as binary columns (:mod:`loadkit.rundir.columns`),
after the JSON lines: reports read those instead of parsing every line, and fall back to the
JSON lines for anything the columns lack (a torn record; a full disk: the writer then stops
writing them).
See docs/run-directory.md for the formats::

    writer = RunWriter(run_dir)
    RunDir(run_dir).write_clock(t0=1764358200.25, duration_s=45.0)
    writer.add(recorder.drain())
    writer.flush()

Acknowledgement records are made by :func:`~loadkit.rundir.acks.ack_record` and written by
:class:`~loadkit.rundir.acks.AckLog` only (:mod:`loadkit.rundir.acks`, the one place that knows
the format): the ``acks.bin`` the master writes and each load process's own spill (``acks.d/``,
written before each request leaves) are both ``AckLog``::

    spill = AckLog(run_dir / "acks.d" / "worker-1-4711.bin")
    spill.write([ack_record({"key": "lk-1", "view": SENT, "amount": 500, ...})])
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import IO, Any, Final

import orjson

from loadkit.profile.outcome import CAUSES, DETAILS, OUTCOMES
from loadkit.rundir import ACKS, TIMELINE
from loadkit.rundir.acks import SENT, AckLog, AckRecord, ack_record, disk_full_dropped
from loadkit.rundir.columns import ColumnWriter, Row, columns_path
from loadkit.rundir.histogram import sparse_pairs, sparse_text

log = logging.getLogger("loadkit")

OUTCOME_NAMES: Final = tuple(o.value for o in OUTCOMES)
CAUSE_NAMES: Final = tuple(c.value for c in CAUSES)
DETAIL_NAMES: Final = tuple(d.value for d in DETAILS)

#: v2: histograms as ``sparse:`` pairs (:func:`~loadkit.rundir.histogram.pack_sparse`); v1
#: timelines (hdrhistogram's base64) still read everywhere
TIMELINE_SCHEMA: Final = "loadkit.timeline/v2"


_Key = tuple[int, str, str, str, str, str, str]  # t, phase, journey, endpoint, level, instance,
# network


class _Merged:
    __slots__ = ("causes", "details", "lat", "n", "svc")

    def __init__(self) -> None:
        self.n = [0] * len(OUTCOME_NAMES)
        self.causes = [0] * len(CAUSE_NAMES)
        self.details = [0] * len(DETAIL_NAMES)
        self.lat: dict[int, int] = {}
        self.svc: dict[int, int] = {}


class RunWriter:
    """Appends timeline deltas and acknowledgements to a run directory."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._pending: dict[_Key, _Merged] = {}
        self._acks: list[AckRecord] = []
        self._timeline = _open_jsonl(
            self.run_dir / TIMELINE, {"schema": TIMELINE_SCHEMA, "latency_unit": "us"}
        )
        self._offset = self._timeline.tell()
        # the same deltas as columns, for reports (docs/run-directory.md, timeline.cols)
        self._columns: ColumnWriter | None = ColumnWriter(
            columns_path(self.run_dir / TIMELINE), OUTCOME_NAMES, CAUSE_NAMES
        )
        self._ack_log = AckLog(self.run_dir / ACKS)
        #: totals written so far (requests and actions by outcome), for logs and tests
        self.lines = 0

    def add(self, payload: dict[str, Any]) -> None:
        """Merge one drained payload into what the next :meth:`flush` writes."""
        pending = self._pending
        for row in payload.get("cells", ()):
            t, phase, journey, endpoint, level, n, causes, lat, svc = row[:9]
            instance = row[10] if len(row) > 11 else ""
            network = row[11] if len(row) > 11 else ""
            key = (t, phase, journey, endpoint, level, instance or "", network or "")
            merged = pending.get(key)
            if merged is None:
                merged = pending[key] = _Merged()
            for i, count in enumerate(n):
                merged.n[i] += count
            for i, count in enumerate(causes):
                merged.causes[i] += count
            for i, count in enumerate(row[9] if len(row) > 9 else ()):  # e.g. tls
                merged.details[i] += count
            _merge_flat(merged.lat, lat)
            _merge_flat(merged.svc, svc)
        self._acks.extend(payload.get("acks", ()))

    def flush(self) -> None:
        """Append the merged deltas (ordered by second) and the acks; flush both files."""
        pending, self._pending = self._pending, {}
        out = []
        rows: list[Row] = []
        for key in sorted(pending):
            t, phase, journey, endpoint, level, instance, network = key
            merged = pending[key]
            line: dict[str, Any] = {
                "t": t,
                "phase": phase,
                "journey": journey,
                "endpoint": endpoint,
                "level": level,
            }
            if instance:  # optional keys: a timeline without them reads as before
                line["instance"] = instance
            if network:
                line["network"] = network
            line.update(
                n=dict(zip(OUTCOME_NAMES, merged.n, strict=True)),
                busy={c: k for c, k in zip(CAUSE_NAMES, merged.causes, strict=True) if k},
            )
            if any(merged.details):
                line["detail"] = {
                    d: k for d, k in zip(DETAIL_NAMES, merged.details, strict=True) if k
                }
            lat = svc = b""
            if merged.lat:
                lat, svc = sparse_pairs(merged.lat), sparse_pairs(merged.svc)
                line["lat"] = sparse_text(lat)
                line["svc"] = sparse_text(svc)
            out.append(orjson.dumps(line))
            rows.append((t, key[1:], merged.n, merged.causes, lat, svc))
        with disk_full_dropped(self.run_dir / TIMELINE, len(out)):
            if out:
                data = b"\n".join(out) + b"\n"
                try:
                    self._timeline.write(data)
                    self._timeline.flush()  # the JSON lines first: columns never run ahead
                except OSError:
                    # the JSON lines may end torn: the columns stop (readers use the lines)
                    self._stop_columns()
                    raise
                if self._columns is not None:
                    try:
                        self._columns.write(self._offset, data, rows)
                    except OSError:  # e.g. a full disk: the JSON lines alone still say it all
                        self._stop_columns()
                self._offset += len(data)
                self.lines += len(out)
            self._timeline.flush()
        acks, self._acks = self._acks, []
        self._ack_log.write(acks)

    def _stop_columns(self) -> None:
        if self._columns is not None:
            with contextlib.suppress(OSError):
                self._columns.close()
            self._columns = None

    def close(self) -> None:
        self.flush()
        self._timeline.close()
        if self._columns is not None:
            self._columns.close()
        self._ack_log.close()


def _merge_flat(into: dict[int, int], flat: list[int]) -> None:
    for i in range(0, len(flat), 2):
        index = flat[i]
        into[index] = into.get(index, 0) + flat[i + 1]


def _open_jsonl(path: Path, header: dict[str, Any]) -> IO[bytes]:
    """Open for appending; a new (or empty) file gets its schema header line first."""
    handle = path.open("ab")
    if handle.tell() == 0:
        handle.write(orjson.dumps(header) + b"\n")
        handle.flush()
    return handle


__all__ = ["SENT", "TIMELINE_SCHEMA", "AckLog", "AckRecord", "RunWriter", "ack_record"]
