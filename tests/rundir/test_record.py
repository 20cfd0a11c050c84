"""``run.json``: a ``running`` record whose process is gone reads ``killed``, whoever reads it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from loadkit.rundir import RunDir, RunRecord, RunStatus
from loadkit.rundir.record import orchestrator_gone, settled_status, this_process


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_record_names_its_orchestrator() -> None:
    record = RunRecord(run_id="r", command=["loadkit"], profile={}, target={}).to_dict()
    assert record["orchestrator"] == this_process()
    assert not orchestrator_gone(record["orchestrator"])


def test_a_running_record_whose_process_is_gone_reads_killed(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    record = RunRecord(run_id="r", command=["loadkit"], profile={}, target={})
    rd.write_record(record)
    assert rd.read_record()["status"] == RunStatus.RUNNING  # type: ignore[index]
    pid = _dead_pid()
    record.orchestrator = {**this_process(), "pid": pid}
    rd.write_record(record)
    read = rd.read_record()
    assert read is not None and read["status"] == RunStatus.KILLED == "killed"
    assert f"pid {pid}" in read["reason"]
    # a finished run stays as it ended
    record.status = RunStatus.COMPLETED
    rd.write_record(record)
    assert rd.read_record()["status"] == "completed"  # type: ignore[index]


def test_a_recycled_pid_or_another_host() -> None:
    me = this_process()
    recycled = {**me, "create_time": me["create_time"] - 1000}
    assert orchestrator_gone(recycled), "the pid belongs to another process now"
    elsewhere = {**me, "pid": _dead_pid(), "host": socket.gethostname() + "-other"}
    assert not orchestrator_gone(elsewhere), "cannot tell for another machine"
    assert settled_status({"status": "running"})["status"] == "running"  # an old record
