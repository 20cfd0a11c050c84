"""The integrity comparison over columns: millions of movements compared with numpy, no Python
object per movement.

Keys become int64 ids: a key that ends in a number (1–9 digits, no leading zero: the wallet's
``lk-3f2a9c1b-0-17``) is ``prefix id << 32 | number``; any other key gets a negative id from a
table of strings. Amounts, payers and payees become (kind, value) pairs: kind 0 is absent, 1 an
integer (an id given as decimal text too: ``"17"`` and ``17`` are the same account), 2 an index
into a table of other texts. Joins are sorts and ``searchsorted``; text is made only for the
few examples the result keeps::

    acks = AckTable.of([Ack("lk-1", View.ACKNOWLEDGED, amount=500)])
    applied = AppliedTable.of([Applied("lk-1", 2, amount=499)])
    r = compare_tables(acks, applied, source="sql")
    r.duplicated, r.mismatched, r.examples["mismatched"]   # 1, 1, ['lk-1: amount 499 (sent 500)']

Results are those of the per-key definition in :mod:`loadkit.integrity.core` (tests compare the
two on random inputs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loadkit.integrity.core import (
    _STRENGTH,
    MAX_EXAMPLES,
    Ack,
    Applied,
    IntegrityResult,
    View,
    read_acks_of,
)
from loadkit.rundir.acks import VIEWS, is_v2, read_columns, read_records

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
_DIGITS = "0123456789"
_LOW = (1 << 32) - 1
#: a movement's three compared details, in the order their differences are reported
DETAILS = ("amount", "payer", "payee")
#: kinds of a detail value
ABSENT, INT, TEXT = 0, 1, 2
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def split_key(key: str) -> tuple[str, int] | None:
    """(prefix, number) of a key that ends in 1–9 digits without a leading zero, else None::

    split_key("lk-3f-0-17"), split_key("k-007"), split_key("abc")  # ('lk-3f-0-', 17), None, None
    """
    head = key.rstrip(_DIGITS)
    digits = len(key) - len(head)
    if 0 < digits <= 9 and (digits == 1 or key[len(head)] != "0"):
        return head, int(key[len(head) :])
    return None


class Interner:
    """The id of every key and detail text seen by one comparison (shared by both sides)."""

    def __init__(self) -> None:
        self.prefixes: list[str] = []
        self._prefix: dict[str, int] = {}
        self.others: list[str] = []
        self._other: dict[str, int] = {}
        self.texts: list[str] = []
        self._text: dict[str, int] = {}

    def prefix(self, text: str) -> int:
        found = self._prefix.get(text)
        if found is None:
            found = self._prefix[text] = len(self.prefixes)
            self.prefixes.append(text)
        return found

    def key(self, key: str) -> int:
        """The id of one key."""
        split = split_key(key)
        if split is not None:
            return self.prefix(split[0]) << 32 | split[1]
        found = self._other.get(key)
        if found is None:
            found = self._other[key] = len(self.others)
            self.others.append(key)
        return -1 - found

    def keys(self, keys: Iterable[str]) -> I64:
        return np.fromiter(map(self.key, keys), np.int64)

    def numbered(self, prefixes: Sequence[str], prefix: Any, number: Any) -> I64:
        """Ids of keys given as ``prefixes[prefix[i]] + str(number[i])`` (numbers < 10⁹)."""
        prefix = np.asarray(prefix, np.int64)
        number = np.asarray(number, np.int64)
        if not len(prefix):
            return np.zeros(0, np.int64)
        used = np.flatnonzero(np.bincount(prefix)).tolist()  # a few prefixes: no hashing
        if max(used) >= len(prefixes):  # a prefix the log never defined reads as ""
            prefixes = [*prefixes, *[""] * (max(used) + 1 - len(prefixes))]
        if all(not prefixes[p].endswith(tuple(_DIGITS)) for p in used):
            remap = np.zeros(max(used) + 1, np.int64)
            for p in used:
                remap[p] = self.prefix(prefixes[p])
            ids: I64 = (remap[prefix] << 32) | number
            return ids
        # a prefix ending in a digit reads as another split: go through the text
        return self.keys(
            f"{prefixes[p]}{n}" for p, n in zip(prefix.tolist(), number.tolist(), strict=True)
        )

    def key_text(self, key_id: int) -> str:
        if key_id < 0:
            return self.others[-1 - key_id]
        return f"{self.prefixes[key_id >> 32]}{key_id & _LOW}"

    def value(self, value: object) -> tuple[int, int]:
        """(kind, value) of one amount, payer or payee (None: absent)."""
        if value is None:
            return ABSENT, 0
        if type(value) is int and _I64_MIN <= value <= _I64_MAX:
            return INT, value
        text = str(value)
        try:
            number = int(text)
        except ValueError:
            pass
        else:
            if str(number) == text and _I64_MIN <= number <= _I64_MAX:
                return INT, number
        found = self._text.get(text)
        if found is None:
            found = self._text[text] = len(self.texts)
            self.texts.append(text)
        return TEXT, found

    def value_text(self, kind: int, value: int) -> str:
        return self.texts[value] if kind == TEXT else str(value)


@dataclass
class Detail:
    """One detail column (amount, payer or payee): ``kind`` (ABSENT/INT/TEXT) and ``value``."""

    kind: U8
    value: I64

    @classmethod
    def empty(cls, n: int = 0) -> Detail:
        return cls(np.zeros(n, np.uint8), np.zeros(n, np.int64))

    @classmethod
    def of(cls, values: Iterable[object], interner: Interner) -> Detail:
        pairs = [interner.value(v) for v in values]
        if not pairs:
            return cls.empty()
        kinds, vals = zip(*pairs, strict=True)
        return cls(np.array(kinds, np.uint8), np.array(vals, np.int64))

    @classmethod
    def ints(cls, values: Any, present: Any = None) -> Detail:
        """Integers, those where ``present`` is false absent."""
        value = np.array(values, np.int64)
        kind = np.full(len(value), INT, np.uint8)
        if present is not None:
            absent = ~np.asarray(present, bool)
            kind[absent] = ABSENT
            value[absent] = 0
        return cls(kind, value)

    @staticmethod
    def concat(parts: Sequence[Detail]) -> Detail:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return Detail.empty()
        return Detail(
            np.concatenate([p.kind for p in parts]), np.concatenate([p.value for p in parts])
        )

    def take(self, index: Any) -> Detail:
        return Detail(self.kind[index], self.value[index])


@dataclass
class AckTable:
    """The client's records as columns: ``key`` ids, view ``strength`` (sent -1, unknown 0,
    refused 1, acknowledged 2) and the details, in log order; ids from ``interner``."""

    key: I64
    strength: npt.NDArray[np.int8]
    details: tuple[Detail, Detail, Detail]
    interner: Interner

    def __len__(self) -> int:
        return len(self.key)

    @classmethod
    def of(cls, acks: Iterable[Ack], interner: Interner | None = None) -> AckTable:
        """The table of :class:`Ack` values (a Python loop: for hand-built or small logs)."""
        interner = interner or Interner()
        acks = list(acks)
        return cls(
            interner.keys(a.key for a in acks),
            np.fromiter((_STRENGTH[a.view] for a in acks), np.int8, len(acks)),
            (
                Detail.of((a.amount for a in acks), interner),
                Detail.of((a.payer for a in acks), interner),
                Detail.of((a.payee for a in acks), interner),
            ),
            interner,
        )

    @staticmethod
    def concat(parts: Sequence[AckTable], interner: Interner) -> AckTable:
        """Tables built with ``interner``, one after the other."""
        if len(parts) == 1:
            return parts[0]
        return AckTable(
            np.concatenate([p.key for p in parts] or [np.zeros(0, np.int64)]),
            np.concatenate([p.strength for p in parts] or [np.zeros(0, np.int8)]),
            (
                Detail.concat([p.details[0] for p in parts]),
                Detail.concat([p.details[1] for p in parts]),
                Detail.concat([p.details[2] for p in parts]),
            ),
            interner,
        )


#: a v2 log's view code (index into VIEWS) → strength
_CODE_STRENGTH = np.array([_STRENGTH[View(v)] for v in VIEWS], np.int8)


def read_ack_table(*paths: Path) -> AckTable:
    """:func:`~loadkit.integrity.core.read_acks` as a table: a binary log straight from its
    columns (keys stay numbers), JSON lines and extension records through :class:`Ack`."""
    interner = Interner()
    parts: list[AckTable] = []
    for path in paths:
        if not is_v2(path):
            parts.append(AckTable.of(read_acks_of(read_records(path)), interner))
            continue
        cols = read_columns(path, key_text=False)
        assert cols.prefixes is not None and cols.other_keys is not None
        # a UUID or short key's prefix and number fields mean nothing: only numbered ones
        numbered = np.ones(len(cols.view), bool)
        numbered[list(cols.other_keys)] = False
        key = np.zeros(len(numbered), np.int64)
        key[numbered] = interner.numbered(
            cols.prefixes, cols.key_prefix[numbered], cols.key_number[numbered]
        )
        for i, text in cols.other_keys.items():
            key[i] = interner.key(text)
        code = np.asarray(cols.view, np.int64)
        strength = np.where(
            code < len(_CODE_STRENGTH),
            _CODE_STRENGTH[np.minimum(code, len(_CODE_STRENGTH) - 1)],
            _STRENGTH[View.UNKNOWN],
        ).astype(np.int8)
        flags = np.asarray(cols.flags)
        parts.append(
            AckTable(
                key,
                strength,
                (
                    Detail.ints(cols.amount, flags & 8),
                    Detail.ints(cols.payer, flags & 2),
                    Detail.ints(cols.payee, flags & 4),
                ),
                interner,
            )
        )
        if cols.extra:
            parts.append(AckTable.of(read_acks_of(cols.extra), interner))
    return AckTable.concat(parts, interner)


@dataclass
class AppliedTable:
    """The ledger's applied movements as columns: ``key`` ids, ``count`` (applications of that
    row) and the details it applied, in the source's order; ids from ``interner``."""

    key: I64
    count: I64
    details: tuple[Detail, Detail, Detail]
    interner: Interner

    def __len__(self) -> int:
        return len(self.key)

    @classmethod
    def of(cls, applied: Iterable[Applied], interner: Interner | None = None) -> AppliedTable:
        interner = interner or Interner()
        rows = list(applied)
        return cls(
            interner.keys(a.key for a in rows),
            np.fromiter((a.count for a in rows), np.int64, len(rows)),
            (
                Detail.of((a.amount for a in rows), interner),
                Detail.of((a.payer for a in rows), interner),
                Detail.of((a.payee for a in rows), interner),
            ),
            interner,
        )

    def rebased(self, interner: Interner) -> AppliedTable:
        """The same rows with ids of ``interner`` (the acknowledgements' one)."""
        if interner is self.interner:
            return self
        own = self.interner
        key = self.key.copy()
        numbered = key >= 0
        if numbered.any():
            remap = np.array([interner.prefix(p) for p in own.prefixes] or [0], np.int64)
            key[numbered] = (remap[key[numbered] >> 32] << 32) | (key[numbered] & _LOW)
        if (~numbered).any():
            remap = np.array([interner.key(k) for k in own.others], np.int64)
            key[~numbered] = remap[-1 - key[~numbered]]
        details = []
        for d in self.details:
            text = d.kind == TEXT
            value = d.value
            if text.any():
                remap = np.array([interner.value(t)[1] for t in own.texts], np.int64)
                value = value.copy()
                value[text] = remap[value[text]]
            details.append(Detail(d.kind, value))
        return AppliedTable(key, self.count, _three(details), interner)


def _three(details: Sequence[Detail]) -> tuple[Detail, Detail, Detail]:
    return details[0], details[1], details[2]


#: ledger rows compared per step (bounds the temporaries of the details' comparison)
_CHUNK = 1 << 20


@dataclass
class _Groups:
    """The distinct keys of a key column: ``keys`` (sorted), each one's rows in ``order``
    between ``starts[i]`` and ``starts[i + 1]``, and its ``first`` row."""

    keys: I64
    order: I64
    starts: I64
    first: I64

    @classmethod
    def of(cls, key: I64) -> _Groups:
        if len(key) and bool((key[1:] >= key[:-1]).all()):  # e.g. one load process's log
            order, ordered = np.arange(len(key), dtype=np.int64), key
        else:
            order = np.argsort(key, kind="stable").astype(np.int64)
            ordered = key[order]
        if len(ordered):
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]).astype(np.int64)
        else:
            starts = np.zeros(0, np.int64)
        return cls(ordered[starts], order, starts, order[starts])

    def drop_rows(self) -> None:
        """Forget ``order`` and ``starts`` (``keys`` and ``first`` stay)."""
        self.order = self.starts = np.zeros(0, np.int64)

    def find(self, key: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """For each of ``key``: the index of its group, and whether it has one."""
        at = np.searchsorted(self.keys, key).astype(np.int64)
        if not len(self.keys):
            return at, np.zeros(len(key), bool)
        at = np.minimum(at, len(self.keys) - 1)
        return at, self.keys[at] == key


def _first_present(detail: Detail, groups: _Groups) -> Detail:
    """Per group, the first (in log order) present value of ``detail``."""
    n = len(detail.kind)
    if not len(groups.starts):
        return Detail.empty()
    kind = detail.kind[groups.order]
    position = np.where(kind != ABSENT, np.arange(n), n)
    first = np.minimum.reduceat(position, groups.starts)
    has = first < n
    at = groups.order[np.minimum(first, n - 1)]
    return Detail(
        np.where(has, detail.kind[at], ABSENT).astype(np.uint8), np.where(has, detail.value[at], 0)
    )


def _in_order(mask: npt.NDArray[np.bool_], first: I64) -> I64:
    """Indices where ``mask`` holds, the first :data:`MAX_EXAMPLES` by ``first``."""
    where = np.flatnonzero(mask)
    if len(where) > MAX_EXAMPLES:
        cut = np.argpartition(first[where], MAX_EXAMPLES - 1)[:MAX_EXAMPLES]
        where = where[cut]
    return where[np.argsort(first[where], kind="stable")].astype(np.int64)


def compare_tables(
    acks: AckTable,
    applied: AppliedTable,
    *,
    source: str,
    money_conserved: bool | None = None,
    negative_balances: int | None = None,
    unsafe_mode: str | None = None,
    ledger: dict[str, Any] | None = None,
) -> IntegrityResult:
    """:func:`~loadkit.integrity.core.compare` over tables (see the module docstring)."""
    names = acks.interner
    applied = applied.rebased(names)
    r = IntegrityResult(
        source=source,
        money_conserved=money_conserved,
        negative_balances=negative_balances,
        unsafe_mode=unsafe_mode,
        ledger=ledger,
    )
    # the client's side: one group per key, its strongest view and first details
    sent = _Groups.of(acks.key)
    if len(sent.starts):
        strength = np.maximum.reduceat(acks.strength[sent.order], sent.starts)
    else:
        strength = np.zeros(0, np.int8)
    ours = [_first_present(d, sent) for d in acks.details]
    sent.drop_rows()  # what follows needs each key once: free the per-row arrays early
    # the ledger's side: applications per key
    done = _Groups.of(applied.key)
    if len(done.starts):
        total = np.add.reduceat(applied.count[done.order], done.starts)
    else:
        total = np.zeros(0, np.int64)
    done.drop_rows()
    at, found = done.find(sent.keys)
    n = np.where(found, total[at] if len(total) else 0, 0)
    del at, found

    acknowledged, refused = strength == 2, strength == 1
    unknown = strength <= 0
    lost = acknowledged & (n == 0)
    refused_applied = refused & (n > 0)
    r.acknowledged, r.refused = int(acknowledged.sum()), int(refused.sum())
    r.unknown, r.in_flight = int(unknown.sum()), int((strength == -1).sum())
    r.lost, r.refused_applied = int(lost.sum()), int(refused_applied.sum())
    r.unknown_applied = int((unknown & (n > 0)).sum())
    r.unknown_not_applied = r.unknown - r.unknown_applied
    del n, acknowledged, refused, unknown
    duplicated = total > 1
    r.duplicated = int(duplicated.sum())
    r.extra_applications = int((total[duplicated] - 1).sum())
    _, known = sent.find(done.keys)
    unexpected = (total > 0) & ~known
    r.unexpected = int(unexpected.sum())
    del known, total

    # details: every ledger row naming one, against its key's first details on the client side
    # (in chunks: the gathers of a few million rows would otherwise all be alive at once)
    theirs = applied.details
    compared = np.zeros(len(sent.keys), bool)
    mismatched = np.zeros(len(sent.keys), bool)
    if len(sent.keys):
        ours_any = (ours[0].kind | ours[1].kind | ours[2].kind) != ABSENT
        for lo in range(0, len(applied.key), _CHUNK):
            part = slice(lo, lo + _CHUNK)
            tk = [t.kind[part] for t in theirs]
            rows = np.flatnonzero((tk[0] | tk[1] | tk[2]) != ABSENT)
            group, matched = sent.find(applied.key[part][rows])
            matched &= ours_any[group]
            rows, group = rows[matched], group[matched]
            compared[group] = True
            differs = np.zeros(len(rows), bool)
            for o, t, kind in zip(ours, theirs, tk, strict=True):
                ok, tkr = o.kind[group], kind[rows]
                differs |= (
                    (ok != ABSENT)
                    & (tkr != ABSENT)
                    & ((ok != tkr) | (o.value[group] != t.value[part][rows]))
                )
            mismatched[group[differs]] = True
    r.details_compared = int(compared.sum())
    r.mismatched = int(mismatched.sum())
    del compared

    # examples: text only for the few keys kept, in the order the per-key definition meets them
    def texts(keys: I64, where: I64) -> list[str]:
        return [names.key_text(k) for k in keys[where].tolist()]

    messages = []
    for g in _in_order(mismatched, sent.first).tolist():
        found_text = []
        for row in np.flatnonzero(applied.key == sent.keys[g]).tolist():  # in ledger order
            for name, o, t in zip(DETAILS, ours, theirs, strict=True):
                pair = (int(o.kind[g]), int(o.value[g])), (int(t.kind[row]), int(t.value[row]))
                if ABSENT not in (pair[0][0], pair[1][0]) and pair[0] != pair[1]:
                    theirs_text, ours_text = names.value_text(*pair[1]), names.value_text(*pair[0])
                    found_text.append(f"{name} {theirs_text} (sent {ours_text})")
        messages.append(f"{names.key_text(int(sent.keys[g]))}: {', '.join(found_text)}")
    examples = {
        "lost": texts(sent.keys, _in_order(lost, sent.first)),
        "duplicated": texts(done.keys, _in_order(duplicated, done.first)),
        "mismatched": messages,
        "unexpected": texts(done.keys, _in_order(unexpected, done.first)),
        "refused_applied": texts(sent.keys, _in_order(refused_applied, sent.first)),
    }
    r.examples = {
        k: v for k, v in examples.items() if v or k not in ("refused_applied", "mismatched")
    }
    return r


def of_this_run_table(
    acks: AckTable, applied: Iterable[Applied] | AppliedTable
) -> tuple[AppliedTable, int]:
    """The applied rows that can be this run's (in ``acks``' ids), and how many were left out.

    The ledger is read from the run's start on, so another run on the same database (the
    previous pass of a capacity search, whose last answers are applied late) can have movements
    in it too. A key loadkit made (``lk-<process prefix>-<share>-<n>``) carries its load
    process's random prefix; each load process logs a key before it leaves, so a generated key
    whose prefix is in none of this run's records was sent by another run and is left out.
    Other keys (the user's own) are all kept::

        acks = AckTable.of([Ack("lk-0a1b2c3d-0-1", View.SENT)])
        kept, others = of_this_run_table(
            acks, [Applied("lk-0a1b2c3d-0-1"), Applied("lk-99999999-0-7")]
        )
        len(kept), others                                           # 1, 1
    """
    from loadkit.integrity.core import GENERATED_PREFIX

    interner = acks.interner
    table = (
        applied.rebased(interner)
        if isinstance(applied, AppliedTable)
        else AppliedTable.of(applied, interner)
    )
    generated = np.array(
        [GENERATED_PREFIX.fullmatch(p) is not None for p in interner.prefixes] or [False], bool
    )
    ours = np.zeros(len(generated), bool)
    numbered = acks.key[acks.key >= 0]
    ours[np.unique(numbered >> 32)] = True
    key = table.key
    prefix = np.where(key >= 0, key >> 32, 0)
    other = (key >= 0) & generated[prefix] & ~ours[prefix]
    left_out = int(other.sum())
    if not left_out:
        return table, 0
    keep = np.flatnonzero(~other)
    kept = AppliedTable(
        key[keep],
        table.count[keep],
        _three([d.take(keep) for d in table.details]),
        interner,
    )
    return kept, left_out
