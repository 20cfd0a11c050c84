"""``aggregate`` over a timeline the real writer wrote (v2, ``sparse:`` histograms) equals the
same deltas with hdrhistogram's own encoding (v1, what earlier versions wrote and summed line by
line), whatever the order of lines, and skips a torn last line."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from loadkit.report import aggregate as aggregate_module
from loadkit.report.aggregate import Acc, Aggregates, aggregate
from loadkit.report.model import Scope
from loadkit.rundir import hdr
from loadkit.rundir.columns import read_columns
from loadkit.rundir.histogram import encode_sparse, hdr_index
from loadkit.rundir.writer import CAUSE_NAMES, RunWriter

WINDOWS = {"f01": (10, 20), "f02": (30, 2**62)}


def _cells(rng: random.Random, t: int, instance: str) -> list[list[Any]]:
    out = []
    for journey, endpoint, level in (
        ("pay", "*", "action"),
        ("pay", "POST /v1/payments", "request"),
        ("login", "POST /v1/login", "request"),
    ):
        k = rng.randint(0, 40)
        busy = rng.randint(0, 5) if 10 <= t < 20 else 0
        causes = [0] * len(CAUSE_NAMES)
        causes[rng.randrange(len(CAUSE_NAMES))] = busy
        lat: dict[int, int] = {}
        for _ in range(k + busy):
            index = hdr_index(int(rng.lognormvariate(9.5, 1.0)))
            lat[index] = lat.get(index, 0) + 1
        flat = [x for pair in sorted(lat.items()) for x in pair]
        phase = "warm" if t < 25 else "peak"
        network = "wifi" if instance == "wallet-1" else "weak-4g"
        n = [k, 0, busy, 1 if level == "action" and t == 3 else 0]
        out.append(
            [t, phase, journey, endpoint, level, n, causes, flat, flat, [], instance, network]
        )
    return out


@pytest.fixture(scope="module")
def timelines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same run twice: as the writer writes it now (v2) and in the v1 encoding."""
    rng = random.Random(11)
    run = tmp_path_factory.mktemp("v2")
    writer = RunWriter(run)
    for t in range(45):
        for instance in ("wallet-1", "wallet-2"):  # two workers: two flushes per second
            writer.add({"cells": _cells(rng, t, instance)})
            writer.flush()
    writer.close()
    v2 = run / "timeline.jsonl"
    v1 = tmp_path_factory.mktemp("v1") / "timeline.jsonl"
    decoder = hdr.Decoder()
    with v1.open("wb") as out:
        for raw in v2.read_bytes().splitlines():
            line = orjson.loads(raw)
            for which in ("lat", "svc"):
                if which in line:
                    first, counts = decoder.decode(line[which]) or (0, hdr.zeros()[:0])
                    line[which] = encode_sparse(
                        {first + int(i): int(counts[i]) for i in np.flatnonzero(counts)}
                    )
            out.write(orjson.dumps(line) + b"\n")
    return v2, v1


def _same_acc(a: Acc, b: Acc) -> None:
    assert a.n == b.n and a.causes == b.causes
    assert np.array_equal(a.lat, b.lat) and np.array_equal(a.svc, b.svc)


def _same(a: Aggregates, b: Aggregates) -> None:
    for name in ("seconds", "causes", "bins", "service_bins", "dim_seconds", "phase_seconds"):
        assert getattr(a, name) == getattr(b, name), name
    assert (a.phase_first, a.lines) == (b.phase_first, b.lines)
    for name in ("series", "dims"):
        left, right = getattr(a, name), getattr(b, name)
        assert set(left) == set(right)
        for key in left:
            _same_acc(left[key], right[key])
    for w in a.windows:
        for level in a.windows[w]:
            _same_acc(a.windows[w][level], b.windows[w][level])
        assert set(a.window_instances[w]) == set(b.window_instances[w])
        for instance, acc in a.window_instances[w].items():
            _same_acc(acc, b.window_instances[w][instance])


@pytest.mark.parametrize("bin_s", [1, 4])
def test_v2_sums_equal_the_v1_encoding(timelines: tuple[Path, Path], bin_s: int) -> None:
    v2, v1 = timelines
    assert b'"lat":"sparse:' in v2.read_bytes() and b'"lat":"HISTF' in v1.read_bytes()
    new, old = (
        aggregate(v2, windows=WINDOWS, bin_s=bin_s),
        aggregate(v1, windows=WINDOWS, bin_s=bin_s),
    )
    _same(new, old)
    assert new.lines == 45 * 2 * 3 and new.bad_lines == 0
    assert new.window_instances["f01"]["wallet-2"].n[2] > 0  # busy during the fault
    assert set(new.values("network")) == {"wifi", "weak-4g"}
    total = new.total("action")
    expected = hdr.zeros()
    decoder = hdr.Decoder()
    for raw in v1.read_bytes().splitlines()[1:]:
        line = orjson.loads(raw)
        if line["level"] == "action" and "lat" in line:
            hdr.add_encoded(expected, line["lat"], decoder)
    assert np.array_equal(total.lat, expected)


def test_only_the_levels_asked_are_binned(timelines: tuple[Path, Path]) -> None:
    """The latency time series of the levels asked (a report's: actions) is the one every
    level's aggregation has; the other levels' is not kept. JSON lines and columns alike."""
    v2, v1 = timelines
    for path in (v2, v1):
        every = aggregate(path, windows=WINDOWS, bin_s=2)
        actions = aggregate(path, windows=WINDOWS, bin_s=2, bin_levels=["action"])
        assert every.bins["request"] and every.service_bins["request"]
        assert actions.bins["request"] == {} and actions.service_bins["request"] == {}
        assert actions.bins["action"] == every.bins["action"]
        assert actions.service_bins["action"] == every.service_bins["action"]
        for name in ("seconds", "causes", "dim_seconds", "phase_seconds"):
            assert getattr(actions, name) == getattr(every, name), name


def test_a_scope_keeps_its_slice(timelines: tuple[Path, Path]) -> None:
    v2, v1 = timelines
    scope = Scope(instance="wallet-1")
    new, old = aggregate(v2, scope=scope), aggregate(v1, scope=scope)
    _same(new, old)
    assert new.values("instance") == ["wallet-1"]


def test_torn_tail_and_any_line_order(
    timelines: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v2, _ = timelines
    reference = aggregate(v2, windows=WINDOWS, bin_s=2)
    lines = v2.read_bytes().splitlines()
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(b"\n".join(lines) + b"\n" + lines[-1][: len(lines[-1]) // 2])
    cut = aggregate(torn, windows=WINDOWS, bin_s=2)
    assert cut.bad_lines == 1
    _same(cut, reference)
    # lines far out of order: bins closed early are recomputed by a second pass
    monkeypatch.setattr(aggregate_module, "_CLOSE_AFTER_S", 0)
    monkeypatch.setattr(aggregate_module, "_CHUNK", 4096)
    shuffled = tmp_path / "shuffled.jsonl"
    body = lines[1:]
    random.Random(5).shuffle(body)
    shuffled.write_bytes(b"\n".join([lines[0], *body]) + b"\n")
    _same(aggregate(shuffled, windows=WINDOWS, bin_s=2), reference)


def _copy(v2: Path, into: Path, *, columns: bool = True) -> Path:
    into.mkdir()
    (into / "timeline.jsonl").write_bytes(v2.read_bytes())
    if columns:
        (into / "timeline.cols").write_bytes(v2.with_suffix(".cols").read_bytes())
    return into / "timeline.jsonl"


def test_columns_give_the_json_lines_sums(timelines: tuple[Path, Path], tmp_path: Path) -> None:
    """``timeline.cols`` (what the writer keeps beside the JSON lines) sums to what the JSON
    lines do, and whatever it does not cover is read from them: a torn or damaged record, lines
    appended by another writer or by hand, a timeline rewritten since."""
    v2, v1 = timelines
    assert read_columns(v2) is not None
    json_only = aggregate(_copy(v2, tmp_path / "json", columns=False), windows=WINDOWS, bin_s=2)
    _same(aggregate(v2, windows=WINDOWS, bin_s=2), json_only)
    cols = v2.with_suffix(".cols").read_bytes()
    # a crash mid-write: the last record torn
    torn = _copy(v2, tmp_path / "torn")
    torn.with_suffix(".cols").write_bytes(cols[: len(cols) - 100])
    found = read_columns(torn)
    assert found is not None
    assert sum(len(b.t) for b in found.batches()) < 45 * 2 * 3
    assert found.read_end < torn.stat().st_size
    _same(aggregate(torn, windows=WINDOWS, bin_s=2), json_only)
    # a damaged byte in the middle: the records before it, then the JSON lines
    damaged = _copy(v2, tmp_path / "damaged")
    middle = bytearray(cols)
    middle[len(cols) // 2] ^= 0xFF
    damaged.with_suffix(".cols").write_bytes(bytes(middle))
    _same(aggregate(damaged, windows=WINDOWS, bin_s=2), json_only)
    # a second writer appends (its key ids start again) and a line is added by hand
    appended = _copy(v2, tmp_path / "appended")
    writer = RunWriter(appended.parent)
    writer.add({"cells": _cells(random.Random(3), 50, "wallet-3")})
    writer.close()
    with appended.open("ab") as fh:
        fh.write(
            orjson.dumps(
                {
                    "t": 51,
                    "phase": "peak",
                    "journey": "pay",
                    "level": "action",
                    "endpoint": "*",
                    "n": {"ok": 7},
                }
            )
            + b"\n"
        )
    reference = aggregate(_copy(appended, tmp_path / "appended-json", columns=False))
    _same(aggregate(appended), reference)
    assert aggregate(appended).lines == 45 * 2 * 3 + 3 + 1
    # the timeline rewritten under the same name: its old columns no longer fit it
    rewritten = _copy(v2, tmp_path / "rewritten")
    rewritten.write_bytes(v1.read_bytes())
    assert read_columns(rewritten) is None
    _same(aggregate(rewritten, windows=WINDOWS, bin_s=2), json_only)


def test_columns_stop_at_an_edited_line(timelines: tuple[Path, Path], tmp_path: Path) -> None:
    """A line changed by hand (same length, so no offset moves): the columns cover only the
    lines before it, and the sums are the JSON lines'."""
    v2, _ = timelines
    edited = _copy(v2, tmp_path / "edited")
    data = edited.read_bytes()
    at = data.index(b'"ok":', len(data) // 2) + len(b'"ok":')
    digit = data[at : at + 1]
    assert digit.isdigit()
    edited.write_bytes(data[:at] + (b"9" if digit != b"9" else b"8") + data[at + 1 :])
    found = read_columns(edited)
    assert found is not None and found.end < at
    reference = aggregate(_copy(edited, tmp_path / "edited-json", columns=False))
    _same(aggregate(edited), reference)
    assert aggregate(edited).total("action").n != aggregate(v2).total("action").n or (
        aggregate(edited).total("request").n != aggregate(v2).total("request").n
    )
