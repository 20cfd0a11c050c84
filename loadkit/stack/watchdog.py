"""A run's watchdog: what a run started dies with it, even when the run itself is SIGKILLed.

The watchdog is a small process of its own (its own session, so Ctrl-C in the terminal does
not reach it) that reads a pipe whose only writer is the process that owns the run. The owner
tells it what to look after (``stack DIR``: a stack the run started) and says ``done`` when it
has cleaned up itself. When the pipe ends *without* ``done`` — the owner died, however it died:
SIGKILL, the OOM killer, a crash — the watchdog:

1. asks every process whose output goes into the run directory (Locust, the run's own
   Toxiproxy, the stack's components) to stop, except the stack's, which go next;
2. stops each stack it was given (:meth:`ReferenceStack.down`: wallets, Toxiproxy, PostgreSQL
   with its data directory), as ``loadkit stack down`` would;
3. SIGKILLs whatever still writes into the run directory three seconds later;
4. marks ``run.json`` ``killed`` if it still said ``running``.

Why a pipe and not ``PR_SET_PDEATHSIG``: the parent-death signal follows the *thread* that
forked the child (a wallet restarted by the chaos controller's thread would die with that
thread), it is cleared when a child changes its credentials (PostgreSQL runs as another user
when loadkit runs as root), and it only reaches direct children (not PostgreSQL's backends).
A pipe's end is seen whatever killed its writer; the watchdog then stops things the way they
are normally stopped::

    dog = Watchdog.start(run_dir, run_dir / "logs" / "watchdog.log")
    dog.watch_stack(run_dir / "stack")
    ...                      # the run; if this process is killed, the watchdog cleans up
    dog.release()            # cleaned up ourselves: the watchdog exits and does nothing

Processes are found by where their standard output or error goes (``/proc/PID/fd/1`` and
``2``; :func:`processes_writing_into`): everything loadkit starts for a run logs into the run
directory, and a process found that way is one the run started, however far it got in
recording it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import psutil

#: how long processes asked to stop get before they are SIGKILLed
GRACE_S = 3.0
_DONE = "done"
_STACK = "stack "


def _writes_into(proc: psutil.Process, root: str) -> bool:
    """Whether ``proc``'s standard output or error is a file under ``root``."""
    for fd in (1, 2):
        try:
            target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
        except OSError:
            continue
        if target == root or target.startswith(root + os.sep):
            return True
    if not Path("/proc/self/fd").exists():  # not Linux: ask psutil for the open files
        with contextlib.suppress(psutil.Error):
            return any(
                f.path == root or f.path.startswith(root + os.sep) for f in proc.open_files()
            )
    return False


def processes_writing_into(directory: Path, *, exclude: Sequence[int] = ()) -> list[psutil.Process]:
    """Every live process whose standard output or error goes into ``directory`` (zombies and
    ``exclude`` left out)::

        processes_writing_into(Path("reports/20261128-193000-double11"))   # [] after a run
    """
    root = str(directory.absolute())
    skip = {os.getpid(), *exclude}
    found = []
    for proc in psutil.process_iter():
        if proc.pid in skip:
            continue
        with contextlib.suppress(psutil.Error):
            if _writes_into(proc, root) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


class Watchdog:
    """The owner's side: the pipe to a running watchdog process (see the module docstring)."""

    def __init__(self, popen: subprocess.Popen[bytes], pipe: IO[bytes]) -> None:
        self.popen = popen
        self._pipe: IO[bytes] | None = pipe

    @property
    def pid(self) -> int:
        return self.popen.pid

    @classmethod
    def start(cls, root: Path, log: Path) -> Watchdog:
        """Start a watchdog for the run directory ``root`` (its output goes to ``log``)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "loadkit.stack.watchdog", str(root.absolute())],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert popen.stdin is not None
        return cls(popen, popen.stdin)

    def _send(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(line.encode() + b"\n")
            self._pipe.flush()  # in the pipe now: it is read even if this process dies next
        except (BrokenPipeError, ValueError):
            self._pipe = None  # the watchdog is gone: nothing more to tell it

    def watch_stack(self, stack_dir: Path) -> None:
        """Stop the stack in ``stack_dir`` if the owner dies (before it starts: a stack
        killed half-way up is stopped too)."""
        self._send(_STACK + str(stack_dir.absolute()))

    def release(self, timeout: float = 5.0) -> None:
        """The owner cleaned up itself: the watchdog exits without doing anything."""
        self._send(_DONE)
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.close()
            self._pipe = None
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


# -- the watchdog process ---------------------------------------------------------------------


def _say(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} loadkit watchdog (pid {os.getpid()}): {text}", flush=True)


def _signal(procs: Sequence[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_STOPPED:
                proc.send_signal(signal.SIGCONT)  # a SIGSTOPped process cannot act on SIGTERM
            proc.send_signal(sig)


def stop_processes(procs: Sequence[psutil.Process], grace: float = GRACE_S) -> None:
    """SIGTERM, then SIGKILL to those still there after ``grace`` seconds."""
    _signal(procs, signal.SIGTERM)
    _, left = psutil.wait_procs(list(procs), timeout=grace)
    if left:
        _signal(left, signal.SIGKILL)
        psutil.wait_procs(left, timeout=5)


def clean_up(root: Path, stacks: Sequence[Path], *, grace: float = GRACE_S) -> None:
    """What the watchdog does once the owner is gone (see the module docstring)."""
    from loadkit.errors import LoadkitError, StackNotRunning
    from loadkit.stack.reference import ReferenceStack

    stack_pids: set[int] = set()
    attached: list[ReferenceStack] = []
    for stack_dir in stacks:
        with contextlib.suppress(StackNotRunning):
            stack = ReferenceStack.attach(stack_dir)
            attached.append(stack)
            for pid in stack.pids():  # a component and its own children (PostgreSQL's backends)
                stack_pids.add(pid)
                with contextlib.suppress(psutil.Error):
                    stack_pids.update(c.pid for c in psutil.Process(pid).children(recursive=True))
    # the load first (it would only see the stack go), its own Toxiproxy too
    others = [p for p in processes_writing_into(root) if p.pid not in stack_pids]
    if others:
        _say(f"stopping {len(others)} process(es) of the run: {[p.pid for p in others]}")
    _signal(others, signal.SIGTERM)
    for stack in attached:
        try:
            stopped = stack.down()
            _say(f"stack {stack.stack_dir} stopped: {', '.join(stopped) or 'nothing ran'}")
        except (LoadkitError, OSError) as exc:
            _say(f"stack {stack.stack_dir}: {exc}")
    psutil.wait_procs(others, timeout=grace)
    left = processes_writing_into(root)
    if left:
        _say(f"SIGKILL to {len(left)} process(es) still running: {[p.pid for p in left]}")
        _signal(left, signal.SIGKILL)
        psutil.wait_procs(left, timeout=5)
    _mark_killed(root)


def _mark_killed(root: Path) -> None:
    from loadkit.rundir import RunDir, RunStatus

    rd = RunDir(root)
    record = rd.read_json("run.json")
    if isinstance(record, dict) and record.get("status") == RunStatus.RUNNING:
        record.update(
            status=RunStatus.KILLED,
            reason="the run's process was killed; its watchdog stopped what the run had started",
            ended_at=time.time(),
        )
        rd.write_json("run.json", record)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadkit.stack.watchdog RUN_DIR``, the pipe on standard input."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m loadkit.stack.watchdog RUN_DIR", file=sys.stderr)
        return 2
    # the owner's Ctrl-C is the owner's business: only the end of the pipe counts here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = Path(args[0])
    stacks: list[Path] = []
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line == _DONE:
            return 0
        if line.startswith(_STACK):
            stacks.append(Path(line[len(_STACK) :]))
    _say(f"the run's process is gone; cleaning up {root}")
    clean_up(root, stacks)
    _say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
