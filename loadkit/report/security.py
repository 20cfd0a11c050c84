"""The "security throttling" part of every report, from ``security.json`` (the reference wallet's
anomaly counters during the run, written by ``loadkit.run.security``), next to the busy rate:
security throttling at peak is one of the causes of "wallet busy". One list of rows that the
terminal, Markdown and HTML renderers each lay out their own way::

    rows = security_rows(m)     # [("busy rate (user actions)", "3.2%"), ("throttled (429)", …), …]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadkit.report.model import RunMetrics

TITLE = "Security throttling"
HINT = (
    "The wallet's own anomaly counters during the run (every instance's admin API, before and "
    "after), next to the busy rate they may explain."
)

#: (event in security.json, label)
_EVENTS = (
    ("velocity", "users over the policy's rate (velocity)"),
    ("otp_failed", "wrong one-time passwords"),
    ("otp_locked", "OTP challenges locked"),
    ("login_failed", "failed logins"),
    ("login_locked", "accounts locked (logins)"),
)
#: refusals listed by name at most; the rest are summed
TOP_REFUSALS = 8


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def security_rows(m: RunMetrics) -> list[tuple[str, str]]:
    """``(label, value)`` rows; empty when the run has no ``security.json``."""
    data = m.security
    if not data:
        return []
    request = m.total.request.counts
    rows = [
        ("busy rate (user actions)", _pct(m.total.action.busy_rate)),
        ("throttled requests (429)", f"{request.causes.get('throttled', 0):,}"),
    ]
    events = data.get("events") or {}
    for key, label in _EVENTS:
        rows.append((label, f"{int(events.get(key, 0)):,}"))
    refusals = data.get("refusals") or {}
    total = sum(int(v) for v in refusals.values())
    rows.append(("refusals (4xx but 429), by reason", f"{total:,}"))
    ranked = sorted(refusals.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    for code, count in ranked[:TOP_REFUSALS]:
        rows.append((f"  {code}", f"{int(count):,}"))
    rest = sum(int(v) for _, v in ranked[TOP_REFUSALS:])
    if rest:
        rows.append(("  other reasons", f"{rest:,}"))
    for note in data.get("notes") or []:
        rows.append(("note", str(note)))
    return rows
