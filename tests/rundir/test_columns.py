"""``timeline.cols`` holds, line for line, what the writer's JSON lines say (keys, counts,
causes, the ``sparse:`` pairs), and stops at the last intact record."""

from __future__ import annotations

import binascii
from pathlib import Path

import orjson

from loadkit.rundir.columns import columns_path, read_columns
from loadkit.rundir.histogram import SPARSE_PREFIX, hdr_index
from loadkit.rundir.writer import CAUSE_NAMES, RunWriter


def _write(run: Path, seconds: int) -> None:
    writer = RunWriter(run)
    timeout = CAUSE_NAMES.index("timeout")
    for t in range(seconds):
        cells = []
        for journey, endpoint, level in (("pay", "*", "action"), ("pay", "POST /pay", "request")):
            causes = [0] * len(CAUSE_NAMES)
            causes[timeout] = t % 3
            lat = [hdr_index(1000 * (t + 1)), 300, hdr_index(20_000), 2]  # counts over 255
            n = [10 + t, 1, t % 3, 0]
            cells.append(
                [t, "warm", journey, endpoint, level, n, causes, lat, lat[:2], [], "w-1", "wifi"]
            )
        writer.add({"cells": cells})
        writer.flush()
    writer.close()


def test_columns_hold_the_json_lines(tmp_path: Path) -> None:
    _write(tmp_path, 5)
    timeline = tmp_path / "timeline.jsonl"
    assert columns_path(timeline) == tmp_path / "timeline.cols"
    lines = [orjson.loads(raw) for raw in timeline.read_bytes().splitlines()[1:]]
    cols = read_columns(timeline)
    assert cols is not None
    assert cols.end == timeline.stat().st_size
    batches = list(cols.batches(lines=4))
    assert [len(b.t) for b in batches] == [4, 4, 2]  # records joined up to ~4 lines
    assert cols.read_end == cols.end
    row = 0
    for batch in batches:
        lat_at = svc_at = 0
        for i in range(len(batch.t)):
            line = lines[row]
            phase, journey, endpoint, level, instance, network = cols.keys[int(batch.key[i])]
            assert (line["t"], line["phase"], line["journey"], line["endpoint"]) == (
                int(batch.t[i]),
                phase,
                journey,
                endpoint,
            )
            assert (line["level"], line["instance"], line["network"]) == (level, instance, network)
            assert dict(zip(cols.outcomes, batch.n[i].tolist(), strict=True)) == line["n"]
            busy = {c: v for c, v in zip(cols.causes, batch.causes[i].tolist(), strict=True) if v}
            assert busy == line["busy"]
            for which, raw, sizes, at in (
                ("lat", batch.lat, batch.lat_sizes, lat_at),
                ("svc", batch.svc, batch.svc_sizes, svc_at),
            ):
                pairs = raw[at * 3 : (at + int(sizes[i])) * 3]
                assert line[which] == SPARSE_PREFIX + binascii.b2a_base64(
                    pairs, newline=False
                ).decode("ascii")
            lat_at += int(batch.lat_sizes[i])
            svc_at += int(batch.svc_sizes[i])
            row += 1
    assert row == len(lines) == 10


def test_a_torn_record_ends_the_columns(tmp_path: Path) -> None:
    """A crash between the JSON lines and their record, or mid-record: every record before
    it is read, and ``read_end`` says where the JSON lines must take over."""
    _write(tmp_path, 3)
    timeline = tmp_path / "timeline.jsonl"
    path = columns_path(timeline)
    whole = path.read_bytes()
    for cut in (len(whole) - 1, len(whole) - 40):
        path.write_bytes(whole[:cut])
        cols = read_columns(timeline)
        assert cols is not None
        assert sum(len(b.t) for b in cols.batches()) == 4
        second_last_end = timeline.read_bytes().rindex(b"\n", 0, -1) + 1
        assert cols.read_end == timeline.read_bytes().rindex(b"\n", 0, second_last_end - 1) + 1
    path.write_bytes(b"")
    assert read_columns(timeline) is None
    path.unlink()
    assert read_columns(timeline) is None
