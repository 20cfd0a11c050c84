"""The latency histograms of a run directory: HDR histograms (``hdrhistogram``), 1 µs … 10 min,
2 significant digits, base64-encoded in timeline lines (``lat``, ``svc``).

The Locust side keeps histograms sparse on the hot path (a dict from the HDR counts index to a
count, the index computed exactly as ``HdrHistogram`` does, see :func:`hdr_index`), and
:func:`encode_sparse` turns one into the very encoding ``record_value`` + ``encode()`` would
have given::

    encode_sparse({hdr_index(5200): 3})   # what the writer puts in a timeline line
    decode(line["lat"]).get_value_at_percentile(95)
"""

from __future__ import annotations

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


def decode(encoded: str) -> HdrHistogram:
    """A histogram back from a timeline line's ``lat`` or ``svc``."""
    return HdrHistogram.decode(encoded)


def new_histogram() -> HdrHistogram:
    """An empty histogram with loadkit's settings (to merge decoded ones into with ``add``)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


_SCRATCH = new_histogram()
