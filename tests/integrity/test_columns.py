"""The vectorised comparison gives exactly the per-key definition's result (tests/integrity/
reference.py) on random inputs and on real logs: duplicates, unknowns, in-flight keys, string
keys and details from JSON records, ids given as text, mismatches, unexpected keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loadkit.integrity import Ack, Applied, View, columns, compare, read_acks
from loadkit.integrity.columns import (
    AckTable,
    AppliedTable,
    Interner,
    compare_tables,
    read_ack_table,
    split_key,
)
from loadkit.rundir.acks import AckLog, ack_record
from tests.integrity.reference import compare_reference

# keys that split into prefix + number, that do not (leading zero, too many digits, none),
# UUIDs, digits only, and prefixes ending oddly
KEYS = st.sampled_from(
    [
        "lk-3f2a9c1b-0-1",
        "lk-3f2a9c1b-0-17",
        "lk-3f2a9c1b-1-17",
        "lk-3f2a9c1b-0-017",
        "lk-3f2a9c1b-0-0",
        "lk-3f2a9c1b-0-1234567890",
        "lk-3f2a9c1b-0-999999999",
        "0",
        "7",
        "07",
        "abc",
        "",
        "k-",
        "9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
        "9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b23",
        "ключ-5",
    ]
)
REFS = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.sampled_from(["1", "01", "-1", "-0", "x", " 2", "3", "a"]),
    st.just(2**70),
    st.just(str(2**70)),
)
AMOUNTS = st.one_of(st.none(), st.integers(0, 3), st.just(-(2**63)), st.just(2**64))
ACKS = st.builds(Ack, KEYS, st.sampled_from(list(View)), st.none(), AMOUNTS, REFS, REFS)
APPLIED = st.builds(Applied, KEYS, st.integers(-1, 3), AMOUNTS, REFS, REFS)


def _same(a: Any, b: Any) -> None:
    da, db = a.to_dict(), b.to_dict()
    da.pop("checked_at")
    db.pop("checked_at")
    assert da == db


@settings(max_examples=400, deadline=None)
@given(st.lists(ACKS, max_size=40), st.lists(APPLIED, max_size=40))
def test_random_inputs_give_the_per_key_result(acks: list[Ack], applied: list[Applied]) -> None:
    _same(compare(acks, applied, source="sql"), compare_reference(acks, applied, source="sql"))


@settings(max_examples=100, deadline=None)
@given(st.lists(ACKS, max_size=30), st.lists(APPLIED, max_size=30))
def test_tables_built_apart_join_on_the_same_keys(acks: list[Ack], applied: list[Applied]) -> None:
    # the ledger is read before the logs: its ids come from an interner of its own
    table = AppliedTable.of(applied, Interner())
    result = compare_tables(AckTable.of(acks), table, source="reference")
    _same(result, compare_reference(acks, applied, source="reference"))


def test_many_examples_keep_the_order_the_keys_were_met() -> None:
    acks = [Ack(f"k{i}", View.ACKNOWLEDGED, amount=i) for i in range(300, 0, -1)]
    applied = [Applied(f"k{i}", 1 + i % 2, amount=i + i % 3) for i in range(0, 300, 2)]
    applied += [Applied(f"ghost-{i}") for i in range(40, 0, -1)]
    _same(compare(acks, applied, source="sql"), compare_reference(acks, applied, source="sql"))


def test_split_key() -> None:
    assert split_key("lk-3f-0-17") == ("lk-3f-0-", 17)
    assert split_key("0") == ("", 0)
    assert split_key("k-007") is None
    assert split_key("k-1234567890") is None
    assert split_key("abc") is None


def _write_logs(run: Path) -> list[Path]:
    """A binary log with every kind of record (numbered, UUID and short keys; extensions for a
    long key, a string payer, a float amount; ``sent`` never settled), a load process's spill
    and a JSON lines log."""
    log = AckLog(run / "acks.bin")
    rows: list[dict[str, Any]] = []
    for i in range(200):
        key = f"lk-3f2a9c1b-{i % 3}-{i}"
        base = {"t": i / 1000, "journey": "p2p", "kind": "transfer", "key": key, "account": 1}
        rows.append({**base, "view": "sent", "amount": 100 + i, "from": i % 5, "to": 9})
        if i % 7:
            view = ("acknowledged", "refused", "unknown")[i % 3]
            rows.append({**base, "view": view, "status": 201, "transaction_id": i})
    rows.append({"t": 1.0, "key": "9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c", "view": "acknowledged"})
    rows.append({"t": 1.0, "key": "short-key", "view": "acknowledged", "amount": 5})
    rows.append({"t": 1.0, "key": "x" * 80, "view": "acknowledged", "amount": 5})
    rows.append({"t": 1.0, "key": "lk-str-1", "view": "acknowledged", "from": "alice", "to": "7"})
    rows.append({"t": 1.0, "key": "lk-float-2", "view": "unknown", "amount": 2.5})
    log.write([ack_record(r) for r in rows])
    log.close()
    uuids = AckLog(run / "acks.d" / "worker-2-2.bin")  # no numbered key: no prefix table
    uuids.write([ack_record({"t": 3.0, "key": "9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b24"})])
    uuids.write([ack_record({"t": 3.0, "key": "short", "view": "refused"})])
    uuids.close()
    spill = AckLog(run / "acks.d" / "worker-1-1.bin")
    spill.write([ack_record({"t": 2.0, "key": "lk-3f2a9c1b-0-3", "view": "acknowledged"})])
    spill.write([ack_record({"t": 2.0, "key": "lk-spill-1", "view": "sent", "amount": 9})])
    spill.close()
    old = run / "old.jsonl"
    lines = [
        {"key": "lk-3f2a9c1b-1-4", "view": "refused", "amount": "104"},
        {"key": "j-1", "view": "weird", "from": True, "to": "bob"},
        {"key": 17, "view": "acknowledged"},
    ]
    old.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n{cut")
    return [
        run / "acks.bin",
        run / "acks.d" / "worker-1-1.bin",
        run / "acks.d" / "worker-2-2.bin",
        old,
    ]


def test_logs_read_as_a_table_give_the_per_key_result(tmp_path: Path) -> None:
    paths = _write_logs(tmp_path)
    applied = [Applied(f"lk-3f2a9c1b-{i % 3}-{i}", 1 + (i % 11 == 0), 100 + i) for i in range(150)]
    applied += [
        Applied("lk-3f2a9c1b-1-40", 1, 7, "4", 9),
        Applied("lk-str-1", 1, None, "alice", 8),
        Applied("short-key", 2, 6),
        Applied("x" * 80),
        Applied("lk-unexpected-1"),
        Applied("9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c"),
    ]
    expected = compare_reference(read_acks(*paths), applied, source="reference")
    assert expected.mismatched and expected.duplicated and expected.unexpected
    assert expected.lost and expected.refused_applied and expected.in_flight
    _same(compare(read_ack_table(*paths), applied, source="reference"), expected)
    _same(compare(read_acks(*paths), applied, source="reference"), expected)


@settings(max_examples=150, deadline=None)
@given(st.lists(ACKS, max_size=30), st.lists(APPLIED, max_size=30))
def test_details_compared_in_chunks_give_the_same_result(
    acks: list[Ack], applied: list[Applied]
) -> None:
    chunk, columns._CHUNK = columns._CHUNK, 3
    try:
        result = compare(acks, applied, source="sql")
    finally:
        columns._CHUNK = chunk
    _same(result, compare_reference(acks, applied, source="sql"))
