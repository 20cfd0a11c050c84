"""The one-sentence verdict at the top of every report, and the number formats reports share
(every report gives a moment of the run as the run clock's ``m:ss``, a length as seconds)::

verdict(m)  # "double11: 7.3% of user actions busy (worst 10 s: 38.0% at 2:00); db-down:
            #  busy for 41 s, recovered in 18 s; 0 unsent"
clock(82.0), window(82.0, 89.0)   # "1:22", "1:22–1:29"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadkit.report.model import FaultMetrics, RunMetrics


def clock(value: float) -> str:
    """Run-clock seconds as ``m:ss`` (``h:mm:ss`` past an hour): how every report gives a moment
    of the run."""
    s = round(value)
    h, rest = divmod(abs(s), 3600)
    m, sec = divmod(rest, 60)
    sign = "-" if s < 0 else ""
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


def window(start: float, end: float | None) -> str:
    """A window of the run clock: ``1:22–1:29`` (``1:22–…`` when it never ended)."""
    return f"{clock(start)}–{clock(end) if end is not None else '…'}"


def pct(rate: float | None, digits: int = 1) -> str:
    """``0.073`` → ``7.3%``; ``None`` → ``-``."""
    return "-" if rate is None else f"{rate * 100:.{digits}f}%"


def ms(value: float | None) -> str:
    """Milliseconds, readable: ``12 ms``, ``2.0 s``; ``None`` → ``-``."""
    if value is None:
        return "-"
    return f"{value / 1000:,.1f} s" if value >= 10_000 else f"{value:,.0f} ms"


def secs(value: float | None) -> str:
    """Seconds: ``18 s``, ``0.8 s``; ``None`` → ``-``."""
    if value is None:
        return "-"
    return f"{value:,.0f} s" if value >= 10 or value == int(value) else f"{value:,.1f} s"


def recovery_text(f: FaultMetrics) -> str:
    if f.error:
        return "not injected"
    if f.end_s is None:
        return "never reverted"
    if f.recovered:
        return f"recovered in {secs(f.recovery_s)}"
    return "not recovered"


def integrity_text(integrity: dict[str, object] | None) -> str | None:
    """A few words from ``integrity.json`` (written by the integrity check), if there is one."""
    if not integrity:
        return None
    ok = integrity.get("ok")
    unsafe = integrity.get("unsafe_mode")
    suffix = f" (unsafe wallet: {unsafe})" if unsafe else ""
    if ok is None:
        return "money integrity could not be checked" + suffix
    if ok is True:
        return "money integrity clean: nothing lost or duplicated" + suffix
    found = []
    for key, what in (
        ("lost", "lost"),
        ("duplicated", "duplicated"),
        ("mismatched", "mismatched"),
        ("unexpected", "unexpected"),
        ("refused_applied", "refused yet applied"),
        ("negative_balances", "negative balances"),
    ):
        value = integrity.get(key)
        if isinstance(value, int) and value > 0:
            found.append(f"{value:,} {what}")
    if integrity.get("money_conserved") is False:
        found.append("money not conserved")
    return "MONEY INTEGRITY VIOLATED: " + (", ".join(found) or "see integrity.json") + suffix


def verdict(m: RunMetrics) -> str:
    """One sentence: overall busy rate, the worst 10 s, each fault's impact, unsent, integrity."""
    parts: list[str] = []
    head = f"{m.profile}: {pct(m.total.action.busy_rate)} of user actions busy"
    if m.worst_10s is not None and m.worst_10s.busy_rate:
        head += f" (worst 10 s: {pct(m.worst_10s.busy_rate)} at {clock(m.worst_10s.start_s)})"
    if m.status not in ("completed", "unknown"):
        head = f"{head} — run {m.status}"
    parts.append(head)
    worst = sorted(m.faults, key=lambda f: -(f.action.busy_rate or 0.0))[:3]
    for f in worst:
        if f.busy_s == 0 and f.recovered:
            parts.append(f"{f.name}: no busy impact")
        else:
            parts.append(f"{f.name}: busy for {f.busy_s} s, {recovery_text(f)}")
    if len(m.faults) > len(worst):
        parts.append(f"{len(m.faults) - len(worst)} more fault(s)")
    unsent = m.total.action.counts.unsent
    if not m.total.valid:
        parts.append(f"INVALID: {pct(m.total.unsent_share)} of arrivals unsent")
    else:
        parts.append(f"{unsent:,} unsent")
    if (text := integrity_text(m.integrity)) is not None:
        parts.append(text)
    return "; ".join(parts)
