"""Rollback from the journal: revert every fault it shows as still injected, newest first.

The controller runs this as its last step whatever happened (normal end, exception, Ctrl-C,
SIGTERM, abort); ``loadkit chaos rollback RUN_DIR`` runs it after the controller itself was
killed. Both use only what the journal recorded, through each fault type's idempotent
:meth:`~loadkit.chaos.faults.base.Fault.restore`::

    result = rollback_run(Path("reports/20261111-000000-gameday"))
    assert result.ok, result.failed
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.env import env_from_journal
from loadkit.chaos.faults.base import ChaosEnv
from loadkit.chaos.lock import ControllerLock
from loadkit.errors import ConfigError
from loadkit.rundir.events import FILENAME, Journal, header, outstanding, read_events


@dataclass
class RollbackResult:
    """What a rollback reverted, and what it could not (fault name → error)."""

    reverted: list[tuple[str, str]] = field(default_factory=list)  # (fault, detail)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


#: rollback order by backend: links and the database first, then processes (a restarted wallet
#: waits until it is ready, which needs its database), then the wallets' admin state
ORDER = {"network": 0, "postgres": 1, "process": 2, "container": 2, "wallet": 3, "command": 4}


def revert_outstanding(journal: Journal, env: ChaosEnv, *, by: str) -> RollbackResult:
    """Revert every fault ``journal`` shows as still injected (by backend, see :data:`ORDER`,
    newest first within one); journal each revert."""
    result = RollbackResult()
    pending = outstanding(journal.events)  # newest first; sorted() keeps that order within ranks
    for item in sorted(pending, key=lambda i: ORDER.get(i.type.split(".", 1)[0], 2)):
        kind = FAULTS.get(item.type)
        journal.write("revert.begin", id=item.id, fault=item.fault, by=by, intended_t=None)
        started = time.monotonic()
        try:
            if kind is None:
                raise ConfigError(f"unknown fault type {item.type!r}: cannot revert it")
            detail = kind.fault.restore(env, item.state)
        except Exception as exc:  # one failed revert must not stop the others
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            journal.write("revert.end", id=item.id, result="error", error=message, by=by)
            result.failed.append((item.fault, message))
            continue
        took = round(time.monotonic() - started, 4)
        journal.write("revert.end", id=item.id, result="ok", detail=detail, by=by, took=took)
        result.reverted.append((item.fault, detail))
    return result


def controller_alive(info: dict[str, object]) -> int | None:
    """The pid of the controller that wrote the journal, if that very process still runs."""
    pid, started = info.get("controller_pid"), info.get("controller_started")
    if not isinstance(pid, int):
        return None
    try:
        proc = psutil.Process(pid)
        if isinstance(started, int | float) and abs(proc.create_time() - started) > 0.5:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return pid


def rollback_run(
    run_dir: Path,
    *,
    stack_dir: Path | None = None,
    system: Path | None = None,
    force: bool = False,
) -> RollbackResult:
    """Revert what the journal in ``run_dir`` shows as still injected, on the environment the
    journal names (the reference stack, or the system file; ``stack_dir``/``system`` instead).

    Refuses (``ConfigError``) while the controller that wrote it still runs, unless ``force``:
    two processes reverting the same faults would fight over them. Holds the system's lock
    while it reverts (:class:`~loadkit.chaos.lock.ControllerBusy`, exit 4, when another
    controller holds it)."""
    path = run_dir / FILENAME
    events = read_events(path)
    if not events:
        raise ConfigError(f"{path}: no chaos journal here (is {run_dir} a run directory?)")
    info = header(events)
    pid = controller_alive(info)
    if pid is not None and not force:
        raise ConfigError(
            f"the controller of this run is still running (pid {pid}); halt it (Ctrl-C or "
            "SIGTERM: it rolls back itself), or pass --force"
        )
    if not outstanding(events):
        return RollbackResult()
    env = env_from_journal(info, stack_dir=stack_dir, system=system)
    lock = ControllerLock(env.lock_path(), run_dir, what="chaos rollback")
    if not force:
        lock.acquire(check_previous=False)
    journal = Journal.create(path, t0=float(info.get("t0") or time.time()), header={})
    try:
        journal.write("rollback.begin", pid=os.getpid())
        result = revert_outstanding(journal, env, by="rollback")
        journal.write(
            "rollback.end",
            reverted=[f for f, _ in result.reverted],
            failed=[f for f, _ in result.failed],
        )
    finally:
        env.close()
        journal.close()
        lock.release()
    return result


def rollback_hint(run_dir: Path) -> str | None:
    """When the journal in ``run_dir`` shows faults still injected: what they are and the exact
    command that puts them back (printed whenever a run exits like that); else None."""
    left = outstanding(read_events(run_dir / FILENAME))
    if not left:
        return None
    faults = ", ".join(f"{i.fault} ({i.type} on {i.target})" for i in left)
    return (
        f"faults still in place: {faults} — put them back with: "
        f"loadkit chaos rollback {shlex.quote(str(run_dir))}"
    )
