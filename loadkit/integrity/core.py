"""The comparison at the heart of the integrity check: what the client saw vs what the ledger holds.

Pure functions over plain values, so that hand-built logs and ledgers drive it in tests::

    acks = [Ack("k1", View.ACKNOWLEDGED, amount=500), Ack("k2", View.UNKNOWN)]
    result = compare(acks, [Applied("k1", 2, amount=499)], source="sql")
    result.duplicated, result.mismatched, result.unknown_not_applied, result.ok  # 1, 1, 1, False

A movement is identified by its idempotency key. The logs hold a key more than once: ``sent``
before its request left, then its final view (and the master's ``acks.bin`` and the load
process's own spill both have it); the strongest view wins (acknowledged, refused, unknown,
sent). A key with nothing but ``sent`` was in flight when its load process died: it counts as
``unknown`` (and ``in_flight``) and is resolved against the ledger like any other unknown.

The ledger side lists each applied key with how many times it was applied and, when the source
knows them, the amount, payer and payee it applied: each is compared with what the client sent
(where the client's record has it too), and a difference is a ``mismatched`` movement.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loadkit.rundir import INTEGRITY
from loadkit.rundir.acks import VIEWS, is_v2, read_columns, read_records

if TYPE_CHECKING:
    from loadkit.integrity.columns import AckTable, AppliedTable

SCHEMA = "loadkit.integrity/v1"
FILENAME = INTEGRITY
#: examples kept per kind of problem
MAX_EXAMPLES = 10


class View(StrEnum):
    """The client's view of one money movement (``acks.bin`` ``view``)."""

    ACKNOWLEDGED = "acknowledged"  # 2xx
    REFUSED = "refused"  # a definite 4xx (not 429)
    UNKNOWN = "unknown"  # timeout, connection lost, 5xx, 429/503 after the last retry
    SENT = "sent"  # recorded before the request left; no later view: its process died


_STRENGTH = {View.SENT: -1, View.UNKNOWN: 0, View.REFUSED: 1, View.ACKNOWLEDGED: 2}
#: an account as a ledger or a client names it (an id, or a name)
AccountRef = int | str


class Source(StrEnum):
    """Where the applied movements came from."""

    REFERENCE = "reference"  # the reference wallet's database
    SQL = "sql"  # the user's query against their database
    HTTP = "http"  # the user's endpoint listing applied ids


@dataclass(frozen=True, slots=True)
class Ack:
    """One line of an acknowledgement log (only what the check needs): ``payer`` and
    ``payee`` are the line's ``from`` and ``to``."""

    key: str
    view: View
    account: int | None = None
    amount: int | None = None
    payer: AccountRef | None = None
    payee: AccountRef | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """One key the ledger applied, ``count`` times, with the ``amount``, ``payer`` and
    ``payee`` it applied when the source knows them (None: not compared)."""

    key: str
    count: int = 1
    amount: int | None = None
    payer: AccountRef | None = None
    payee: AccountRef | None = None


@dataclass
class IntegrityResult:
    """``integrity.json`` (schema ``loadkit.integrity/v1``, docs/run-directory.md) as data.

    ``ok`` is True only when nothing was lost, duplicated, unexpected or refused-yet-applied, no
    balance is negative and money is not known to be unconserved; None when the check could not
    run (``error`` says why)."""

    source: str
    acknowledged: int = 0
    refused: int = 0
    unknown: int = 0
    lost: int = 0
    duplicated: int = 0
    extra_applications: int = 0
    unexpected: int = 0
    refused_applied: int = 0
    unknown_applied: int = 0
    unknown_not_applied: int = 0
    #: unknown because their load process died with them in flight (nothing but ``sent``)
    in_flight: int = 0
    #: applied with another amount, payer or payee than the client sent
    mismatched: int = 0
    #: applied movements whose amount, payer or payee could be compared with the client's
    details_compared: int = 0
    money_conserved: bool | None = None
    negative_balances: int | None = None
    examples: dict[str, list[str]] = field(default_factory=dict)
    unsafe_mode: str | None = None
    error: str | None = None
    checked_at: float = field(default_factory=time.time)
    ledger: dict[str, Any] | None = None  # the source's own facts (the wallet's invariants)

    @property
    def total(self) -> int:
        return self.acknowledged + self.refused + self.unknown

    @property
    def ok(self) -> bool | None:
        if self.error is not None:
            return None
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.mismatched == 0
            and self.unexpected == 0
            and self.refused_applied == 0
            and not self.negative_balances
            and self.money_conserved is not False
        )

    def problems(self) -> list[str]:
        """What is wrong, in words (empty when clean or not run)."""
        out = []
        for count, what in (
            (self.lost, "acknowledged but absent from the ledger (lost)"),
            (self.duplicated, "applied more than once (duplicated)"),
            (self.mismatched, "applied with another amount, payer or payee (mismatched)"),
            (self.unexpected, "applied but never sent by this run (unexpected)"),
            (self.refused_applied, "refused (4xx) yet applied"),
            (self.negative_balances or 0, "negative balance(s)"),
        ):
            if count:
                out.append(f"{count:,} {what}")
        if self.money_conserved is False:
            out.append("money not conserved (the balances do not add up)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            "error": self.error,
            "source": self.source,
            "checked_at": self.checked_at,
            "acks": {
                "acknowledged": self.acknowledged,
                "refused": self.refused,
                "unknown": self.unknown,
                "in_flight": self.in_flight,
                "total": self.total,
            },
            "lost": self.lost,
            "duplicated": self.duplicated,
            "extra_applications": self.extra_applications,
            "mismatched": self.mismatched,
            "details_compared": self.details_compared,
            "unexpected": self.unexpected,
            "refused_applied": self.refused_applied,
            "unknown_applied": self.unknown_applied,
            "unknown_not_applied": self.unknown_not_applied,
            "money_conserved": self.money_conserved,
            "negative_balances": self.negative_balances,
            "examples": self.examples,
            "unsafe_mode": self.unsafe_mode,
            "ledger": self.ledger,
        }

    def write(self, run_dir: Path) -> Path:
        path = run_dir / FILENAME
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        tmp.replace(path)
        return path


def failed(source: str, error: str, *, unsafe_mode: str | None = None) -> IntegrityResult:
    """The result of a check that could not run (``ok`` is None)."""
    return IntegrityResult(source=source, error=error, unsafe_mode=unsafe_mode)


def read_acks(*paths: Path) -> list[Ack]:
    """The acknowledgement logs (``acks.bin`` and the load processes' spills, schema
    ``loadkit.acks/v2``, or the ``loadkit.acks/v1`` JSON lines of older runs;
    :meth:`RunDir.ack_logs` lists a run's), in order; a missing file is an empty log, a record
    cut short by a killed process is skipped."""
    acks: list[Ack] = []
    for path in paths:
        if is_v2(path):
            acks.extend(_columns_acks(path))
            continue
        acks.extend(read_acks_of(read_records(path)))
    return acks


def _columns_acks(path: Path) -> list[Ack]:
    """A binary log's records as :class:`Ack` (straight from its columns: no dict per record)."""
    cols = read_columns(path)
    views = [View(v) for v in VIEWS]
    flags = cols.flags.tolist()

    def present(values: Any, bit: int) -> list[int | None]:
        return [v if f & bit else None for v, f in zip(values.tolist(), flags, strict=True)]

    out = list(
        map(
            Ack,
            cols.keys,
            [views[v] for v in cols.view.tolist()],
            present(cols.account, 1),
            present(cols.amount, 8),
            present(cols.payer, 2),
            present(cols.payee, 4),
        )
    )
    return out + read_acks_of(cols.extra)


def read_acks_of(records: Iterable[dict[str, Any]]) -> list[Ack]:
    """:class:`Ack` of records given as dicts (an extension record, a JSON line)."""
    out = []
    for d in records:
        if not isinstance(d.get("key"), str):
            continue
        try:
            view = View(str(d.get("view")))
        except ValueError:
            view = View.UNKNOWN
        account, amount = d.get("account"), d.get("amount")
        out.append(
            Ack(
                d["key"],
                view,
                account if isinstance(account, int) else None,
                amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
                _account(d.get("from")),
                _account(d.get("to")),
            )
        )
    return out


def _account(value: object) -> AccountRef | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, int | str) else None


#: the part before the number of the idempotency keys loadkit's load processes make
#: (``loadkit.load.client.KeyMaker``: ``lk-<8 random hex, new in every load process>-<share>-<n>``;
#: what :func:`~.columns.split_key` calls its prefix)
GENERATED_PREFIX = re.compile(r"lk-[0-9a-f]{8}-\d+-")


def compare(
    acks: Iterable[Ack] | AckTable,
    applied: Iterable[Applied] | AppliedTable,
    *,
    source: str,
    money_conserved: bool | None = None,
    negative_balances: int | None = None,
    unsafe_mode: str | None = None,
    ledger: dict[str, Any] | None = None,
) -> IntegrityResult:
    """Compare the client's record with the applied movements (see the module docstring).

    Either side may be a list of values or a table (:mod:`loadkit.integrity.columns`: a run's
    logs through :func:`~loadkit.integrity.columns.read_ack_table`, the reference ledger's
    rows as fetched); the comparison itself is over columns either way."""
    from loadkit.integrity.columns import AckTable, AppliedTable, compare_tables

    if not isinstance(acks, AckTable):
        acks = AckTable.of(acks)
    if not isinstance(applied, AppliedTable):
        applied = AppliedTable.of(applied, acks.interner)
    return compare_tables(
        acks,
        applied,
        source=source,
        money_conserved=money_conserved,
        negative_balances=negative_balances,
        unsafe_mode=unsafe_mode,
        ledger=ledger,
    )
