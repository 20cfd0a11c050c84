"""The run directory (``reports/<run-id>/``): the contract between a run and everything that
reads it afterwards. docs/run-directory.md describes exactly what :class:`RunDir` owns.

Every file name lives here, once. Writers (the orchestrator, the Locust master, the chaos
controller, the integrity check, reports, the gate) and readers (reports, the gate, ``compare``,
the chaos probes, the live view) reach the files through a :class:`RunDir`::

    rd = RunDir.create(Path("reports"), "double11")     # reports/20261128-193000-double11
    rd.write_clock(t0=time.time(), duration_s=45.0)
    RunDir.open("reports/20261128-193000-double11").read_timeline().totals("action")

Modules: ``record`` (``run.json``: :class:`RunRecord`, :class:`RunStatus`, atomic JSON),
``timeline`` (the incremental reader), ``writer`` (the Locust master's timeline and acks
writer), ``acks`` (the acknowledgement log format), ``histogram`` (the latency histogram
format), ``events`` (the chaos journal, ``events.jsonl``), ``servercauses`` (the target's own
busy causes, ``server-causes.jsonl``).
Nothing here imports Locust, gevent, chaos, report or gate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from loadkit.errors import ConfigError
from loadkit.rundir.record import (
    RunRecord,
    RunStatus,
    iso,
    new_run_dir,
    read_json,
    settled_status,
    write_json,
)
from loadkit.rundir.timeline import Timeline

RUN: Final = "run.json"
RUN_CONFIG: Final = "run-config.json"
CLOCK: Final = "clock.json"
TIMELINE: Final = "timeline.jsonl"
#: the timeline's deltas as binary columns, for reports (loadkit.rundir.columns)
TIMELINE_COLS: Final = "timeline.cols"
ACKS: Final = "acks.bin"
#: the acknowledgement log of run directories written before ``loadkit.acks/v2`` (still read)
ACKS_JSONL: Final = "acks.jsonl"
#: each local load process's own acknowledgement log, written before each request leaves
ACKS_SPILL: Final = "acks.d"
EVENTS: Final = "events.jsonl"
PROFILE: Final = "profile.yaml"
SCENARIO: Final = "scenario.yaml"
INTEGRITY: Final = "integrity.json"
SECURITY: Final = "security.json"  # the wallet's security throttling during the run
GATE: Final = "gate.json"
REPORT_JSON: Final = "report.json"
REPORT_HTML: Final = "report.html"
SUMMARY_MD: Final = "summary.md"
JUNIT_XML: Final = "junit.xml"
LOCUST_CSV_PREFIX: Final = "locust"  # Locust's own --csv files: locust_stats.csv, …
LOCUST_STATS: Final = "locust_stats.csv"
LOGS: Final = "logs"
STACK: Final = "stack"  # the stack a run started for itself
WORKERS: Final = "workers.json"  # the Locust master: which worker ran which share, which were lost
SERVER_CAUSES: Final = "server-causes.jsonl"  # the target's own busy causes, scraped while it ran


def spill_name(role: str, share: int, pid: int) -> str:
    """The file name of a load process's own acknowledgement log (in ``acks.d/``, or in
    ``$LOADKIT_SPILL_DIR/loadkit-acks/<run id>/`` on a machine without the run directory)."""
    return f"{role}-{share}-{pid}.bin"


@dataclass(frozen=True)
class Clock:
    """``clock.json``: when the run clock started (Unix time) and how long the run lasts."""

    t0: float
    duration_s: float


class RunDir:
    """One run directory and every file in it, by name::

    rd = RunDir(path)
    rd.timeline, rd.acks, rd.events          # paths
    rd.read_record(), rd.read_clock()        # contents (None when not written yet)
    """

    #: every file a run directory may hold (docs/run-directory.md lists what writes each)
    FILES: ClassVar[tuple[str, ...]] = (
        RUN,
        RUN_CONFIG,
        CLOCK,
        TIMELINE,
        ACKS,
        ACKS_JSONL,
        ACKS_SPILL,
        EVENTS,
        PROFILE,
        SCENARIO,
        INTEGRITY,
        SECURITY,
        GATE,
        REPORT_JSON,
        REPORT_HTML,
        SUMMARY_MD,
        JUNIT_XML,
        WORKERS,
        SERVER_CAUSES,
    )

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def create(cls, out: Path, name: str) -> RunDir:
        """A new, empty ``out/<YYYYmmdd-HHMMSS>-<name>`` with its ``logs/``."""
        rd = cls(new_run_dir(out, name))
        rd.logs.mkdir()
        return rd

    @classmethod
    def open(cls, path: str | Path, what: str | None = None) -> RunDir:
        """An existing run directory, or a ``ConfigError`` (exit 2) naming the option
        (``what``, e.g. ``--baseline``) when ``path`` is not one."""
        rd = cls(path)
        label = f"{what} {path}" if what else str(path)
        if not rd.path.is_dir():
            raise ConfigError(f"{label}: not a run directory (no such directory)")
        if not rd.run_json.exists() and not rd.timeline.exists():
            raise ConfigError(f"{label}: not a run directory (no {RUN} and no {TIMELINE})")
        return rd

    def file(self, name: str) -> Path:
        return self.path / name

    # -- paths ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / RUN

    @property
    def run_config(self) -> Path:
        return self.path / RUN_CONFIG

    @property
    def clock(self) -> Path:
        return self.path / CLOCK

    @property
    def timeline(self) -> Path:
        return self.path / TIMELINE

    @property
    def timeline_cols(self) -> Path:
        return self.path / TIMELINE_COLS

    @property
    def acks(self) -> Path:
        return self.path / ACKS

    @property
    def acks_spill(self) -> Path:
        """``acks.d/``: one acknowledgement log per local load process (docs/integrity.md)."""
        return self.path / ACKS_SPILL

    def spill_file(self, role: str, share: int, pid: int) -> Path:
        """``acks.d/<role>-<share>-<pid>.bin``: one load process's own acknowledgement log."""
        return self.acks_spill / spill_name(role, share, pid)

    def ack_logs(self) -> list[Path]:
        """Every acknowledgement log of the run that exists: ``acks.bin`` (what the master
        wrote), then each load process's own log in ``acks.d/`` (what it wrote before sending);
        the ``.jsonl`` logs of older run directories too."""
        spills = [*self.acks_spill.glob("*.bin"), *self.acks_spill.glob("*.jsonl")]
        return [p for p in (self.acks, self.path / ACKS_JSONL) if p.exists()] + sorted(spills)

    @property
    def events(self) -> Path:
        return self.path / EVENTS

    @property
    def profile(self) -> Path:
        return self.path / PROFILE

    @property
    def scenario(self) -> Path:
        return self.path / SCENARIO

    @property
    def integrity(self) -> Path:
        return self.path / INTEGRITY

    @property
    def gate(self) -> Path:
        return self.path / GATE

    @property
    def report_json(self) -> Path:
        return self.path / REPORT_JSON

    @property
    def report_html(self) -> Path:
        return self.path / REPORT_HTML

    @property
    def summary_md(self) -> Path:
        return self.path / SUMMARY_MD

    @property
    def junit_xml(self) -> Path:
        return self.path / JUNIT_XML

    @property
    def locust_csv(self) -> Path:
        return self.path / LOCUST_CSV_PREFIX

    @property
    def locust_stats(self) -> Path:
        return self.path / LOCUST_STATS

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def stack(self) -> Path:
        return self.path / STACK

    @property
    def server_causes(self) -> Path:
        return self.path / SERVER_CAUSES

    def log(self, name: str) -> Path:
        """``logs/<name>.log``."""
        return self.logs / f"{name}.log"

    # -- contents ---------------------------------------------------------------------------

    def read_json(self, name: str) -> Any | None:
        """A JSON file of the run directory; None when it is missing or unreadable."""
        with contextlib.suppress(OSError, ValueError):
            return read_json(self.path / name)
        return None

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``name`` atomically (a killed writer never leaves half a file)."""
        path = self.path / name
        write_json(path, data)
        return path

    def read_record(self) -> dict[str, Any] | None:
        """``run.json`` (None before it exists); a ``running`` run whose process is gone reads
        ``killed`` (:func:`~loadkit.rundir.record.settled_status`), whoever looks."""
        data = self.read_json(RUN)
        return settled_status(data) if isinstance(data, dict) else None

    def write_record(self, record: RunRecord) -> None:
        self.write_json(RUN, record.to_dict())

    def read_clock(self) -> Clock | None:
        """``clock.json``, or None while the run clock has not started."""
        data: Any = self.read_json(CLOCK)
        try:
            return Clock(float(data["t0"]), float(data.get("duration_s") or 0.0))
        except (TypeError, KeyError, ValueError):
            return None

    def write_clock(self, *, t0: float, duration_s: float) -> Path:
        """``clock.json``: the moment the run clock starts (the one writer of this file)."""
        stamp = dt.datetime.fromtimestamp(t0, dt.UTC).isoformat(timespec="milliseconds")
        body = {"t0": t0, "t0_iso": stamp.replace("+00:00", "Z"), "duration_s": duration_s}
        return self.write_json(CLOCK, body)

    def write_workers(self, data: dict[str, Any]) -> Path:
        """``workers.json`` (schema ``loadkit.workers/v1``): shares and lost workers."""
        return self.write_json(WORKERS, {"schema": "loadkit.workers/v1", **data})

    def lost_workers(self) -> list[dict[str, Any]]:
        """The workers the master lost during the run (``workers.json``), oldest first."""
        data = self.read_json(WORKERS)
        lost = data.get("lost") if isinstance(data, dict) else None
        return [x for x in lost if isinstance(x, dict)] if isinstance(lost, list) else []

    def read_timeline(self) -> Timeline:
        """The whole timeline as it is now (an empty one when there is none)."""
        return Timeline.read(self.timeline) if self.timeline.exists() else Timeline()


__all__ = [
    "ACKS",
    "ACKS_JSONL",
    "ACKS_SPILL",
    "CLOCK",
    "EVENTS",
    "GATE",
    "INTEGRITY",
    "JUNIT_XML",
    "PROFILE",
    "REPORT_HTML",
    "REPORT_JSON",
    "RUN",
    "RUN_CONFIG",
    "SCENARIO",
    "SECURITY",
    "SERVER_CAUSES",
    "SUMMARY_MD",
    "TIMELINE",
    "TIMELINE_COLS",
    "WORKERS",
    "Clock",
    "RunDir",
    "RunRecord",
    "RunStatus",
    "Timeline",
    "iso",
    "new_run_dir",
    "read_json",
    "spill_name",
    "write_json",
]
