"""Run directories: where one run's files go, and ``run.json`` (docs/run-directory.md).

Every write is atomic (temp file + rename), so a run killed at any moment leaves a readable
``run.json``::

    run_dir = new_run_dir(Path("reports"), "double11")
    record = RunRecord(run_id=run_dir.name, ...); write_json(run_dir / "run.json", record.to_dict())
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadkit import __version__

RUN_SCHEMA = "loadkit.run/v1"
CONFIG_SCHEMA = "loadkit.run-config/v1"


class RunStatus:
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"
    INVALID = "invalid"
    FAILED = "failed"
    #: the run's process died without writing its end (SIGKILL, the OOM killer, a crash): a
    #: ``running`` record whose orchestrator is gone reads this way (:func:`settled_status`)
    KILLED = "killed"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_dir(out: Path, name: str) -> Path:
    """``out/<YYYYmmdd-HHMMSS>-<name>``, made unique with a suffix when needed."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "run"
    out.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = out / (f"{stamp}-{safe}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate.absolute()
    raise RuntimeError(f"cannot create a run directory in {out}")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def this_process() -> dict[str, Any]:
    """Who writes the record: ``pid``, its ``create_time`` (a recycled pid is not the run) and
    ``host`` (a pid means nothing on another machine)."""
    import psutil

    pid = os.getpid()
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    return {"pid": pid, "create_time": created, "host": socket.gethostname()}


def orchestrator_gone(info: Any) -> bool:
    """Whether the process ``info`` (:func:`this_process`'s form) is known to be gone: on this
    host, no process with that pid and start time. False when it cannot tell (another host, no
    such record)."""
    import psutil

    if not isinstance(info, dict) or info.get("host") != socket.gethostname():
        return False
    pid, created = info.get("pid"), info.get("create_time")
    if not isinstance(pid, int):
        return False
    try:
        proc = psutil.Process(pid)
        if isinstance(created, int | float) and abs(proc.create_time() - created) > 0.5:
            return True  # the pid belongs to another process now
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def settled_status(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (``run.json``) as it stands: a ``running`` run whose orchestrator is gone was
    killed (``status: killed``, with a reason); anything else as it is::

        settled_status({"status": "running", "orchestrator": {"pid": 4711, ...}})["status"]
        # 'killed' once pid 4711 is gone
    """
    if record.get("status") != RunStatus.RUNNING or not orchestrator_gone(
        record.get("orchestrator")
    ):
        return record
    pid = record["orchestrator"]["pid"]
    return {
        **record,
        "status": RunStatus.KILLED,
        "reason": f"the run's process (pid {pid}) ended without finishing the run: killed",
    }


def environment_facts() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


@dataclass
class RunRecord:
    """``run.json``: what ran, against what, when, and how it ended."""

    run_id: str
    command: list[str]
    profile: dict[str, Any]
    target: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    clock_t0: float | None = None
    status: str = RunStatus.RUNNING
    reason: str | None = None
    scenario: dict[str, Any] | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    locust_totals: dict[str, Any] = field(default_factory=dict)
    workers: int = 0
    #: where the Locust master listened for workers (``bind``, ``port``); None without workers
    master: dict[str, Any] | None = None
    #: Locust workers lost during the run (from ``workers.json``)
    lost_workers: list[dict[str, Any]] = field(default_factory=list)
    #: the process running the run (``pid``, ``create_time``, ``host``): while the record says
    #: ``running`` and that process is gone, the run was killed
    orchestrator: dict[str, Any] = field(default_factory=this_process)
    environment: dict[str, Any] = field(default_factory=environment_facts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            schema=RUN_SCHEMA,
            loadkit_version=__version__,
            started_at_iso=iso(self.started_at),
            ended_at_iso=iso(self.ended_at),
            clock_t0_iso=iso(self.clock_t0),
        )
        return data
