"""The per-second recorder: outcome counts and latency histograms of one Locust process.

Every request and every action is counted in a *cell*: one piece of the run (a second × phase,
see :mod:`loadkit.load.schedule`) × one *series* (journey × endpoint × level) × where it went
(the target *instance* and the user's *network class*). A cell holds
counts per outcome and busy cause (and per busy detail such as ``tls``, when one was
counted), and two latency histograms in microseconds — from the intended send time (``lat``) and
from the actual send (``svc``).

Histograms are HDR histograms (``hdrhistogram``: 1 µs … 10 min, 2 significant digits; longer
values count as 10 min), kept sparse on the hot path: a dict from the HDR counts index to a
count, the index computed exactly as ``HdrHistogram`` computes it, so that :func:`encode_sparse`
later gives the very histogram ``record_value`` would have built, at a fraction of its cost per
value (and no counts array per cell and second).

:meth:`Recorder.drain` hands over everything recorded since the last call as a compact payload
(plain lists, msgpack-friendly: it travels in Locust's worker reports) and starts afresh, so what
the master writes are additive deltas::

    recorder = Recorder()
    sid = recorder.series("checkout", "POST /v1/payments", "request")
    where = recorder.instance("wallet-1") | recorder.network("weak-4g")
    recorder.record(piece, sid | where, OK, NO_CAUSE, lat_us=5200, svc_us=4100)
    payload = recorder.drain()   # {"cells": [[t, phase, journey, endpoint, level, ...]], ...}

Money movements are recorded twice: :meth:`Recorder.sent` before the request leaves (view
``sent``) and :meth:`Recorder.ack` with the client's final view. Both go, at once, into the
process's own ``spill`` (an :class:`~loadkit.rundir.acks.AckLog`), so a process killed between
two reports still leaves every key it may have sent on disk (docs/integrity.md), and into the
next payload (the master writes them to ``acks.bin``) unless the spill is in the run directory
itself (``spill_in_run_dir``: the run directory then holds each record once)::

    recorder.spill = AckLog(run_dir / "acks.d" / "standalone-0-4711.bin")
    recorder.sent(ack_record({..., "key": key, "view": SENT}))   # then send
A cell's key is one small int: the series id (:meth:`Recorder.series`, already shifted) OR the
instance's route (:meth:`Recorder.instance`, kept on each target) OR the network class's index
(:meth:`Recorder.network`, kept on each user), so the hot path adds no tuple and no lookup.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from loadkit.errors import ConfigError
from loadkit.load.schedule import Piece
from loadkit.profile.outcome import CAUSES, DETAILS
from loadkit.rundir.acks import AckLog, AckRecord
from loadkit.rundir.histogram import encode_sparse as encode_sparse
from loadkit.rundir.histogram import hdr_index as hdr_index

log = logging.getLogger("loadkit.load")

REQUEST: Final = "request"
ACTION: Final = "action"
#: the endpoint of action-level series
ANY_ENDPOINT: Final = "*"

#: a cell key: ``series << SERIES_SHIFT | instance << INSTANCE_SHIFT | network``
SERIES_SHIFT: Final = 16
INSTANCE_SHIFT: Final = 8
#: instances and network classes a run can name (index 0 of each: none)
MAX_NAMES: Final = 255
_LOW: Final = 0xFF

#: one cell on the wire: t, phase, journey, endpoint, level, counts[4], causes[7], lat, svc,
#: details, instance, network (histograms as flat [index, count, index, count, …] lists;
#: details ``[]`` when none were counted, else one count per DETAILS entry; instance and
#: network ``""`` when unknown)
CellRow = list[Any]


class Cell:
    """Counts and sparse histograms of one piece × series since the last drain."""

    __slots__ = ("causes", "details", "lat", "n", "svc")

    def __init__(self) -> None:
        self.n = [0, 0, 0, 0]
        self.causes = [0] * len(CAUSES)
        self.lat: dict[int, int] = {}
        self.svc: dict[int, int] = {}
        self.details: list[int] = []  # sized on the first detail: most cells never have one


class Recorder:
    """Counts of one process, drained into payloads (worker reports, or the local writer).

    Not thread-safe, and need not be: gevent runs one greenlet at a time and no method yields.
    """

    def __init__(self) -> None:
        self._series: list[tuple[str, str, str]] = []
        self._ids: dict[tuple[str, str, str], int] = {}
        self._dirty: set[Piece] = set()
        self._acks: list[AckRecord] = []
        #: this process's own acknowledgement log, written before each request leaves
        self.spill: AckLog | None = None
        #: the spill is in the run directory: what it holds need not travel to the master
        self.spill_in_run_dir = False
        self._instances: list[str] = [""]
        self._networks: list[str] = [""]

    def series(self, journey: str, endpoint: str, level: str) -> int:
        """The id of a series (created on first use), shifted to take an instance and a
        network (``sid | where``); ids key cells within a piece."""
        key = (journey, endpoint, level)
        sid = self._ids.get(key)
        if sid is None:
            sid = self._ids[key] = len(self._series) << SERIES_SHIFT
            self._series.append(key)
        return sid

    def instance(self, name: str) -> int:
        """The route of target instance ``name`` (``""``: unknown → 0), to OR into a key."""
        return _index(self._instances, name, "target instances") << INSTANCE_SHIFT

    def network(self, name: str | None) -> int:
        """The index of network class ``name`` (``None``: none → 0), to OR into a key."""
        return _index(self._networks, name or "", "network classes")

    def record(
        self, piece: Piece, key: int, outcome: int, cause: int, lat_us: int, svc_us: int
    ) -> None:
        """Count one finished request or action (``key``: its series id OR where it went;
        indexes into OUTCOMES and CAUSES, cause -1 when not busy) with its latency from the
        intended and from the actual send."""
        cells = piece.cells
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell()
            self._dirty.add(piece)
        cell.n[outcome] += 1
        if cause >= 0:
            cell.causes[cause] += 1
        hist = cell.lat
        index = hdr_index(lat_us)
        hist[index] = hist.get(index, 0) + 1
        hist = cell.svc
        index = hdr_index(svc_us)
        hist[index] = hist.get(index, 0) + 1

    def detail(self, piece: Piece, key: int, detail: int) -> None:
        """Count a detail (an index into DETAILS) of a busy answer :meth:`record` counted, e.g.
        ``tls`` for a ``connection`` failure; off the hot path (only failures have one)."""
        cells = piece.cells
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell()
            self._dirty.add(piece)
        if not cell.details:
            cell.details = [0] * len(DETAILS)
        cell.details[detail] += 1

    def unsent(self, piece: Piece, key: int) -> None:
        """Count one arrival that could not be sent (action level: no latency)."""
        cells = piece.cells
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell()
            self._dirty.add(piece)
        cell.n[3] += 1

    def sent(self, record: AckRecord) -> None:
        """A money movement's key is about to leave (``record``: its ``sent`` acknowledgement
        record): on disk in the spill before this returns, and in the next drain."""
        if self.spill is None or not self._spill(record):
            self._acks.append(record)

    def ack(self, record: AckRecord) -> None:
        """A money movement's final view (an acknowledgement record): into the spill at once,
        and into the next drain."""
        if self.spill is None or not self._spill(record):
            self._acks.append(record)

    def _spill(self, record: AckRecord) -> bool:
        """Write ``record`` to the spill; True when that spares sending it to the master."""
        assert self.spill is not None
        try:
            self.spill.write((record,))
        except OSError as exc:  # a full disk must not stop the load: the reports still carry it
            log.error("loadkit: acknowledgement log %s failed, stopped: %s", self.spill.path, exc)
            self.spill = None
            return False
        return self.spill_in_run_dir

    def drain(self) -> dict[str, Any]:
        """Everything since the last drain: ``{"cells": [CellRow…], "acks": [AckRecord…]}``."""
        rows: list[CellRow] = []
        series = self._series
        instances, networks = self._instances, self._networks
        for piece in self._dirty:
            cells, piece.cells = piece.cells, {}
            for key, cell in cells.items():
                journey, endpoint, level = series[key >> SERIES_SHIFT]
                rows.append(
                    [
                        piece.t,
                        piece.phase,
                        journey,
                        endpoint,
                        level,
                        cell.n,
                        cell.causes,
                        _flat(cell.lat),
                        _flat(cell.svc),
                        cell.details,
                        instances[(key >> INSTANCE_SHIFT) & _LOW],
                        networks[key & _LOW],
                    ]
                )
        self._dirty = set()
        acks, self._acks = self._acks, []
        return {"cells": rows, "acks": acks}


def _index(names: list[str], name: str, what: str) -> int:
    if not name:
        return 0
    try:
        return names.index(name)
    except ValueError:
        if len(names) > MAX_NAMES:
            raise ConfigError(f"a run can name at most {MAX_NAMES} {what}") from None
        names.append(name)
        return len(names) - 1


def _flat(hist: dict[int, int]) -> list[int]:
    flat: list[int] = []
    for index, count in hist.items():
        flat.append(index)
        flat.append(count)
    return flat
