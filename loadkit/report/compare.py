"""Two runs side by side: deltas per phase, per busy cause, per fault and per value of each
breakdown (target instance, network class, journey), regressions flagged. Give both runs'
metrics the same :class:`~loadkit.report.model.Scope` to compare one slice (``loadkit compare
--journey pay``): every row is then that slice's.

A regression is, from run A (the baseline) to run B: a busy rate up by more than
``BUSY_POINTS`` (0.5 percentage point), p95 latency up by more than 20% and 5 ms, a fault that
recovered in A and not in B or takes more than 5 s longer, or B invalid (unsent) where A was not::

    c = compare_metrics(compute_metrics(old_dir), compute_metrics(new_dir))
    [r.name for r in c.rows if r.regression]
    only = Scope(journey="pay")
    compare_metrics(compute_metrics(old_dir, scope=only), compute_metrics(new_dir, scope=only))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from loadkit.report.model import LevelStats, RunMetrics
from loadkit.report.verdict import ms, pct, recovery_text

BUSY_POINTS = 0.005
P95_RATIO = 1.2
P95_MIN_MS = 5.0
RECOVERY_SLACK_S = 5.0


@dataclass(frozen=True)
class Row:
    """One compared line: ``kind`` is ``total``, ``phase``, ``cause``, ``fault``, ``instance``,
    ``network`` or ``journey``."""

    kind: str
    name: str
    a: str
    b: str
    delta: str
    regression: str | None = None  # why, when it is one


@dataclass
class Comparison:
    a: RunMetrics
    b: RunMetrics
    rows: list[Row] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]

    def to_dict(self) -> dict[str, Any]:
        """What ``loadkit compare --json`` prints."""
        return {
            "a": self.a.run_id,
            "b": self.b.run_id,
            "scope": self.b.scope,
            "rows": [asdict(r) for r in self.rows],
            "regressions": len(self.regressions),
        }


def _points(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{(b - a) * 100:+.2f} pt"


def _level_rows(kind: str, name: str, a: LevelStats | None, b: LevelStats | None) -> list[Row]:
    ra, rb = (a.busy_rate if a else None), (b.busy_rate if b else None)
    why = None
    if ra is not None and rb is not None and rb - ra > BUSY_POINTS:
        why = f"busy {pct(ra, 2)} → {pct(rb, 2)}"
    rows = [Row(kind, f"{name} busy", pct(ra, 2), pct(rb, 2), _points(ra, rb), why)]
    pa = a.latency.p95 if a else None
    pb = b.latency.p95 if b else None
    why = None
    if pa is not None and pb is not None and pb > pa * P95_RATIO and pb - pa > P95_MIN_MS:
        why = f"p95 {ms(pa)} → {ms(pb)}"
    delta = f"{(pb / pa - 1) * 100:+.0f}%" if pa and pb is not None else "-"
    rows.append(Row(kind, f"{name} p95", ms(pa), ms(pb), delta, why))
    return rows


def compare_metrics(a: RunMetrics, b: RunMetrics) -> Comparison:
    """Compare run ``b`` against the baseline ``a``."""
    c = Comparison(a, b)
    c.rows += _level_rows("total", "all actions", a.total.action, b.total.action)
    c.rows += _level_rows("total", "all requests", a.total.request, b.total.request)
    why = "run B invalid (over 1% unsent)" if a.total.valid and not b.total.valid else None
    c.rows.append(
        Row(
            "total",
            "unsent",
            f"{a.total.action.counts.unsent:,}",
            f"{b.total.action.counts.unsent:,}",
            _points(a.total.unsent_share, b.total.unsent_share),
            why,
        )
    )
    names = [p.name for p in a.phases] + [p.name for p in b.phases if a.phase(p.name) is None]
    for name in names:
        pa, pb = a.phase(name), b.phase(name)
        c.rows += _level_rows("phase", name, pa.action if pa else None, pb.action if pb else None)
    causes_a = {x.cause: x for x in a.causes}
    causes_b = {x.cause: x for x in b.causes}
    for cause in list(causes_a) + [x for x in causes_b if x not in causes_a]:
        xa, xb = causes_a.get(cause), causes_b.get(cause)
        na, nb = (xa.requests if xa else 0), (xb.requests if xb else 0)
        sa = na / a.total.request.counts.answered if a.total.request.counts.answered else None
        sb = nb / b.total.request.counts.answered if b.total.request.counts.answered else None
        why = (
            f"{cause} {pct(sa, 2)} → {pct(sb, 2)} of requests"
            if (sa is not None and sb is not None and sb - sa > BUSY_POINTS)
            else None
        )
        c.rows.append(
            Row(
                "cause",
                cause,
                f"{na:,} ({pct(sa, 2)})",
                f"{nb:,} ({pct(sb, 2)})",
                _points(sa, sb),
                why,
            )
        )
    fault_names = [f.name for f in a.faults] + [f.name for f in b.faults if a.fault(f.name) is None]
    for name in fault_names:
        fa, fb = a.fault(name), b.fault(name)
        why = None
        if fa and fb and fa.recovered and not fb.recovered:
            why = "no longer recovers"
        elif (
            fa
            and fb
            and fa.recovery_s is not None
            and fb.recovery_s is not None
            and fb.recovery_s - fa.recovery_s > RECOVERY_SLACK_S
        ):
            why = f"recovery {fa.recovery_s:.0f} s → {fb.recovery_s:.0f} s"
        delta = "-"
        if fa and fb and fa.recovery_s is not None and fb.recovery_s is not None:
            delta = f"{fb.recovery_s - fa.recovery_s:+.1f} s"
        c.rows.append(
            Row(
                "fault",
                f"{name} recovery",
                recovery_text(fa) if fa else "-",
                recovery_text(fb) if fb else "-",
                delta,
                why,
            )
        )
        c.rows += _level_rows("fault", name, fa.action if fa else None, fb.action if fb else None)
    for dimension in ("instance", "network", "journey"):
        ba, bb = a.breakdown(dimension), b.breakdown(dimension)
        rows_a = {r.value: r for r in (ba.rows if ba else [])}
        rows_b = {r.value: r for r in (bb.rows if bb else [])}
        for value in list(rows_a) + [v for v in rows_b if v not in rows_a]:
            ra, rb = rows_a.get(value), rows_b.get(value)
            c.rows += _level_rows(
                dimension, value, ra.action if ra else None, rb.action if rb else None
            )
    return c


def comparison_table(c: Comparison) -> Group:
    """The comparison for a terminal."""
    title = f"A: {c.a.run_id}  →  B: {c.b.run_id}"
    if c.b.scope:
        title += "  (only " + ", ".join(f"{k} {v}" for k, v in c.b.scope.items()) + ")"
    table = Table(title=title, title_justify="left")
    table.add_column("", no_wrap=True, style="dim")
    table.add_column("what", overflow="fold")
    for col in ("A", "B", "Δ"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    kind = None
    for r in c.rows:
        if kind is not None and r.kind != kind:
            table.add_section()
        flag = Text("regression", "bold red") if r.regression else Text("")
        table.add_row(r.kind if r.kind != kind else "", r.name, r.a, r.b, r.delta, flag)
        kind = r.kind
    n = len(c.regressions)
    summary = Text(
        f"{n} regression(s): " + "; ".join(r.regression or "" for r in c.regressions)
        if n
        else "no regressions",
        "bold red" if n else "green",
    )
    return Group(table, summary)


def render_comparison(c: Comparison, console: Console) -> None:
    console.print(comparison_table(c))
