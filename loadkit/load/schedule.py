"""When each arrival is due, and which Locust process sends it.

The run is cut into *pieces*: run-clock seconds, split where a stage boundary falls inside one.
A piece is the unit the timeline is keyed by (its second ``t`` and its stage's ``phase``) and it
holds a whole number of arrivals: with ``A(x)`` = :meth:`Profile.arrivals_between` ``(0, x)``, the
exact integral of the rate, the arrivals numbered ``floor(A(start))`` … ``floor(A(end)) - 1``
belong to the piece and are spread evenly over it. No stage is skipped or shortened, whatever its
length, and every process derives the same numbering from the profile alone.

The ``k``-th arrival of the run is sent by the process whose share index is ``k % count``;
:class:`Share` walks one process's arrivals in order::

    share = Share(profile, index=0, count=2)
    t = share.next()        # run-clock second the first arrival of process 0 is due
    share.piece.phase       # the stage it belongs to

A closed-model profile has pieces too (with no arrivals): its users label what they do with the
piece of the moment (:class:`PieceIndex`).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from loadkit.profile.model import LoadModel, Profile

#: absorbs float error in the running integral: 39.9999999 arrivals are 40
_EPS = 1e-6
#: stage boundaries are rounded to this many decimals so that 0.1 × 600 is exactly 60
_DIGITS = 9


@dataclass(eq=False, slots=True)
class Piece:
    """A run-clock second, or the part of one inside one stage.

    ``first`` is the run-wide number of its first arrival and ``count`` how many it holds (0 in a
    closed-model profile). ``cells`` belongs to the recorder (what was recorded for arrivals of
    this piece since the last report).
    """

    t: int
    phase: str
    stage: int
    start: float
    end: float
    first: int = 0
    count: int = 0
    cells: dict[int, Any] = field(default_factory=dict)


def stage_bounds(profile: Profile) -> list[float]:
    """Run-clock times where one stage ends and the next begins (not 0, not the end)."""
    bounds, clock = [], 0.0
    for stage in profile.stages[:-1]:
        clock += stage.duration_s
        bounds.append(round(clock * profile.time_scale, _DIGITS))
    return bounds


def pieces(profile: Profile) -> Iterator[Piece]:
    """Every piece of the run in order; arrival counts are filled in for an open profile."""
    duration = round(profile.duration_s, _DIGITS)
    all_bounds = stage_bounds(profile)
    bounds = [b for b in all_bounds if 0 < b < duration]
    open_model = profile.model is LoadModel.OPEN
    names = [stage.name for stage in profile.stages]
    cumulative = 0.0
    next_bound = 0
    second = 0
    while second < duration:
        edges = [float(second)]
        second_end = min(second + 1.0, duration)
        while next_bound < len(bounds) and bounds[next_bound] < second_end:
            if bounds[next_bound] > edges[-1]:
                edges.append(bounds[next_bound])
            next_bound += 1
        edges.append(second_end)
        for a, b in itertools.pairwise(edges):
            index = bisect.bisect_right(all_bounds, (a + b) / 2)
            first = math.floor(cumulative + _EPS)
            if open_model:
                cumulative += profile.arrivals_between(a, b)
            count = math.floor(cumulative + _EPS) - first
            yield Piece(second, names[index], index, a, b, first, count)
        second += 1


def arrival_counts(profile: Profile) -> dict[tuple[int, str], int]:
    """Arrivals per ``(second, phase)`` over all processes: what the timeline should show."""
    counts: dict[tuple[int, str], int] = {}
    for piece in pieces(profile):
        key = (piece.t, piece.phase)
        counts[key] = counts.get(key, 0) + piece.count
    return counts


def share_size(total: int, index: int, count: int) -> int:
    """How many of ``total`` things numbered 0… belong to share ``index`` of ``count``."""
    return len(range(index, total, count))


class Share:
    """The arrivals of one process, in order of their due time (run-clock seconds).

    :meth:`next` is the hot path: a comparison, an addition and a multiplication per arrival,
    a new piece once per second.
    """

    __slots__ = ("_a", "_count", "_dt", "_j", "_pieces", "count", "index", "piece")

    def __init__(self, profile: Profile, index: int, count: int) -> None:
        if profile.model is not LoadModel.OPEN:
            raise ValueError(f"profile {profile.name!r} is closed-model: it has no arrivals")
        if not 0 <= index < count:
            raise ValueError(f"share index {index} is not in 0…{count - 1}")
        self.index = index
        self.count = count
        self.piece: Piece | None = None
        self._pieces = pieces(profile)
        self._a = 0.0
        self._dt = 0.0
        self._j = 0
        self._count = 0

    def next(self) -> float:
        """The due time of the next arrival (``self.piece`` is its piece); ``inf`` when done."""
        j = self._j
        if j < self._count:
            self._j = j + self.count
            return self._a + j * self._dt
        return self._advance()

    def _advance(self) -> float:
        for piece in self._pieces:
            if piece.count == 0:
                continue
            j = (self.index - piece.first) % self.count
            if j >= piece.count:
                continue
            self.piece = piece
            self._a = piece.start
            self._dt = (piece.end - piece.start) / piece.count
            self._count = piece.count
            self._j = j + self.count
            return piece.start + j * self._dt
        self._count = 0
        return math.inf


class PieceIndex:
    """The piece running at any run-clock time (closed-model users label actions with it)."""

    def __init__(self, profile: Profile) -> None:
        self.pieces = list(pieces(profile))
        self._starts = [piece.start for piece in self.pieces]

    def at(self, t: float) -> Piece:
        """The piece containing ``t`` (the first or last piece outside the run)."""
        index = bisect.bisect_right(self._starts, t) - 1
        return self.pieces[min(max(index, 0), len(self.pieces) - 1)]
