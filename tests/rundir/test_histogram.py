"""The timeline's histogram forms: ``sparse:`` pairs (v2) and hdrhistogram's own (v1) read alike."""

from __future__ import annotations

import random

import numpy as np

from loadkit.rundir import hdr
from loadkit.rundir.histogram import SPARSE_PREFIX, decode, encode_sparse, hdr_index, pack_sparse


def _sparse(values_us: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values_us:
        out[hdr_index(v)] = out.get(hdr_index(v), 0) + 1
    return out


def test_sparse_round_trip_equals_the_hdr_encoding() -> None:
    rng = random.Random(3)
    values = [int(rng.lognormvariate(9.9, 0.9)) for _ in range(500)] + [5200] * 700
    sparse = _sparse(values)
    packed = pack_sparse(sparse)
    assert packed.startswith(SPARSE_PREFIX)
    old, new = decode(encode_sparse(sparse)), decode(packed)
    assert new.get_total_count() == 1200
    for p in (50, 90, 99, 99.9):
        assert new.get_value_at_percentile(p) == old.get_value_at_percentile(p)
    # a count over 255 takes several pairs of the same index; the decoders sum them
    dense_new, dense_old = hdr.zeros(), hdr.zeros()
    assert hdr.add_encoded(dense_new, packed) and hdr.add_encoded(dense_old, encode_sparse(sparse))
    assert np.array_equal(dense_new, dense_old)
    assert dense_new[hdr_index(5200)] >= 700


def test_add_all_sums_both_forms_and_skips_damage() -> None:
    a, b = _sparse([1000, 2000, 2000]), _sparse([30_000] * 300)
    into = hdr.zeros()
    hdr.add_all(into, [pack_sparse(a), encode_sparse(b), "sparse:!!", "HISTFnot-base64"])
    assert int(into.sum()) == 303
    assert hdr.percentile_ms(into, 50) == hdr.percentile_ms(into, 99)  # the 300 at 30 ms


def test_empty_and_torn_values() -> None:
    assert pack_sparse({}) == SPARSE_PREFIX
    decoder = hdr.Decoder()
    first, counts = decoder.decode(SPARSE_PREFIX) or (None, None)
    assert first == 0 and counts is not None and len(counts) == 0
    packed = pack_sparse(_sparse([1000, 5000, 9000]))
    torn = packed[:-2]  # base64 cut mid-pair: the whole pairs before the cut still count
    decoded = hdr.Decoder().decode(torn)
    assert decoded is None or int(decoded[1].sum()) <= 3
