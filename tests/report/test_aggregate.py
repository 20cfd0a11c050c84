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
