"""Fast HDR histogram decoding into dense numpy counts, and percentiles that equal hdrhistogram's.

Timeline v2 histograms (``sparse:`` + base64 pairs, :func:`loadkit.rundir.histogram.pack_sparse`)
are read in bulk: :func:`sparse_pairs` turns many of them into one pair of index / count arrays
with one ``np.frombuffer``, and :func:`add_all` sums any mix of both forms::

    counts = zeros()
    add_all(counts, [line["lat"] for line in lines])

``hdrhistogram``'s ``decode_and_add`` costs ~90 µs per timeline line (it builds a histogram object
per decode); reports decode tens of thousands of lines, so this module decodes the same wire
format (base64 → zlib → ZigZag LEB128 counts, via hdrhistogram's own C codec) straight into a
reused numpy array, ~20 µs each, and sums arrays with numpy::

    counts = zeros()
    add_encoded(counts, line["lat"])
    percentile_ms(counts, 95.0)   # == HdrHistogram.get_value_at_percentile(95) / 1000
"""

from __future__ import annotations

import binascii
import importlib
import zlib
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from loadkit.rundir.histogram import SPARSE_PREFIX

#: every histogram loadkit writes: 1 µs … 10 min, 2 significant digits (docs/run-directory.md)
LOWEST_US: Final = 1
HIGHEST_US: Final = 600_000_000
SIGNIFICANT_FIGURES: Final = 2

#: hdrhistogram's C codec (untyped): decode(payload, offset, counts address, length, word size)
_c_decode: Any = importlib.import_module("pyhdrh").decode

_TEMPLATE = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
COUNTS_LEN: Final[int] = int(_TEMPLATE.counts_len)
_EXT_HEADER: Final = 8  # cookie + length, before the zlib payload
_PAYLOAD_HEADER: Final = 40  # cookie, length, offset, digits, lowest, highest, ratio

Counts = npt.NDArray[np.int64]
#: one pair of a timeline v2 histogram: counts index, count
PAIR: Final = np.dtype([("index", "<u2"), ("count", "u1")])
_SKIP: Final = len(SPARSE_PREFIX)

#: the value hdrhistogram reports for a percentile landing in each counts index
_HIGHEST_EQUIVALENT: Final = np.array(
    [
        _TEMPLATE.get_highest_equivalent_value(_TEMPLATE.get_value_from_index(i))
        for i in range(COUNTS_LEN)
    ],
    dtype=np.float64,
)


def zeros() -> Counts:
    """An empty dense counts array."""
    return np.zeros(COUNTS_LEN, dtype=np.int64)


class Decoder:
    """Decodes wire histograms into one scratch array (not thread-safe; one per reader).

    :meth:`decode` returns ``(first, counts)``: the counts from index ``first`` on, up to the last
    one that is not zero — a view into the scratch array, valid until the next call. Adding the
    slice (``acc[first : first + len(counts)] += counts``) touches only what the histogram holds.
    """

    def __init__(self) -> None:
        self.scratch = zeros()
        self._addr: int = self.scratch.ctypes.data
        self._dirty = (0, COUNTS_LEN)

    def decode(self, encoded: str | bytes) -> tuple[int, Counts] | None:
        """The counts of ``encoded``, or ``None`` if it cannot be decoded at all."""
        if isinstance(encoded, str) and encoded.startswith(SPARSE_PREFIX):
            return self._sparse(encoded)
        try:
            raw = binascii.a2b_base64(encoded)
            data = zlib.decompress(raw[_EXT_HEADER:])
        except (binascii.Error, zlib.error, ValueError):
            return None
        if data[12:32] != _SETTINGS:
            return self._general(encoded)
        lo, hi = self._dirty
        self.scratch[lo:hi] = 0
        try:
            found = _c_decode(data, _PAYLOAD_HEADER, self._addr, COUNTS_LEN, 8)
        except Exception:
            self._dirty = (0, COUNTS_LEN)
            return self._general(encoded)
        if not found.get("total"):
            self._dirty = (0, 0)
            return 0, self.scratch[0:0]
        lo, hi = int(found["min_nonzero_index"]), int(found["max_nonzero_index"]) + 1
        self._dirty = (lo, hi)
        return lo, self.scratch[lo:hi]

    def _sparse(self, encoded: str) -> tuple[int, Counts] | None:
        raw = sparse_raw(encoded)
        if raw is None:
            return None
        index, count = pairs_of(raw)
        lo, hi = self._dirty
        self.scratch[lo:hi] = 0
        if not len(index):
            self._dirty = (0, 0)
            return 0, self.scratch[0:0]
        np.add.at(self.scratch, index, count)
        lo, hi = int(index.min()), int(index.max()) + 1
        self._dirty = (lo, hi)
        return lo, self.scratch[lo:hi]

    def _general(self, encoded: str | bytes) -> tuple[int, Counts] | None:
        """A histogram with other settings: re-record its values into ours."""
        try:
            other = HdrHistogram.decode(encoded)
        except Exception:
            return None
        self.scratch.fill(0)
        self._dirty = (0, COUNTS_LEN)
        for item in other.get_recorded_iterator():
            self.scratch[index_of(int(item.value_iterated_to))] += (
                item.count_added_in_this_iter_step
            )
        return 0, self.scratch


def sparse_raw(encoded: str) -> bytes | None:
    """The pair bytes of a ``sparse:`` histogram (whole pairs only), ``None`` if not base64."""
    try:
        raw = binascii.a2b_base64(encoded[_SKIP:])
    except (binascii.Error, ValueError):
        return None
    return raw[: len(raw) - len(raw) % PAIR.itemsize]


def pairs_of(raw: bytes | bytearray) -> tuple[npt.NDArray[np.intp], Counts]:
    """Index and count arrays of concatenated pair bytes (indexes out of range dropped)."""
    pairs = np.frombuffer(raw, dtype=PAIR, count=len(raw) // PAIR.itemsize)
    index = pairs["index"].astype(np.intp)
    count = pairs["count"].astype(np.int64)
    if len(index) and int(index.max()) >= COUNTS_LEN:  # a damaged line: keep what fits
        keep = index < COUNTS_LEN
        index, count = index[keep], count[keep]
    return index, count


def add_all(into: Counts, encoded: list[str]) -> None:
    """Add every histogram of ``encoded`` (either form) to ``into``; undecodable ones are
    skipped. ``sparse:`` ones are summed together by one ``np.bincount``."""
    raw = bytearray()
    decoder: Decoder | None = None
    for value in encoded:
        if value.startswith(SPARSE_PREFIX):
            part = sparse_raw(value)
            if part is not None:
                raw += part
        else:
            decoder = decoder or Decoder()
            add_encoded(into, value, decoder)
    if raw:
        index, count = pairs_of(raw)
        into += np.bincount(index, weights=count, minlength=COUNTS_LEN).astype(np.int64)


def index_of(value_us: int) -> int:
    """The counts index of a value (clamped to the histogram's range)."""
    return int(_TEMPLATE.get_counts_array_index(min(max(value_us, LOWEST_US), HIGHEST_US)))


# payload header bytes 12–32: significant digits (4), lowest (8), highest (8), big-endian
_SETTINGS: Final = (
    SIGNIFICANT_FIGURES.to_bytes(4, "big")
    + LOWEST_US.to_bytes(8, "big")
    + HIGHEST_US.to_bytes(8, "big")
)


def add_encoded(into: Counts, encoded: str | bytes, decoder: Decoder | None = None) -> bool:
    """Add one wire histogram to ``into``; False if it could not be decoded."""
    decoded = (decoder or Decoder()).decode(encoded)
    if decoded is None:
        return False
    first, counts = decoded
    into[first : first + len(counts)] += counts
    return True


def percentiles_ms(counts: Counts, ps: tuple[float, ...]) -> list[float | None]:
    """Values at percentiles ``ps`` in milliseconds (``None`` for an empty histogram), exactly
    as ``HdrHistogram.get_value_at_percentile`` computes them."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    if total == 0:
        return [None for _ in ps]
    out: list[float | None] = []
    for p in ps:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        index = int(np.searchsorted(cumulative, target, side="left"))
        out.append(float(_HIGHEST_EQUIVALENT[min(index, COUNTS_LEN - 1)]) / 1000.0)
    return out


def percentiles_rows_ms(
    rows: npt.NDArray[np.int64], ps: tuple[float, ...], first: int = 0
) -> list[list[float | None]]:
    """:func:`percentiles_ms` of every row of a 2-D counts array at once (time bins). The rows
    may be a window of the counts, from index ``first`` on, when every count outside it is 0
    (``percentiles_rows_ms(rows[:, 900:2100], ps, first=900)``: the same, less to sum)."""
    if not len(rows) or not rows.shape[1]:
        return [[None] * len(ps) for _ in range(len(rows))]
    width = rows.shape[1]
    # one running sum over all the rows, row after row: each row's running counts plus the
    # counts of the rows before it, an ascending sequence, so one binary search per
    # percentile finds every row's index (a row's target lies within its own stretch)
    flat = np.cumsum(rows, axis=None)
    ends = flat[width - 1 :: width]
    total = np.diff(ends, prepend=0)
    before = ends - total
    starts = np.arange(len(rows)) * width - first
    out = np.empty((len(rows), len(ps)), dtype=np.float64)
    for j, p in enumerate(ps):
        target = np.maximum((np.minimum(p, 100.0) * total / 100 + 0.5).astype(np.int64), 1)
        index = np.searchsorted(flat, before + target, side="left") - starts
        out[:, j] = _HIGHEST_EQUIVALENT[np.minimum(index, COUNTS_LEN - 1)] / 1000.0
    return [
        [float(v) for v in row] if t > 0 else [None] * len(ps)
        for row, t in zip(out.tolist(), total.tolist(), strict=True)
    ]


def percentile_ms(counts: Counts, p: float) -> float | None:
    """One percentile in milliseconds (see :func:`percentiles_ms`)."""
    return percentiles_ms(counts, (p,))[0]
