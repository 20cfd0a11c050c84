"""Managed OS processes: spawn detached, find again from a manifest, signal, stop, read logs.

A :class:`ManagedProcess` is identified by pid *and* start time, so a recycled pid is never
signalled by mistake. Processes run in their own session so that ``loadkit stack up`` can return
while they keep running, and Ctrl-C in the terminal reaches loadkit, not them::

    proc = ManagedProcess.spawn("toxiproxy", ["toxiproxy-server", "-port", "8474"], log_path)
    proc.terminate()
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from loadkit.errors import ComponentFailed


@dataclass
class ProcessInfo:
    """What the stack manifest keeps about one process."""

    name: str
    pid: int
    create_time: float
    argv: list[str]
    log: str
    user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessInfo:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            argv=[str(a) for a in data["argv"]],
            log=str(data["log"]),
            user=data.get("user"),
        )


def tail(path: str | Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


#: Popen objects of the processes this Python process started, by pid: kept alive so that they
#: are reaped when they exit (and Popen's destructor never warns about a still-running child)
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class ManagedProcess:
    """One process loadkit started (or found again through the manifest)."""

    info: ProcessInfo
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    # -- starting ---------------------------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        on_spawn: Callable[[ProcessInfo], None] | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` detached (own session), stdout and stderr appended to ``log_path``.

        ``on_spawn`` is called with the new process's info before Ctrl-C or SIGTERM can
        interrupt: a caller that records it there (e.g. in a manifest) never loses a process
        to an interrupt that lands between the fork and the bookkeeping."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with _deferred_interrupts(), open(log_path, "ab") as log:
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,
                    user=user,
                    group=_primary_group(user) if user else None,
                    extra_groups=[] if user else None,
                )
            except OSError as exc:
                raise ComponentFailed(name, f"could not execute {argv[0]}: {exc}") from exc
            try:
                create_time = psutil.Process(popen.pid).create_time()
            except psutil.NoSuchProcess:
                create_time = 0.0
            info = ProcessInfo(name, popen.pid, create_time, list(argv), str(log_path), user)
            _CHILDREN[popen.pid] = popen
            if on_spawn is not None:
                on_spawn(info)
        return cls(info, popen)

    @classmethod
    def from_info(cls, info: ProcessInfo) -> ManagedProcess:
        return cls(info, _CHILDREN.get(info.pid))

    # -- state ------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def name(self) -> str:
        return self.info.name

    def _process(self) -> psutil.Process | None:
        self._reap()
        try:
            proc = psutil.Process(self.info.pid)
            if self.info.create_time and abs(proc.create_time() - self.info.create_time) > 0.5:
                return None  # the pid was recycled by another process
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.NoSuchProcess:
            return None

    def _reap(self) -> None:
        if self._popen is not None:
            if self._popen.poll() is not None:
                _CHILDREN.pop(self._popen.pid, None)
        else:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(self.info.pid, os.WNOHANG)

    def alive(self) -> bool:
        """True while the process exists (a stopped, SIGSTOPped process is alive)."""
        return self._process() is not None

    def stopped(self) -> bool:
        """True when the process is suspended by SIGSTOP."""
        proc = self._process()
        try:
            return proc is not None and proc.status() == psutil.STATUS_STOPPED
        except psutil.NoSuchProcess:
            return False

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.info.log, lines)

    def children(self) -> list[psutil.Process]:
        proc = self._process()
        if proc is None:
            return []
        try:
            return proc.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    # -- signals ----------------------------------------------------------------------------

    def signal(self, sig: int) -> bool:
        """Send ``sig``; False when the process is already gone."""
        proc = self._process()
        if proc is None:
            return False
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            return False
        return True

    def kill(self) -> bool:
        """SIGKILL: the crash a real server sees when the kernel's OOM killer picks it."""
        return self.signal(_signal.SIGKILL)

    def pause(self) -> bool:
        """SIGSTOP: the process hangs, its sockets stay open."""
        return self.signal(_signal.SIGSTOP)

    def resume(self) -> bool:
        """SIGCONT after :meth:`pause`."""
        return self.signal(_signal.SIGCONT)

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.02)
        return not self.alive()

    def terminate(self, timeout: float = 10.0, sig: int = _signal.SIGTERM) -> None:
        """Ask the process to stop with ``sig``; SIGKILL it (and its children) after ``timeout``."""
        children = self.children()
        if self.stopped():
            self.resume()  # a SIGSTOPped process cannot act on SIGTERM
        if self.signal(sig) and self.wait_gone(timeout):
            _kill_all(children)
            return
        _kill_all([*children, *([p] if (p := self._process()) else [])])
        self.wait_gone(5.0)

    def wait_ready(
        self,
        probe: Callable[[], bool],
        *,
        timeout: float,
        what: str = "ready",
        interval: float = 0.05,
    ) -> None:
        """Poll ``probe`` until it is true; raise :class:`ComponentFailed` with the log tail if the
        process dies first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                code = self.returncode()
                why = f"exited with code {code}" if code is not None else "exited"
                raise ComponentFailed(
                    self.name, f"{why} before it was {what}", log_tail=self.log_tail()
                )
            try:
                if probe():
                    return
            except Exception:  # a probe that raises just means "not yet"
                pass
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    self.name, f"not {what} after {timeout:g}s", log_tail=self.log_tail()
                )
            time.sleep(interval)


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on them as before. Only the main
    thread can set signal handlers; elsewhere signals are not delivered to Python anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous: dict[int, Any] = {
        sig: _signal.signal(sig, hold) for sig in (_signal.SIGINT, _signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)
        if pending:
            handler = previous[pending[0]]
            if callable(handler):
                handler(pending[0], None)  # e.g. raises KeyboardInterrupt
            elif handler == _signal.SIG_DFL:
                _signal.raise_signal(pending[0])


def _kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    with contextlib.suppress(psutil.Error):
        psutil.wait_procs(procs, timeout=5)


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid
