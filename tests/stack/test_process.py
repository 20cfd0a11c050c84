"""ManagedProcess against real OS processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadkit.errors import ComponentFailed
from loadkit.stack.process import ManagedProcess, ProcessInfo, tail

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


@pytest.fixture
def sleeper(tmp_path: Path):
    proc = ManagedProcess.spawn("sleeper", SLEEPER, tmp_path / "sleeper.log")
    yield proc
    proc.terminate(timeout=2)


def test_spawn_signal_and_terminate(sleeper: ManagedProcess) -> None:
    assert sleeper.alive()
    assert sleeper.pause()
    sleeper.wait_ready(sleeper.stopped, timeout=5, what="stopped")
    assert sleeper.alive(), "a SIGSTOPped process is still alive"
    assert sleeper.resume()
    sleeper.wait_ready(lambda: not sleeper.stopped(), timeout=5, what="resumed")
    sleeper.terminate(timeout=5)
    assert not sleeper.alive()
    assert not sleeper.signal(15), "signalling a gone process reports False"


def test_terminate_a_paused_process(sleeper: ManagedProcess) -> None:
    sleeper.pause()
    sleeper.terminate(timeout=5)
    assert not sleeper.alive()


def test_kill_then_not_alive_even_as_zombie(sleeper: ManagedProcess) -> None:
    assert sleeper.kill()
    assert sleeper.wait_gone(5)


def test_found_again_from_manifest_info(sleeper: ManagedProcess) -> None:
    again = ManagedProcess.from_info(ProcessInfo.from_dict(sleeper.info.to_dict()))
    assert again.alive()
    again.terminate(timeout=5)
    assert not sleeper.alive()


def test_recycled_pid_is_not_ours(sleeper: ManagedProcess) -> None:
    info = ProcessInfo.from_dict(
        {**sleeper.info.to_dict(), "create_time": sleeper.info.create_time - 100}
    )
    stranger = ManagedProcess.from_info(info)
    assert not stranger.alive()
    assert not stranger.kill(), "never signal a process that only shares the pid"
    assert sleeper.alive()


def test_wait_ready_reports_exit_with_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess.spawn(
        "broken",
        [sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(7)"],
        tmp_path / "broken.log",
    )
    with pytest.raises(ComponentFailed) as err:
        proc.wait_ready(lambda: False, timeout=10)
    assert "broken failed: exited with code 7" in str(err.value)
    assert err.value.detail and "bad config line 3" in err.value.detail


def test_wait_ready_times_out(sleeper: ManagedProcess) -> None:
    with pytest.raises(ComponentFailed, match=r"not ready after 0.2s"):
        sleeper.wait_ready(lambda: False, timeout=0.2)


def test_missing_executable_is_a_component_failure(tmp_path: Path) -> None:
    with pytest.raises(ComponentFailed, match="could not execute"):
        ManagedProcess.spawn("ghost", [str(tmp_path / "nope")], tmp_path / "ghost.log")


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""
