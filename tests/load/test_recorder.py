"""The recorder's sparse HDR histograms and its drained payloads."""

from __future__ import annotations

import random

from hdrh.histogram import HdrHistogram

from loadkit.load.recorder import ACTION, ANY_ENDPOINT, REQUEST, Recorder
from loadkit.load.schedule import Piece
from loadkit.profile.outcome import BUSY, CAUSES, NO_CAUSE, OK, REJECTED, Cause
from loadkit.rundir.acks import ack_record
from loadkit.rundir.histogram import HIGHEST_US, encode_sparse, hdr_index, new_histogram

THROTTLED = CAUSES.index(Cause.THROTTLED)


def test_hdr_index_is_the_index_hdrhistogram_uses() -> None:
    hist = new_histogram()
    rng = random.Random(7)
    values = [0, 1, 2, 127, 128, 255, 256, 2047, 2048, 4095, 4096, HIGHEST_US - 1, HIGHEST_US]
    values += [int(rng.lognormvariate(9, 3)) % HIGHEST_US for _ in range(20_000)]
    for value in values:
        assert hdr_index(value) == hist._counts_index_for(value), value
    assert hdr_index(HIGHEST_US * 10) == hdr_index(HIGHEST_US)
    assert hdr_index(-5) == hdr_index(0)


def test_a_sparse_histogram_encodes_to_what_hdrhistogram_would_write() -> None:
    rng = random.Random(11)
    direct, sparse = new_histogram(), {}
    for _ in range(30_000):
        value = int(rng.lognormvariate(8, 2)) % HIGHEST_US
        direct.record_value(value)
        index = hdr_index(value)
        sparse[index] = sparse.get(index, 0) + 1
    encoded = encode_sparse(sparse)
    assert encoded == direct.encode().decode()
    back = HdrHistogram.decode(encoded)
    assert back.get_total_count() == 30_000
    assert back.get_value_at_percentile(99) == direct.get_value_at_percentile(99)
    assert encode_sparse({hdr_index(5000): 1}) != encoded  # the scratch histogram was reset


def test_drain_hands_over_everything_once() -> None:
    recorder = Recorder()
    a, b = Piece(3, "peak", 1, 3.0, 4.0), Piece(4, "peak", 1, 4.0, 5.0)
    pay = recorder.series("pay", "POST /v1/payments", REQUEST)
    pay_action = recorder.series("pay", ANY_ENDPOINT, ACTION)
    assert recorder.series("pay", "POST /v1/payments", REQUEST) == pay
    recorder.record(a, pay, OK, NO_CAUSE, 1200, 900)
    recorder.record(a, pay, BUSY, THROTTLED, 2500, 2000)
    recorder.record(a, pay_action, REJECTED, NO_CAUSE, 3000, 2100)
    recorder.unsent(b, pay_action)
    recorder.ack(ack_record({"key": "k1"}))
    payload = recorder.drain()
    rows = {(row[0], row[3]): row for row in payload["cells"]}
    assert rows[(3, "POST /v1/payments")][:7] == [
        3,
        "peak",
        "pay",
        "POST /v1/payments",
        "request",
        [1, 0, 1, 0],
        [1 if i == THROTTLED else 0 for i in range(len(CAUSES))],
    ]
    lat = rows[(3, "POST /v1/payments")][7]
    assert sorted(lat[0::2]) == sorted([hdr_index(1200), hdr_index(2500)]) and lat[1::2] == [1, 1]
    assert rows[(4, "*")][5] == [0, 0, 0, 1] and rows[(4, "*")][7] == []
    assert payload["acks"] == [ack_record({"key": "k1"})]
    assert recorder.drain() == {"cells": [], "acks": []}
    recorder.record(a, pay, OK, NO_CAUSE, 10, 10)  # the same piece records again after a drain
    assert [row[5] for row in recorder.drain()["cells"]] == [[1, 0, 0, 0]]


def test_cells_say_which_instance_and_network_class_they_were_answered_from() -> None:
    from loadkit.load.schedule import Piece

    recorder = Recorder()
    piece = Piece(3, "peak", 1, 3.0, 4.0)
    sid = recorder.series("pay", "POST /pay", REQUEST)
    one, two = recorder.instance("wallet-1"), recorder.instance("wallet-2")
    weak = recorder.network("weak-4g")
    assert recorder.instance("wallet-1") == one and one != two  # one route per name
    assert recorder.instance("") == 0 and recorder.network(None) == 0
    for where, outcome in ((one | weak, OK), (one | weak, BUSY), (two, OK)):
        recorder.record(
            piece, sid | where, outcome, THROTTLED if outcome == BUSY else NO_CAUSE, 9, 9
        )
    recorder.unsent(piece, recorder.series("pay", ANY_ENDPOINT, ACTION) | two | weak)
    cells = recorder.drain()["cells"]
    by_place = {(c[2], c[4], c[10], c[11]): c[5] for c in cells}
    assert by_place == {
        ("pay", "request", "wallet-1", "weak-4g"): [1, 0, 1, 0],
        ("pay", "request", "wallet-2", ""): [1, 0, 0, 0],
        ("pay", "action", "wallet-2", "weak-4g"): [0, 0, 0, 1],
    }


def test_a_run_names_at_most_255_instances() -> None:
    import pytest

    from loadkit.errors import ConfigError

    recorder = Recorder()
    for i in range(255):
        recorder.instance(f"i{i}")
    with pytest.raises(ConfigError, match="at most 255 target instances"):
        recorder.instance("one-too-many")
