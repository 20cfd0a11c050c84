"""The comparison at the heart of the integrity check: what the client saw vs what the ledger holds.

Pure functions over plain values, so that hand-built logs and ledgers drive it in tests::

    acks = [Ack("k1", View.ACKNOWLEDGED), Ack("k2", View.UNKNOWN)]
    result = compare(acks, [Applied("k1", 2)], source="sql")
    result.duplicated, result.unknown_not_applied, result.ok      # 1, 1, False

A movement is identified by its idempotency key. ``acks.jsonl`` may hold a key more than once
(it should not); the strongest view wins (acknowledged, then refused, then unknown). The ledger
side lists each applied key with how many times it was applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from loadkit.rundir import INTEGRITY

SCHEMA = "loadkit.integrity/v1"
FILENAME = INTEGRITY
#: examples kept per kind of problem
MAX_EXAMPLES = 10


class View(StrEnum):
    """The client's final view of one money movement (``acks.jsonl`` ``view``)."""

    ACKNOWLEDGED = "acknowledged"  # 2xx
    REFUSED = "refused"  # a definite 4xx (not 429)
    UNKNOWN = "unknown"  # timeout, connection lost, 5xx, 429/503 after the last retry


_STRENGTH = {View.UNKNOWN: 0, View.REFUSED: 1, View.ACKNOWLEDGED: 2}


class Source(StrEnum):
    """Where the applied movements came from."""

    REFERENCE = "reference"  # the reference wallet's database
    SQL = "sql"  # the user's query against their database
    HTTP = "http"  # the user's endpoint listing applied ids


@dataclass(frozen=True, slots=True)
class Ack:
    """One line of ``acks.jsonl`` (only what the check needs)."""

    key: str
    view: View
    account: int | None = None
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """One key the ledger applied, ``count`` times."""

    key: str
    count: int = 1


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
                "total": self.total,
            },
            "lost": self.lost,
            "duplicated": self.duplicated,
            "extra_applications": self.extra_applications,
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


def read_acks(path: Path) -> list[Ack]:
    """The acknowledgement log (``acks.jsonl``, schema ``loadkit.acks/v1``); a missing file is
    an empty log, a line cut short by a killed run is skipped."""
    acks: list[Ack] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return acks
    for line in raw.splitlines():
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(d, dict) or "schema" in d or not isinstance(d.get("key"), str):
            continue
        try:
            view = View(str(d.get("view")))
        except ValueError:
            view = View.UNKNOWN
        account, amount = d.get("account"), d.get("amount")
        acks.append(
            Ack(
                d["key"],
                view,
                account if isinstance(account, int) else None,
                amount if isinstance(amount, int) else None,
            )
        )
    return acks


def _views(acks: Iterable[Ack]) -> dict[str, View]:
    views: dict[str, View] = {}
    for ack in acks:
        old = views.get(ack.key)
        if old is None or _STRENGTH[ack.view] > _STRENGTH[old]:
            views[ack.key] = ack.view
    return views


def _applied(applied: Iterable[Applied]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in applied:
        counts[a.key] = counts.get(a.key, 0) + a.count
    return counts


def compare(
    acks: Iterable[Ack],
    applied: Iterable[Applied],
    *,
    source: str,
    money_conserved: bool | None = None,
    negative_balances: int | None = None,
    unsafe_mode: str | None = None,
    ledger: dict[str, Any] | None = None,
) -> IntegrityResult:
    """Compare the client's record with the applied movements (see the module docstring)."""
    views = _views(acks)
    counts = _applied(applied)
    r = IntegrityResult(
        source=source,
        money_conserved=money_conserved,
        negative_balances=negative_balances,
        unsafe_mode=unsafe_mode,
        ledger=ledger,
    )
    examples: dict[str, list[str]] = {
        "lost": [],
        "duplicated": [],
        "unexpected": [],
        "refused_applied": [],
    }

    def example(kind: str, key: str) -> None:
        if len(examples[kind]) < MAX_EXAMPLES:
            examples[kind].append(key)

    for key, view in views.items():
        n = counts.get(key, 0)
        if view is View.ACKNOWLEDGED:
            r.acknowledged += 1
            if n == 0:
                r.lost += 1
                example("lost", key)
        elif view is View.REFUSED:
            r.refused += 1
            if n > 0:
                r.refused_applied += 1
                example("refused_applied", key)
        else:
            r.unknown += 1
            if n > 0:
                r.unknown_applied += 1
            else:
                r.unknown_not_applied += 1
    for key, n in counts.items():
        if n > 1:
            r.duplicated += 1
            r.extra_applications += n - 1
            example("duplicated", key)
        if n > 0 and key not in views:
            r.unexpected += 1
            example("unexpected", key)
    r.examples = {k: v for k, v in examples.items() if v or k != "refused_applied"}
    return r
