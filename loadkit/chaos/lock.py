"""One chaos controller per system: an exclusive lock held by whoever injects.

The lock is ``flock`` on a file: ``chaos.lock`` in a reference stack's directory, or
``<lock dir>/system-<name>.lock`` for a system file (:func:`loadkit.chaos.env.lock_dir`). The
kernel releases it when its holder dies, however it dies (a SIGKILLed controller never leaves it
held). The file keeps its last holder (pid, host, run directory), so a second controller is
refused naming the first, and a controller that finds an earlier run's faults still in place is
refused until ``loadkit chaos rollback`` has put them back: every "before" a fault records is
then the system's own baseline, never another run's fault::

    with ControllerLock(env.lock_path(), run_dir) as lock:   # ControllerBusy (exit 4) if held
        ...                                                   # inject, revert
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from loadkit.errors import SafetyAbort
from loadkit.rundir.events import FILENAME, outstanding, read_events


class ControllerBusy(SafetyAbort):
    """Another controller holds the system, or an earlier run left faults in place (exit 4)."""


class ControllerLock:
    """The lock of one system (see the module docstring). ``run_dir``: the holder's run."""

    def __init__(self, path: Path, run_dir: Path, *, what: str = "chaos run") -> None:
        self.path = path
        self.run_dir = run_dir.absolute()
        self.what = what
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self, *, check_previous: bool = True) -> None:
        """Take the lock now or raise :class:`ControllerBusy` naming its holder; then refuse
        when the previous holder's run still has faults injected (``check_previous``)."""
        if self.held:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise ControllerBusy(
                f"another chaos controller holds {self.path}: {describe(holder)}; one controller "
                "per system at a time (wait for it, or halt it: Ctrl-C or SIGTERM)"
            ) from None
        previous = _read(fd)
        try:
            if check_previous:
                _refuse_outstanding(previous, self.run_dir)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "run_dir": str(self.run_dir),
                "what": self.what,
                "since": round(time.time(), 3),
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Let the next controller in (the file keeps this holder, for its checks)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ControllerLock:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        found = json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def describe(holder: dict[str, Any]) -> str:
    """``pid 4242 on host ci-7, run directory reports/…`` (or what is known of it)."""
    if not holder:
        return "a process that has not said who it is yet"
    since = holder.get("since")
    when = f", since {time.strftime('%H:%M:%S', time.localtime(since))}" if since else ""
    return (
        f"{holder.get('what', 'chaos run')} pid {holder.get('pid', '?')} on host "
        f"{holder.get('host', '?')}, run directory {holder.get('run_dir', '?')}{when}"
    )


def _refuse_outstanding(previous: dict[str, Any], run_dir: Path) -> None:
    """An earlier run of this system with faults still injected: put them back first."""
    earlier = previous.get("run_dir")
    if not earlier or Path(str(earlier)) == run_dir:
        return
    left = outstanding(read_events(Path(str(earlier)) / FILENAME))
    if left:
        faults = ", ".join(f"{i.fault} ({i.type} on {i.target})" for i in left)
        raise ControllerBusy(
            f"an earlier chaos run left faults in place on this system: {faults}; put them back "
            f"first: loadkit chaos rollback {earlier}"
        )
