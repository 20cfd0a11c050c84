"""The integrity comparison as it was first written: one Python object per movement and per
ledger row. The vectorised :func:`loadkit.integrity.compare` must give the same result on every
input (tests/integrity/test_columns.py); this is the straightforward definition it is checked
against."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from loadkit.integrity.core import (
    _STRENGTH,
    MAX_EXAMPLES,
    AccountRef,
    Ack,
    Applied,
    IntegrityResult,
    View,
)


@dataclass
class _Sent:
    """What the client's lines say about one key: its strongest view, and the first amount,
    payer and payee any of them names."""

    view: View
    amount: int | None
    payer: AccountRef | None
    payee: AccountRef | None


def _views(acks: Iterable[Ack]) -> dict[str, _Sent]:
    views: dict[str, _Sent] = {}
    for ack in acks:
        old = views.get(ack.key)
        if old is None:
            views[ack.key] = _Sent(ack.view, ack.amount, ack.payer, ack.payee)
            continue
        if _STRENGTH[ack.view] > _STRENGTH[old.view]:
            old.view = ack.view
        old.amount = old.amount if old.amount is not None else ack.amount
        old.payer = old.payer if old.payer is not None else ack.payer
        old.payee = old.payee if old.payee is not None else ack.payee
    return views


def _applied(applied: Iterable[Applied]) -> tuple[dict[str, int], dict[str, list[Applied]]]:
    """Applications per key, and the rows of each key that name an amount, payer or payee."""
    counts: dict[str, int] = {}
    details: dict[str, list[Applied]] = {}
    for a in applied:
        counts[a.key] = counts.get(a.key, 0) + a.count
        if a.amount is not None or a.payer is not None or a.payee is not None:
            details.setdefault(a.key, []).append(a)
    return counts, details


def _same(ours: AccountRef | int, theirs: AccountRef | int) -> bool:
    """Equal, an id and its text form included (a ledger may give ids as strings)."""
    return ours == theirs or str(ours) == str(theirs)


def differences(sent: _Sent, applied: Applied) -> list[str]:
    """What ``applied`` did otherwise than the client sent (only what both sides name)."""
    out = []
    for name, ours, theirs in (
        ("amount", sent.amount, applied.amount),
        ("payer", sent.payer, applied.payer),
        ("payee", sent.payee, applied.payee),
    ):
        if ours is not None and theirs is not None and not _same(ours, theirs):
            out.append(f"{name} {theirs} (sent {ours})")
    return out


def compare_reference(
    acks: Iterable[Ack],
    applied: Iterable[Applied],
    *,
    source: str,
    money_conserved: bool | None = None,
    negative_balances: int | None = None,
    unsafe_mode: str | None = None,
    ledger: dict[str, Any] | None = None,
) -> IntegrityResult:
    """The per-key definition, one Python object per movement (the former ``compare``)."""
    views = _views(acks)
    counts, details = _applied(applied)
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
        "mismatched": [],
        "unexpected": [],
        "refused_applied": [],
    }

    def example(kind: str, key: str) -> None:
        if len(examples[kind]) < MAX_EXAMPLES:
            examples[kind].append(key)

    for key, sent in views.items():
        view = sent.view
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
            r.in_flight += view is View.SENT
            if n > 0:
                r.unknown_applied += 1
            else:
                r.unknown_not_applied += 1
        rows = details.get(key, ())
        if rows and (sent.amount is not None or sent.payer is not None or sent.payee is not None):
            r.details_compared += 1
            found = [d for row in rows for d in differences(sent, row)]
            if found:
                r.mismatched += 1
                example("mismatched", f"{key}: {', '.join(found)}")
    for key, n in counts.items():
        if n > 1:
            r.duplicated += 1
            r.extra_applications += n - 1
            example("duplicated", key)
        if n > 0 and key not in views:
            r.unexpected += 1
            example("unexpected", key)
    r.examples = {
        k: v for k, v in examples.items() if v or k not in ("refused_applied", "mismatched")
    }
    return r
