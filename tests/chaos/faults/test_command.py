"""Command faults: a system file's inject/revert pair, run for real, reverted from the journal
alone, with the check and the timeout enforced."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loadkit.chaos.catalog import make_fault
from loadkit.chaos.env import SystemEnv
from loadkit.chaos.faults.command import Run
from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.stack.system import load_system


def _env(tmp_path: Path, revert: str = "[rm, -f, flag]", timeout: str = "5s") -> SystemEnv:
    path = tmp_path / "shop.yaml"
    path.write_text(
        "services:\n  shop: {url: 'http://127.0.0.1:1'}\n"
        "commands:\n"
        f"  flag-on: {{inject: [touch, flag], revert: {revert}, check: 'test ! -e flag', "
        f"timeout: {timeout}}}\n"
        "  slow: {inject: [sleep, '30'], revert: ['true'], timeout: 300ms}\n"
    )
    return SystemEnv(load_system(path), tag="t1")


def test_inject_revert_and_check(tmp_path: Path) -> None:
    env = _env(tmp_path)
    fault = make_fault(env, "command.run", "flag-on")
    assert fault.targets(env, "flag-on", {}) == ["command flag-on: touch flag (revert: rm -f flag)"]
    with fault:
        assert (tmp_path / "flag").exists()  # relative to the system file's folder
    assert not (tmp_path / "flag").exists()
    # from the journal alone (the system file may have changed since), and twice
    state = dict(fault.state)
    (tmp_path / "flag").touch()
    assert Run.restore(env, state) == "rm -f flag ran; check passed"
    assert Run.restore(env, state) == "rm -f flag ran; check passed"


def test_a_failing_check_or_a_timeout_is_a_failed_step(tmp_path: Path) -> None:
    env = _env(tmp_path, revert="['true']")
    fault = make_fault(env, "command.run", "flag-on")
    fault.state = fault.prepare()
    fault.apply(fault.state)
    with pytest.raises(EnvironmentProblem, match="check after the revert: test ! -e flag exited 1"):
        Run.restore(env, dict(fault.state))
    started = time.monotonic()
    slow = make_fault(env, "command.run", "slow")
    with pytest.raises(EnvironmentProblem, match=r"inject: sleep 30 did not finish within 0.3s"):
        slow.__enter__()
    assert time.monotonic() - started < 5
    with pytest.raises(ConfigError, match="no command named 'flag-of'; did you mean 'flag-on'"):
        make_fault(env, "command.run", "flag-of").prepare()
