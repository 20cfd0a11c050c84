"""Stacks left under a run directory by a run that was killed: `loadkit doctor` finds and stops
them (the CLI's `stack down --runs` is tested end to end in tests/run/test_run_e2e.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadkit.doctor import stale_stacks as doctor_check
from loadkit.rundir import RunDir, RunRecord
from loadkit.rundir.record import this_process
from loadkit.stack.reference import ReferenceStack, StackOptions
from loadkit.stack.stale import stale_stacks
from tests.support import loadkit


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_doctor_stops_a_stack_a_killed_run_left(scratch_root: Path, tmp_path: Path) -> None:
    runs = scratch_root / f"runs-{tmp_path.name}"
    run_dir = runs / "20260101-000000-killed"
    run_dir.mkdir(parents=True)
    record = RunRecord(run_id=run_dir.name, command=["loadkit", "run"], profile={}, target={})
    record.orchestrator = {**this_process(), "pid": _dead_pid()}
    RunDir(run_dir).write_record(record)
    stack = ReferenceStack.up(run_dir / "stack", StackOptions(instances=1, users=2, merchants=1))
    try:
        (found,) = stale_stacks(runs)
        assert (found.run_status, found.alive) == ("killed", True)
        assert stale_stacks(scratch_root / "nowhere") == []
        # a run still going is not stale
        record.orchestrator = this_process()
        RunDir(run_dir).write_record(record)
        assert stale_stacks(runs) == []
        record.orchestrator = {**this_process(), "pid": _dead_pid()}
        RunDir(run_dir).write_record(record)

        check = doctor_check(runs)
        assert check.ok and f"stopped {run_dir / 'stack'}" in check.detail, check
        assert "postgres" in check.detail and "its run: killed" in check.detail
        assert not stack.any_alive()
        assert stale_stacks(runs) == []
        again = loadkit("doctor", "--json", "--runs", str(runs))
        rows = {c["name"]: c for c in json.loads(again.stdout)}
        assert rows["stale run stacks"]["detail"] == f"none under {runs}"
    finally:
        stack.down()
