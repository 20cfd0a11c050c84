"""``loadkit export`` as a user runs it (a real subprocess): JSON lines equal to the records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadkit.rundir import RunDir
from loadkit.rundir.acks import AckLog, ack_record, read_records
from tests.support import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadkit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def _run_dir(tmp_path: Path) -> RunDir:
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.run_json.write_text(json.dumps({"run_id": "run", "status": "completed"}))
    master = AckLog(rd.acks)
    spill = AckLog(rd.acks_spill / "worker-0-42.bin")
    for i in range(50):
        line = {"t": i / 10, "journey": "pay", "kind": "payment", "key": f"lk-ab-0-{i}"}
        line.update(account=i, amount=100 + i, view="sent")
        (master if i % 2 else spill).write([ack_record(line)])
        line.update(view="acknowledged" if i % 3 else "unknown", status=201 if i % 3 else None)
        (master if i % 2 else spill).write([ack_record(line)])
    spill.write([ack_record({"t": 9.0, "key": "in-flight", "view": "sent", "amount": 1.5})])
    master.close()
    spill.close()
    rd.timeline.write_text(
        '{"schema":"loadkit.timeline/v1","latency_unit":"us"}\n{"t":0,"n":{"ok":1}}\n{"t":1,'
    )
    return rd


def test_export_writes_every_record_of_every_log(tmp_path: Path) -> None:
    rd = _run_dir(tmp_path)
    out = _cli("export", str(rd.path))
    assert out.returncode == 0, out.stderr
    exported = [json.loads(line) for line in out.stdout.splitlines()]
    expected = [r for path in rd.ack_logs() for r in read_records(path)]
    assert exported == expected and len(exported) == 51
    assert {r["view"] for r in exported} == {"acknowledged", "unknown", "sent"}
    assert exported[0] == {
        "t": 0.1,
        "journey": "pay",
        "kind": "payment",
        "key": "lk-ab-0-1",
        "account": 1,
        "from": None,
        "to": None,
        "amount": 101,
        "view": "acknowledged",
        "status": 201,
        "transaction_id": None,
    }


def test_export_of_the_timeline_to_a_file(tmp_path: Path) -> None:
    rd = _run_dir(tmp_path)
    target = tmp_path / "timeline.jsonl"
    out = _cli("export", str(rd.path), "--what", "timeline", "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert target.read_text() == '{"t":0,"n":{"ok":1}}\n'  # no header, no torn line


def test_export_of_what_is_not_a_run_directory_exits_2(tmp_path: Path) -> None:
    out = _cli("export", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "not a run directory" in out.stderr
    rd = _run_dir(tmp_path)
    out = _cli("export", str(rd.path), "-o", str(tmp_path / "no" / "such" / "dir" / "x"))
    assert out.returncode == 2 and "cannot write" in out.stderr
