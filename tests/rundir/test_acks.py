"""The acknowledgement log format (``loadkit.acks/v2``): round trip, settling in place, keys of
every kind, extensions, a torn tail, reopening, and the JSON lines logs of older runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from loadkit.rundir.acks import (
    FIELDS,
    SENT,
    WIDTH,
    AckLog,
    ack_record,
    read_columns,
    read_records,
)


def movement(key: str, view: str = SENT, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "t": 42.137,
        "journey": "p2p_transfer",
        "kind": "transfer",
        "key": key,
        "account": 17,
        "from": 17,
        "to": 912,
        "amount": 8800,
        "view": view,
        "status": None,
        "transaction_id": None,
    }
    return {**fields, **over}


def final(key: str, **over: Any) -> dict[str, Any]:
    return movement(key, "acknowledged", **{"status": 201, "transaction_id": 120331, **over})


def test_a_movement_is_one_slot_its_final_view_in_place(tmp_path: Path) -> None:
    path = tmp_path / "acks.bin"
    log = AckLog(path)
    log.write([ack_record(movement("lk-3f2a9c1b-0-17"))])
    assert [r["view"] for r in read_records(path)] == ["sent"]  # on disk before it leaves
    log.write([ack_record(final("lk-3f2a9c1b-0-17"))])
    log.close()
    assert list(read_records(path)) == [final("lk-3f2a9c1b-0-17")]
    # header slot, the (journey, kind) and key-prefix definitions, one record
    assert path.stat().st_size == 4 * WIDTH


def test_every_kind_of_record_round_trips(tmp_path: Path) -> None:
    records = [
        movement("lk-9-0-1"),
        final("lk-9-0-2"),
        movement("0b6f3a4e-5c1d-4e2f-9a8b-7c6d5e4f3a2b", journey="pay", kind="pay", to=None),
        movement("order-0017", account=None, **{"from": None}),  # a leading zero: a string key
        movement("x" * 80),  # too long for a slot: an extension
        movement("lk-9-0-3", amount=12.5),  # a float: an extension
        final("lk-9-0-4", transaction_id="tx-abc"),
        movement("lk-9-0-5", amount=-3, account=2**40),  # beyond 32 bits: an extension
        movement("lk-9-0-6", view="refused", status=422),
        movement("lk-9-0-7", view="unknown", journey=None, kind=None),
        movement("0B6F3A4E-5C1D-4E2F-9A8B-7C6D5E4F3A2B"),  # not canonical: kept as written
    ]
    path = tmp_path / "acks.bin"
    log = AckLog(path)
    log.write(ack_record(r) for r in records)
    log.close()
    key = lambda r: r["key"]  # noqa: E731
    assert sorted(read_records(path), key=key) == sorted(records, key=key)
    assert all(list(r) == list(FIELDS) for r in read_records(path))


def test_finals_settle_in_place_within_one_write_and_across_writes(tmp_path: Path) -> None:
    """The master writes a report's records at once: a sent and its final may share a write."""
    path = tmp_path / "acks.bin"
    log = AckLog(path)
    uuid = "0b6f3a4e-5c1d-4e2f-9a8b-7c6d5e4f3a2b"
    log.write([ack_record(movement(k)) for k in ("lk-1-0-1", "lk-1-0-2", uuid)])
    log.write(
        [
            ack_record(final("lk-1-0-1")),
            ack_record(movement("lk-1-0-3")),
            ack_record(final("lk-1-0-3")),
            ack_record(final(uuid)),
            ack_record(final("lk-1-0-99")),  # its sent is elsewhere: appended
        ]
    )
    log.close()
    views = {r["key"]: r["view"] for r in read_records(path)}
    assert views == {
        "lk-1-0-1": "acknowledged",
        "lk-1-0-2": "sent",
        "lk-1-0-3": "acknowledged",
        uuid: "acknowledged",
        "lk-1-0-99": "acknowledged",
    }
    assert len(read_columns(path)) == 5


@pytest.mark.parametrize("cut", range(1, 3 * WIDTH, 7))
def test_a_torn_tail_leaves_every_whole_record_readable(tmp_path: Path, cut: int) -> None:
    """A process killed in the middle of a write: everything before the torn record reads."""
    path = tmp_path / "acks.bin"
    log = AckLog(path)
    log.write([ack_record(movement(f"lk-7-0-{i}")) for i in range(10)])
    log.write([ack_record(movement("0b6f3a4e-5c1d-4e2f-9a8b-7c6d5e4f3a2b"))])  # two slots
    log.write([ack_record(movement("y" * 100))])  # an extension of several slots
    log.close()
    size = path.stat().st_size
    os.truncate(path, size - cut)
    keys = [r["key"] for r in read_records(path)]
    whole = [f"lk-7-0-{i}" for i in range(10)]
    assert keys[:10] == whole and len(keys) <= 12
    # reopening cuts the torn record off and appends after the last whole one
    again = AckLog(path)
    again.write([ack_record(final("lk-7-0-3")), ack_record(movement("lk-7-0-10"))])
    again.close()
    views = {r["key"]: r["view"] for r in read_records(path)}
    assert views["lk-7-0-3"] == "acknowledged" and views["lk-7-0-10"] == "sent"
    assert set(whole) <= set(views)


def test_a_log_of_the_former_json_lines_format_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "acks.jsonl"
    lines = [{"schema": "loadkit.acks/v1"}, movement("lk-1"), final("lk-1")]
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"key": "torn')
    assert list(read_records(path)) == [movement("lk-1"), final("lk-1")]
    assert list(read_records(tmp_path / "missing.bin")) == []


def test_a_wallet_movement_costs_at_most_40_bytes(tmp_path: Path) -> None:
    path = tmp_path / "acks.bin"
    log = AckLog(path)
    n = 2000
    for i in range(n):
        log.write([ack_record(movement(f"lk-3f2a9c1b-1-{i}", to=i, amount=100 + i))])
        log.write([ack_record(final(f"lk-3f2a9c1b-1-{i}", to=i, amount=100 + i))])
    log.close()
    assert path.stat().st_size / n <= 40
    cols = read_columns(path)
    assert cols.amount.tolist() == [100 + i for i in range(n)]
