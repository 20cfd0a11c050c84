"""The journal: one fsynced JSON line per event, readable after a kill, and the faults it shows
as still injected."""

from __future__ import annotations

import json
import time
from pathlib import Path

from loadkit.rundir.events import SCHEMA, Journal, header, outstanding, read_events


def test_each_event_is_one_complete_line_with_run_clock_time(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    t0 = time.time() - 10
    journal = Journal.create(path, t0=t0, header={"run_id": "r1", "stack_dir": "/s"})
    record = journal.write("inject.begin", id="f01", fault="a", intended_t=9.9, state={"pid": 1})
    assert 9.9 < record["t"] < 11 and record["seq"] == 1
    lines = path.read_text().splitlines()  # on disk already: written and fsynced per line
    assert json.loads(lines[0]) == {"schema": SCHEMA, "t0": t0, "run_id": "r1", "stack_dir": "/s"}
    assert json.loads(lines[1])["state"] == {"pid": 1}
    journal.close()
    reopened = Journal.create(path, t0=t0, header={"ignored": True})  # appends, no new header
    assert reopened.write("halt", reason="x")["seq"] == 2
    reopened.close()
    assert header(read_events(path))["run_id"] == "r1"


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"schema": "loadkit.events/v1", "t0": 1}\n{"seq": 1, "event": "inj')
    assert read_events(path) == [{"schema": "loadkit.events/v1", "t0": 1}]
    assert read_events(tmp_path / "missing.jsonl") == []


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    """A controller killed mid-line, then ``loadkit chaos rollback`` appending: the newline goes
    first, so the rollback's records (and the injection before the tear) are all read."""
    path = tmp_path / "events.jsonl"
    journal = Journal.create(path, t0=1.0, header={"run_id": "r"})
    journal.write("inject.begin", id="f01", fault="a", type="t", target="x", state={})
    journal.close()
    with path.open("a") as fh:
        fh.write('{"seq": 2, "event": "revert.be')  # the killed controller's last, torn line
    again = Journal.create(path, t0=1.0, header={})
    again.write("rollback.begin", pid=1)
    again.write("revert.end", id="f01", result="ok")
    again.close()
    kinds = [e.get("event") for e in read_events(path)]
    assert kinds == [None, "inject.begin", "rollback.begin", "revert.end"]
    assert outstanding(read_events(path)) == []
    assert path.read_text().endswith("}\n")


def test_outstanding_faults_newest_first_with_their_state() -> None:
    events = [
        {
            "seq": 1,
            "event": "inject.begin",
            "id": "f01",
            "fault": "a",
            "type": "x.y",
            "state": {"p": 1},
        },
        {"seq": 2, "event": "inject.end", "id": "f01", "result": "ok", "state": {"q": 2}},
        {"seq": 3, "event": "inject.begin", "id": "f02", "fault": "b", "type": "x.y", "state": {}},
        {"seq": 4, "event": "inject.end", "id": "f02", "result": "error", "error": "half done"},
        {"seq": 5, "event": "inject.begin", "id": "f03", "fault": "c", "type": "x.y", "state": {}},
        {"seq": 6, "event": "revert.end", "id": "f03", "result": "ok"},
        {"seq": 7, "event": "revert.end", "id": "f01", "result": "error", "error": "busy"},
    ]
    found = outstanding(events)
    # a failed injection may have half-acted; a failed revert must be retried
    assert [(i.fault, i.state) for i in found] == [("b", {}), ("a", {"p": 1, "q": 2})]


def test_the_public_surface_is_importable_from_loadkit_chaos() -> None:
    import loadkit.chaos as chaos

    missing = [name for name in chaos.__all__ if not hasattr(chaos, name)]
    assert missing == []
    assert {"Controller", "load_scenario", "make_fault", "rollback_run"} <= set(chaos.__all__)
