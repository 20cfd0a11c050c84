"""``server-causes.jsonl``: the busy answers the target counted itself, by its own cause, scraped
from its metrics while the run went (docs/run-directory.md).

The first line is a header naming the schema and where the counts come from; every further line
is one instance's busy answers by cause in the run-clock interval ``[t - dt, t)`` (a line only
when the counters moved; an instance whose counters went back — a restart — starts again from
its new values)::

    writer = ServerCausesWriter(rd.server_causes, source="reference wallet /metrics",
                                groups={"db_pool_timeout": "pool wait"})
    writer.add(t=12.0, dt=1.0, instance="wallet-1", busy={"db_pool_timeout": 3})
    header, lines = read_server_causes(rd.server_causes)
    lines[0].busy          # {"db_pool_timeout": 3}
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SCHEMA: Final = "loadkit.server-causes/v1"


@dataclass(frozen=True)
class CauseLine:
    """One instance's busy answers by cause in run-clock ``[t - dt, t)``."""

    t: float
    dt: float
    instance: str
    busy: dict[str, int]

    @property
    def mid(self) -> float:
        """The interval's middle: where the counts are placed on the run clock."""
        return self.t - self.dt / 2


class ServerCausesWriter:
    """Appends lines (thread-safe; each line flushed, so a killed run keeps what it saw)."""

    def __init__(self, path: Path, *, source: str, groups: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh = path.open("a", encoding="utf-8")
        if self._fh.tell() == 0:
            header = {"schema": SCHEMA, "source": source, "groups": dict(groups or {})}
            self._fh.write(json.dumps(header) + "\n")
            self._fh.flush()

    def add(self, *, t: float, dt: float, instance: str, busy: Mapping[str, int]) -> None:
        counts = {c: int(n) for c, n in busy.items() if n}
        if not counts:
            return
        line = {"t": round(t, 3), "dt": round(dt, 3), "instance": instance, "busy": counts}
        with self._lock:
            if not self._fh.closed:
                self._fh.write(json.dumps(line) + "\n")
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_server_causes(path: Path) -> tuple[dict[str, Any], list[CauseLine]] | None:
    """The header and the lines (a torn or malformed line is skipped); ``None`` without a
    readable file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    header: dict[str, Any] = {}
    lines: list[CauseLine] = []
    for raw in text.splitlines():
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if data.get("schema") == SCHEMA:
            header = data
            continue
        try:
            busy = {str(c): int(n) for c, n in (data.get("busy") or {}).items()}
            lines.append(
                CauseLine(float(data["t"]), float(data.get("dt", 1.0)), str(data["instance"]), busy)
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    if not header and not lines:
        return None
    return header, lines
