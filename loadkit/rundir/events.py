"""The chaos journal, ``events.jsonl`` in the run directory: every action before and after it acts.

Each line is one JSON object, written with one ``write`` and fsynced before the action it
announces goes on, so a controller killed at any moment leaves a journal that says what is still
injected and everything a revert needs (pids, proxy and toxic names, the previous policy…).
The first line is a header (schema ``loadkit.events/v1``); readers skip a torn line, and a
writer that finds the file ending in one (its last writer was killed mid-line) starts its first
record with a newline, so the torn line never swallows the record after it.

Events (``event`` key), all with ``t`` (run-clock seconds) and ``wall`` (Unix time):

- ``scenario.start`` / ``scenario.end`` (``status``, ``reason``);
- ``inject.begin`` (``id``, ``fault``, ``type``, ``target``, ``params``, ``intended_t``,
  ``state``) then ``inject.end`` (``result`` ``ok``/``error``, ``error``, ``state`` additions,
  ``took``);
- ``revert.begin`` (``id``, ``intended_t``, ``by``: ``controller``/``rollback``) then
  ``revert.end`` (``result``, ``detail`` or ``error``);
- ``probe`` (``stage`` before/after, ``ok``, ``results``), ``abort`` (``condition``,
  ``reason``), ``halt`` (``reason``), ``refused`` (``reason``).

::

    journal = Journal.create(run_dir / "events.jsonl", header={"run_id": "x", "t0": t0})
    journal.write("halt", reason="operator")
    outstanding(read_events(run_dir / "events.jsonl"))  # faults still injected
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "loadkit.events/v1"
FILENAME = "events.jsonl"  # loadkit.rundir.EVENTS (that module imports this one's package)


class Journal:
    """An append-only, fsynced JSON Lines file shared by the controller's threads."""

    def __init__(self, path: Path, t0: float) -> None:
        self.path = path
        self.t0 = t0
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        #: the file ends in a torn line (its writer was killed mid-line): the next record starts
        #: with a newline of its own, so the torn line never swallows it
        self._torn = _ends_torn(self._fd)
        self._seq = 0
        self.events: list[dict[str, Any]] = []

    @classmethod
    def create(cls, path: Path, *, t0: float, header: Mapping[str, Any]) -> Journal:
        """A new journal (or one appended to, e.g. by ``loadkit chaos rollback``)."""
        fresh = not path.exists() or path.stat().st_size == 0
        journal = cls(path, t0)
        if fresh:
            journal._append({"schema": SCHEMA, "t0": t0, **header})
        else:
            journal.events = [e for e in read_events(path) if "event" in e]
            journal._seq = max((int(e.get("seq", 0)) for e in journal.events), default=0)
        return journal

    def now(self) -> float:
        """Run-clock seconds."""
        return time.time() - self.t0

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event (flushed and fsynced before this returns)."""
        with self._lock:
            self._seq += 1
            wall = time.time()
            record = {"seq": self._seq, "event": event, "t": round(wall - self.t0, 4)}
            record.update(fields)
            record["wall"] = round(wall, 4)
            self._append(record)
            self.events.append(record)
            return record

    def _append(self, record: Mapping[str, Any]) -> None:
        text = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        line = (("\n" if self._torn else "") + text).encode()
        # one write per line: a reader never sees two lines interleaved
        written = os.write(self._fd, line)
        self._torn = written < len(line)  # a short write leaves a torn line: start afresh
        os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _ends_torn(fd: int) -> bool:
    """Whether the file behind ``fd`` is non-empty and does not end with a newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a journal (the header included); a torn last line is skipped."""
    events = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def header(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    for event in events:
        if event.get("schema") == SCHEMA:
            return dict(event)
    return {}


@dataclass
class Injected:
    """A fault the journal shows as injected and not (successfully) reverted."""

    id: str
    fault: str
    type: str
    target: str
    state: dict[str, Any] = field(default_factory=dict)
    injected_at: float = 0.0
    seq: int = 0


def outstanding(events: Iterable[Mapping[str, Any]]) -> list[Injected]:
    """Faults whose injection began and whose revert has not ended well, newest first (the
    order to revert them in)."""
    open_: dict[str, Injected] = {}
    for e in events:
        kind, fid = e.get("event"), str(e.get("id", ""))
        if kind == "inject.begin":
            open_[fid] = Injected(
                fid,
                str(e.get("fault", "")),
                str(e.get("type", "")),
                str(e.get("target", "")),
                dict(e.get("state") or {}),
                float(e.get("t", 0.0)),
                int(e.get("seq", 0)),
            )
        elif kind == "inject.end" and fid in open_:
            open_[fid].state.update(e.get("state") or {})
        elif kind == "revert.end" and fid in open_ and e.get("result") == "ok":
            del open_[fid]
    return sorted(open_.values(), key=lambda i: i.seq, reverse=True)
