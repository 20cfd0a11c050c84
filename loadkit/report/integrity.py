"""The money integrity part of every report, from ``integrity.json`` (docs/integrity.md).

One list of rows that the terminal, Markdown and HTML renderers each lay out their own way::

    rows = integrity_rows(m.integrity)   # [("lost (acknowledged, not in …)", "519", True), …]
    integrity_title(m.integrity)         # "Money integrity: VIOLATED (reference ledger)"
"""

from __future__ import annotations

from typing import Any

#: (key in integrity.json, label, a non-zero value is a violation)
_COUNTS = (
    ("lost", "lost (acknowledged, not in the ledger)", True),
    ("duplicated", "duplicated (applied more than once)", True),
    ("mismatched", "mismatched (another amount, payer or payee)", True),
    ("unexpected", "unexpected (applied, never sent)", True),
    ("refused_applied", "refused (4xx) yet applied", True),
    ("unknown_applied", "unknown outcome → applied", False),
    ("unknown_not_applied", "unknown outcome → not applied", False),
    ("negative_balances", "negative balances", True),
)


def integrity_state(data: dict[str, Any] | None) -> str:
    """``clean``, ``violated``, ``not run`` (no file) or ``could not run``."""
    if not data:
        return "not run"
    ok = data.get("ok")
    return "clean" if ok is True else "violated" if ok is False else "could not run"


def integrity_title(data: dict[str, Any] | None) -> str:
    state = integrity_state(data).upper() if integrity_state(data) == "violated" else None
    text = f"Money integrity: {state or integrity_state(data)}"
    if data and data.get("source"):
        text += f" ({data['source']} ledger)"
    return text


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def integrity_rows(data: dict[str, Any] | None) -> list[tuple[str, str, bool]]:
    """``(label, value, bad)`` rows; empty when no check ran."""
    if not data:
        return []
    rows: list[tuple[str, str, bool]] = []
    if data.get("unsafe_mode"):
        rows.append(("UNSAFE wallet mode", str(data["unsafe_mode"]), True))
    if data.get("error"):
        rows.append(("could not run", str(data["error"]), True))
        return rows
    acks = data.get("acks") or {}
    rows.append(("money movements sent", _num(acks.get("total")), False))
    for view in ("acknowledged", "refused", "unknown"):
        rows.append((f"  {view}", _num(acks.get(view)), False))
    if acks.get("in_flight"):  # only when a load process died with movements in flight
        rows.append(("    in flight when their load process died", _num(acks["in_flight"]), False))
    for key, label, violation in _COUNTS:
        value = data.get(key)
        bad = violation and isinstance(value, int) and value > 0
        rows.append((label, _num(value), bad))
    conserved = data.get("money_conserved")
    rows.append(
        (
            "money conserved",
            "yes" if conserved is True else "NO" if conserved is False else "cannot tell",
            conserved is False,
        )
    )
    for kind in ("lost", "duplicated", "mismatched", "unexpected", "refused_applied"):
        examples = (data.get("examples") or {}).get(kind) or []
        if examples:
            rows.append((f"examples: {kind}", ", ".join(str(e) for e in examples[:5]), True))
    return rows
