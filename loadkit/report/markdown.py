"""``summary.md``: the report as a pull-request comment — the verdict, a per-phase table, a
per-fault table with recovery, and the top busy causes; a gated run's gate table on top (from
``gate.json``, between ``<!-- loadkit:gate -->`` and ``<!-- /loadkit:gate -->``)::

    RunDir(run_dir).summary_md.write_text(render_markdown(compute_metrics(run_dir)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadkit.report.gateview import GateView, gate_view
from loadkit.report.integrity import integrity_rows, integrity_title
from loadkit.report.model import RunMetrics
from loadkit.report.security import TITLE as SECURITY_TITLE
from loadkit.report.security import security_rows
from loadkit.report.verdict import ms, pct, recovery_text, secs

if TYPE_CHECKING:
    from loadkit.report.formats import ReportOptions

#: the gate's section is marked, so that scripts can cut it out of a summary
MD_BEGIN = "<!-- loadkit:gate -->"
MD_END = "<!-- /loadkit:gate -->"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def render_markdown(
    m: RunMetrics, options: ReportOptions | None = None, *, top_causes: int = 5
) -> str:
    """The Markdown summary (GitHub-flavoured tables); the gate's section first when the run
    was gated."""
    gate = gate_view(m.gate)
    body = _report(m, top_causes)
    return body if gate is None else gate_markdown(gate) + "\n" + body


def gate_markdown(gate: GateView) -> str:
    """The gate's section: the headline, every objective, the failures, the SLO file."""
    icon = "✅" if gate.passed else "❌"
    baseline = gate.has_baseline
    header = ["", "objective", "measured", "limit"] + (["baseline"] if baseline else [])
    lines = [
        MD_BEGIN,
        f"### {icon} {gate.headline}",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---", "---", "---:", "---:"] + (["---:"] if baseline else [])) + " |",
    ]
    for row in gate.rows:
        cells = [row.title, row.measured_text, row.limit_text]
        cells += [row.baseline_text] if baseline else []
        text = [c.replace("|", "\\|") for c in cells]
        lines.append("| " + " | ".join(["✅" if row.passed else "❌", *text]) + " |")
    failed = gate.failure_lines
    if failed:
        lines += ["", *[f"- {line}" for line in failed]]
    if gate.baseline_dir is not None:
        lines += ["", f"Baseline: `{gate.baseline_dir}`"]
    lines += ["", f"<sub>SLO file `{gate.slo_file}`</sub>", MD_END, ""]
    return "\n".join(lines)


def _report(m: RunMetrics, top_causes: int) -> str:
    t = m.total
    status = m.status if m.status != "completed" else "completed"
    out = [
        f"### loadkit: {m.profile} — {status}",
        "",
        f"**{m.verdict}**",
        "",
        f"User actions: {t.action.counts.scheduled:,} scheduled, "
        f"{pct(t.action.busy_rate, 2)} busy after retries, "
        f"{pct(t.request.busy_rate, 2)} of {t.request.counts.answered:,} requests busy; "
        f"p95 {ms(t.action.latency.p95)}, p99 {ms(t.action.latency.p99)}; "
        f"offered {_rate(t.offered_rate)}, achieved {_rate(t.achieved_rate)}; "
        f"unsent {t.action.counts.unsent:,} ({pct(t.unsent_share, 2)})"
        + ("" if t.valid else " — **INVALID run (over 1% unsent)**"),
        "",
    ]
    if m.phases:
        rows = [
            [
                p.name,
                f"{p.duration_s:,.0f} s",
                _rate(p.offered_rate),
                _rate(p.achieved_rate),
                pct(p.action.busy_rate, 2),
                pct(p.request.busy_rate, 2),
                ms(p.action.latency.p95),
                ms(p.action.latency.p99),
                f"{p.action.counts.unsent:,}",
            ]
            for p in m.phases
        ]
        header = ["phase", "length", "offered", "achieved", "busy", "busy (requests)"]
        header += ["p95", "p99", "unsent"]
        out += ["#### Phases", "", *_table(header, rows, set(range(1, 9))), ""]
    if m.faults:
        limit = f" (limit {pct(m.limit.value)}, from {m.limit.source})" if m.limit else ""
        rows = [
            [
                f.name,
                f.type,
                f"{f.start_s:,.0f}–{f.end_s:,.0f} s"
                if f.end_s is not None
                else f"{f.start_s:,.0f} s–",
                pct(f.action.busy_rate, 2),
                f"{f.busy_s} s",
                pct(f.peak_10s),
                recovery_text(f),
            ]
            for f in m.faults
        ]
        header = ["fault", "type", "window", "busy", "busy for", "worst 10 s", "recovery"]
        out += [f"#### Faults{limit}", "", *_table(header, rows, {3, 4, 5}), ""]
    if m.causes:
        rows = [
            [c.cause, f"{c.requests:,}", f"{c.actions:,}", pct(c.share)]
            for c in m.causes[:top_causes]
        ]
        out += ["#### Top busy causes", ""]
        out += [*_table(["cause", "requests", "actions", "share"], rows, {1, 2, 3}), ""]
    if m.integrity:
        rows = [
            [label, f"**{value}**" if bad else value]
            for label, value, bad in integrity_rows(m.integrity)
        ]
        out += [f"#### {integrity_title(m.integrity)}", ""]
        out += [*_table(["check", "result"], rows, {1}), ""]
    if security := security_rows(m):
        rows = [[label, value] for label, value in security]
        out += [f"#### {SECURITY_TITLE}", ""]
        out += [*_table(["counter", "during the run"], rows, {1}), ""]
    if m.worst_10s is not None and m.worst_10s.busy_rate:
        w = m.worst_10s
        out += [f"Worst 10 s: {pct(w.busy_rate)} busy ({w.start_s:.0f}–{w.end_s:.0f} s).", ""]
    if m.notes:
        out += ["Notes: " + "; ".join(m.notes), ""]
    out.append(f"<sub>run {m.run_id} · {secs(m.duration_s)}</sub>")
    return "\n".join(out) + "\n"
