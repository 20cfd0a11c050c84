"""One controller per system: the lock names its holder, dies with it, and keeps a controller
away from a system an earlier run left faults in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loadkit.chaos.lock import ControllerBusy, ControllerLock
from loadkit.rundir.events import Journal, outstanding, read_events
from loadkit.stack.reference import ReferenceStack
from tests.support import ROOT, loadkit, spawn_loadkit

HOLD = """
import sys, time
from pathlib import Path
from loadkit.chaos.lock import ControllerLock
ControllerLock(Path(sys.argv[1]), Path(sys.argv[2])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(lock: Path, run_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(lock), str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_controller_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "system-shop.lock"
    first = tmp_path / "run-a"
    proc = _holder(path, first)
    try:
        with pytest.raises(ControllerBusy) as caught:
            ControllerLock(path, tmp_path / "run-b").acquire()
        message = caught.value.message
        assert f"pid {proc.pid} on host {socket.gethostname()}" in message
        assert f"run directory {first}" in message and str(path) in message
        assert caught.value.exit_code == 4
    finally:
        proc.send_signal(signal.SIGKILL)  # however it dies, the kernel lets go of the lock
        proc.communicate()
    with ControllerLock(path, tmp_path / "run-b") as lock:
        assert lock.held
    assert not lock.held


def test_an_earlier_run_with_faults_left_in_place_keeps_controllers_away(tmp_path: Path) -> None:
    path = tmp_path / "chaos.lock"
    earlier = tmp_path / "run-a"
    earlier.mkdir()
    journal = Journal.create(earlier / "events.jsonl", t0=time.time(), header={})
    journal.write("inject.begin", id="f01", fault="ro", type="postgres.read-only", target="pg")
    with ControllerLock(path, earlier):
        pass  # run-a held the lock, then was killed with its fault in place
    with pytest.raises(
        ControllerBusy, match=f"put them back first: loadkit chaos rollback {earlier}"
    ):
        ControllerLock(path, tmp_path / "run-b").acquire()
    with ControllerLock(path, earlier) as again:  # its own rollback may go ahead
        assert again.held
    rollback = ControllerLock(path, tmp_path / "run-c", what="chaos rollback")
    rollback.acquire(check_previous=False)
    rollback.release()
    journal.write("revert.end", id="f01", result="ok")
    journal.close()
    with ControllerLock(path, tmp_path / "run-b") as lock:  # put back: free for the next one
        assert lock.held


def test_two_controllers_on_one_stack(stack: ReferenceStack, tmp_path: Path) -> None:
    """The maintenance bug of two controllers: the second is refused (exit 4, naming the
    first), so it never records the first one's window as its "before"; nothing stays on."""
    first = tmp_path / "first.yaml"
    first.write_text(
        "name: first\nsteady_state: {before: false, after: false}\nfaults:\n"
        "  - {name: window, type: wallet.maintenance, at: 500ms, duration: 4s}\n"
    )
    second = tmp_path / "second.yaml"
    second.write_text(
        "name: second\nsteady_state: {before: false, after: false}\nfaults:\n"
        "  - {name: window-too, type: wallet.maintenance, at: 500ms, duration: 2s}\n"
    )
    where = ("--stack-dir", str(stack.stack_dir), "--no-dashboard")
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    proc = spawn_loadkit(
        "chaos", "run", str(first), *where, "--out", str(out_a),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(
            e.get("event") == "inject.end"
            for d in (out_a.iterdir() if out_a.exists() else [])
            for e in read_events(d / "events.jsonl")
        ):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        (run_a,) = list(out_a.iterdir())
        refused = loadkit("chaos", "run", str(second), *where, "--out", str(out_b))
        assert refused.returncode == 4, refused.stdout + refused.stderr
        text = " ".join(refused.stderr.split())
        assert "another chaos controller holds" in text and f"pid {proc.pid} " in text
        assert str(run_a) in text
        assert {s["maintenance"]["enabled"] for s in stack.admin.state()} == {True}
        (run_b,) = list(out_b.iterdir())
        assert not (run_b / "events.jsonl").exists()  # nothing injected, nothing journaled
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert {s["maintenance"]["enabled"] for s in stack.admin.state()} == {False}
    assert outstanding(read_events(run_a / "events.jsonl")) == []
