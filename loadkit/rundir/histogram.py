"""The latency histograms of a run directory: HDR histograms (``hdrhistogram``), 1 µs … 10 min,
2 significant digits, base64-encoded in timeline lines (``lat``, ``svc``).

The Locust side keeps histograms sparse on the hot path (a dict from the HDR counts index to a
count, the index computed exactly as ``HdrHistogram`` does, see :func:`hdr_index`), and
:func:`encode_sparse` turns one into the very encoding ``record_value`` + ``encode()`` would
have given::

    encode_sparse({hdr_index(5200): 3})   # hdrhistogram's own encoding (timeline v1)
    decode(line["lat"]).get_value_at_percentile(95)

What the writer puts in a timeline line (``loadkit.timeline/v2``) is cheaper to read: the same
counts as ``sparse:`` + base64 of (counts index ``u16`` little-endian, count ``u8``) pairs, indexes
ascending, a count over 255 continued in the next pair with the same index. A report sums a
whole run's pairs with a few numpy calls instead of inflating one HDR histogram per line
(:mod:`loadkit.rundir.hdr` reads both forms)::

    pack_sparse({hdr_index(5200): 3})     # "sparse:tQID"
"""

from __future__ import annotations

import binascii
import struct
from typing import Final

from hdrh.histogram import HdrHistogram

#: the histogram's range and precision (every histogram loadkit writes has these)
LOWEST_US: Final = 1
HIGHEST_US: Final = 600_000_000
SIGNIFICANT_FIGURES: Final = 2

_TEMPLATE = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
_MASK: Final[int] = _TEMPLATE.sub_bucket_mask
_UNIT: Final[int] = _TEMPLATE.unit_magnitude
_HALF_MAG: Final[int] = _TEMPLATE.sub_bucket_half_count_magnitude
_HALF: Final[int] = _TEMPLATE.sub_bucket_half_count
_SHIFT: Final[int] = _UNIT + _HALF_MAG + 1


def hdr_index(value_us: int) -> int:
    """The HDR counts index of ``value_us`` (clamped to the histogram's range)."""
    if value_us < 0:
        value_us = 0
    elif value_us > HIGHEST_US:
        value_us = HIGHEST_US
    bucket = (value_us | _MASK).bit_length() - _SHIFT
    return ((bucket + 1) << _HALF_MAG) + (value_us >> (bucket + _UNIT)) - _HALF


def encode_sparse(hist: dict[int, int]) -> str:
    """The ``hdrhistogram`` base64 encoding of a sparse histogram (``{counts index: count}``),
    identical to recording the same values into an ``HdrHistogram`` and calling ``encode()``."""
    scratch = _SCRATCH
    counts = scratch.counts
    total = 0
    for index, count in hist.items():
        counts[index] += count
        total += count
    scratch.total_count = total
    scratch.min_value = _TEMPLATE.get_value_from_index(min(hist))
    scratch.max_value = _TEMPLATE.get_value_from_index(max(hist))
    try:
        encoded: bytes = scratch.encode()
    finally:
        for index in hist:
            counts[index] = 0
        scratch.total_count = 0
    return encoded.decode("ascii")


#: what starts a timeline v2 histogram (never a base64 character: v1 values never start so)
SPARSE_PREFIX: Final = "sparse:"
_MAX_COUNT: Final = 255


def pack_sparse(hist: dict[int, int]) -> str:
    """``hist`` (``{counts index: count}``) as a timeline v2 histogram (``sparse:`` + base64 of
    ``<u2 index, u1 count>`` pairs, ascending; counts over 255 take several pairs)."""
    return sparse_text(sparse_pairs(hist))


def sparse_text(raw: bytes) -> str:
    """:func:`sparse_pairs`' bytes as a timeline line's value (``sparse:`` + base64)."""
    return SPARSE_PREFIX + binascii.b2a_base64(raw, newline=False).decode("ascii")


def sparse_pairs(hist: dict[int, int]) -> bytes:
    """The ``<u2 index, u1 count>`` pairs of ``hist`` (what a ``sparse:`` value's base64 holds;
    ``timeline.cols`` keeps them as they are)."""
    flat: list[int] = []
    for index, count in sorted(hist.items()):
        while count > _MAX_COUNT:
            flat += (index, _MAX_COUNT)
            count -= _MAX_COUNT
        if count > 0:
            flat += (index, count)
    return struct.pack("<" + "HB" * (len(flat) // 2), *flat)


def decode(encoded: str) -> HdrHistogram:
    """A histogram back from a timeline line's ``lat`` or ``svc`` (either form)."""
    if not encoded.startswith(SPARSE_PREFIX):
        return HdrHistogram.decode(encoded)
    hist = new_histogram()
    raw = binascii.a2b_base64(encoded[len(SPARSE_PREFIX) :])
    for index, count in struct.iter_unpack("<HB", raw[: len(raw) - len(raw) % 3]):
        hist.record_value(_TEMPLATE.get_value_from_index(index), count)
    return hist


def new_histogram() -> HdrHistogram:
    """An empty histogram with loadkit's settings (to merge decoded ones into with ``add``)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


_SCRATCH = new_histogram()
