"""``timeline.jsonl``, ``acks.bin`` and ``clock.json`` as docs/run-directory.md defines them,
merged from several workers and read back by the report side."""

from __future__ import annotations

import json
from pathlib import Path

from loadkit.load.recorder import ACTION, ANY_ENDPOINT, REQUEST, Recorder
from loadkit.load.schedule import Piece
from loadkit.profile.outcome import BUSY, CAUSES, NO_CAUSE, OK, TLS_FAILED, Cause
from loadkit.rundir import RunDir
from loadkit.rundir.acks import ack_record, read_records
from loadkit.rundir.histogram import decode
from loadkit.rundir.timeline import Timeline
from loadkit.rundir.writer import RunWriter

TIMEOUT = CAUSES.index(Cause.TIMEOUT)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def worker_payload(latencies: list[int], busy: int = 0) -> dict[str, object]:
    recorder = Recorder()
    piece = Piece(42, "midnight-spike", 3, 42.0, 43.0)
    sid = recorder.series("p2p_transfer", "POST /v1/transfers", REQUEST)
    for lat in latencies:
        recorder.record(piece, sid, OK, NO_CAUSE, lat, lat // 2)
    for _ in range(busy):
        recorder.record(piece, sid, BUSY, TIMEOUT, 5_000_000, 5_000_000)
    recorder.unsent(piece, recorder.series("p2p_transfer", ANY_ENDPOINT, ACTION))
    recorder.ack(ack_record({"t": 1.0, "key": "lk-1", "view": "acknowledged"}))
    return recorder.drain()


def test_workers_payloads_merge_into_one_delta_per_key(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path)
    writer.add(worker_payload([1000, 2000, 3000]))
    writer.add(worker_payload([4000], busy=2))
    writer.close()
    header, *rows = lines(tmp_path / "timeline.jsonl")
    assert header == {"schema": "loadkit.timeline/v2", "latency_unit": "us"}
    request, action = sorted(rows, key=lambda r: str(r["level"]), reverse=True)
    assert {k: request[k] for k in ("t", "phase", "journey", "endpoint", "level")} == {
        "t": 42,
        "phase": "midnight-spike",
        "journey": "p2p_transfer",
        "endpoint": "POST /v1/transfers",
        "level": "request",
    }
    assert request["n"] == {"ok": 4, "rejected": 0, "busy": 2, "unsent": 0}
    assert request["busy"] == {"timeout": 2}  # causes with 0 are left out
    assert request["lat"].startswith("sparse:")  # pairs, not hdrhistogram's own encoding
    lat = decode(request["lat"])
    assert lat.get_total_count() == 6
    assert 4000 <= lat.get_value_at_percentile(60) <= 4100
    assert decode(request["svc"]).get_value_at_percentile(1) <= 510
    assert action["endpoint"] == "*" and action["n"] == {
        "ok": 0,
        "rejected": 0,
        "busy": 0,
        "unsent": 2,
    }
    assert "lat" not in action and action["busy"] == {}
    acks = list(read_records(tmp_path / "acks.bin"))
    assert [(a["key"], a["view"]) for a in acks] == [("lk-1", "acknowledged")] * 2


def test_deltas_add_up_across_flushes_and_reopening(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path)
    writer.add(worker_payload([1000]))
    writer.flush()
    writer.flush()  # nothing new: nothing written
    writer.close()
    again = RunWriter(tmp_path)  # appending to an existing file: no second header
    again.add(worker_payload([2000, 3000], busy=1))
    again.close()
    text = (tmp_path / "timeline.jsonl").read_text()
    assert text.count("schema") == 1 and len(text.splitlines()) == 5
    timeline = Timeline.read(tmp_path / "timeline.jsonl")
    total = timeline.totals("request")
    assert total.n == {"ok": 3, "rejected": 0, "busy": 1, "unsent": 0}
    assert total.busy == {"timeout": 1} and total.busy_rate == 0.25
    assert total.lat is not None and total.lat.get_total_count() == 4
    assert timeline.totals("action").count("unsent") == 2


def test_clock_json(tmp_path: Path) -> None:
    path = RunDir(tmp_path).write_clock(t0=1764358200.25, duration_s=492.0)
    assert json.loads(path.read_text()) == {
        "t0": 1764358200.25,
        "t0_iso": "2025-11-28T19:30:00.250Z",
        "duration_s": 492.0,
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_busy_details_are_written_only_where_counted(tmp_path: Path) -> None:
    recorder = Recorder()
    piece = Piece(7, "steady", 0, 7.0, 8.0)
    sid = recorder.series("health", "GET /healthz", REQUEST)
    connection = CAUSES.index(Cause.CONNECTION)
    for _ in range(3):
        recorder.record(piece, sid, BUSY, connection, 900, 900)
    recorder.detail(piece, sid, TLS_FAILED)
    recorder.detail(piece, sid, TLS_FAILED)
    other = recorder.series("health", ANY_ENDPOINT, ACTION)
    recorder.record(piece, other, OK, NO_CAUSE, 900, 900)
    writer = RunWriter(tmp_path)
    writer.add(recorder.drain())
    writer.add(recorder.drain())  # nothing new: no row
    writer.close()
    _, request, action = sorted(lines(tmp_path / "timeline.jsonl"), key=lambda r: str(r))
    rows = {r["level"]: r for r in (request, action)}
    assert rows["request"]["busy"] == {"connection": 3}
    assert rows["request"]["detail"] == {"tls": 2}  # 2 of the 3 connection failures were TLS
    assert "detail" not in rows["action"]
    totals = Timeline.read(tmp_path / "timeline.jsonl").totals("request")
    assert totals.busy == {"connection": 3} and totals.detail == {"tls": 2}


def test_instance_and_network_are_optional_keys_and_old_timelines_read_as_before(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    piece = Piece(5, "peak", 0, 5.0, 6.0)
    sid = recorder.series("pay", "POST /pay", REQUEST)
    recorder.record(piece, sid | recorder.instance("wallet-1"), OK, NO_CAUSE, 900, 900)
    recorder.record(
        piece,
        sid | recorder.instance("wallet-2") | recorder.network("weak-4g"),
        BUSY,
        TIMEOUT,
        9,
        9,
    )
    recorder.record(piece, sid, OK, NO_CAUSE, 900, 900)  # a target with no name
    writer = RunWriter(tmp_path)
    writer.add(recorder.drain())
    writer.close()
    rows = lines(tmp_path / "timeline.jsonl")[1:]
    places = sorted((r.get("instance", "-"), r.get("network", "-")) for r in rows)
    assert places == [("-", "-"), ("wallet-1", "-"), ("wallet-2", "weak-4g")]
    tl = Timeline.read(tmp_path / "timeline.jsonl")
    assert tl.values("instance") == ["wallet-1", "wallet-2"] and tl.values("network") == ["weak-4g"]
    assert tl.select("request", instance="wallet-2").busy_rate == 1.0
    assert tl.select("request", network="weak-4g", phase="peak").count("busy") == 1
    assert tl.select("request", journey="pay", endpoint="POST /pay").answered == 3
    assert tl.select("request", instance="wallet-9").answered == 0
    # a timeline written before instances existed (no such keys) reads with "" for both
    old = tmp_path / "old.jsonl"
    old.write_text(
        '{"schema": "loadkit.timeline/v1", "latency_unit": "us"}\n'
        '{"t": 1, "phase": "p", "journey": "j", "endpoint": "*", "level": "action",'
        ' "n": {"ok": 2, "rejected": 0, "busy": 1, "unsent": 0}, "busy": {"timeout": 1}}\n'
    )
    before = Timeline.read(old)
    assert before.values("instance") == [] and before.totals("action").answered == 3
    assert before.select("action", instance="wallet-1").answered == 0
