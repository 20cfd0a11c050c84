"""``summary.md``: the report as a pull-request comment — a warning when the run did not end as
planned, the verdict, a per-phase table, a per-fault table with recovery and how each instance
fared, the breakdowns by instance, network class and journey, and the top busy causes (the
client's, and the target's own when they were scraped); a gated run's gate table on top (from
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
from loadkit.report.verdict import ms, pct, recovery_text, secs, window
from loadkit.report.views import (
    DIMENSION_TITLES,
    banners,
    fault_instances_text,
    scope_title,
    top_causes,
)

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


def _report(m: RunMetrics, top_causes_n: int) -> str:
    t = m.total
    scope = scope_title(m)
    out = [f"### loadkit: {m.profile} — {m.status}" + (f" — only {scope}" if scope else ""), ""]
    for banner in banners(m):
        icon = "⚠️" if banner.kind == "bad" else "ℹ️"
        out += [f"> {icon} **{banner.title}**: {banner.text}", ""]
    out += [
        f"**{m.verdict}**",
        "",
        f"User actions: {t.action.counts.scheduled:,} scheduled, "
        f"{pct(t.action.busy_rate, 2)} busy after retries, "
        f"{pct(t.request.busy_rate, 2)} of {t.request.counts.answered:,} requests busy; "
        f"p95 {ms(t.action.latency.p95)}, p99 {ms(t.action.latency.p99)}; "
        f"offered {_rate(t.offered_rate)}, achieved {_rate(t.achieved_rate)}, "
        f"goodput {_rate(t.goodput_rate)}; p95 service time {ms(t.action.service.p95)}; "
        f"unsent {t.action.counts.unsent:,} ({pct(t.unsent_share, 2)})"
        + ("" if t.valid else " — **INVALID run (over 1% unsent)**"),
        "",
    ]
    if m.phases:
        rows = [
            [
                p.name,
                window(p.start_s, p.end_s),
                _rate(p.offered_rate),
                _rate(p.achieved_rate),
                _rate(p.goodput_rate),
                pct(p.action.busy_rate, 2),
                pct(p.request.busy_rate, 2),
                ms(p.action.latency.p95),
                ms(p.action.latency.p99),
                ms(p.action.service.p95),
                f"{p.action.counts.unsent:,}",
            ]
            for p in m.phases
        ]
        header = ["phase", "window", "offered", "achieved", "goodput", "busy", "busy (requests)"]
        header += ["p95", "p99", "p95 service", "unsent"]
        out += ["#### Phases", "", *_table(header, rows, set(range(1, 11))), ""]
    if m.faults:
        limit = f" (limit {pct(m.limit.value)}, from {m.limit.source})" if m.limit else ""
        instances = any(f.instances for f in m.faults)
        rows = [
            [
                f.name,
                f.type,
                window(f.start_s, f.end_s),
                pct(f.action.busy_rate, 2),
                f"{f.busy_s} s",
                pct(f.peak_10s),
                recovery_text(f),
            ]
            + ([fault_instances_text(f)] if instances else [])
            for f in m.faults
        ]
        header = ["fault", "type", "window", "busy", "busy for", "worst 10 s", "recovery"]
        header += ["by instance (hit: named by the fault's target)"] if instances else []
        out += [f"#### Faults{limit}", "", *_table(header, rows, {2, 3, 4, 5}), ""]
    for b in m.breakdowns:
        title = DIMENSION_TITLES.get(b.dimension, b.dimension)
        rows = [
            [
                r.value,
                f"{r.action.counts.answered:,}",
                pct(r.action.busy_rate, 2),
                pct(r.request.busy_rate, 2),
                ms(r.action.latency.p95),
                ms(r.action.service.p95),
                top_causes(r.request.counts.causes),
                " · ".join(f"{s.phase} {pct(s.busy_rate, 1)}" for s in r.phases),
            ]
            for r in b.rows
        ]
        header = [title, "answered", "busy", "busy (requests)", "p95", "p95 service"]
        header += ["top causes", "busy by phase"]
        out += [f"#### By {title}", "", *_table(header, rows, {1, 2, 3, 4, 5}), ""]
    if m.causes:
        rows = [
            [c.cause, f"{c.requests:,}", f"{c.actions:,}", pct(c.share)]
            for c in m.causes[:top_causes_n]
        ]
        out += ["#### Top busy causes (the client's view)", ""]
        out += [*_table(["cause", "requests", "actions", "share"], rows, {1, 2, 3}), ""]
    server = m.server_causes
    if server is not None:
        rows = [
            [cause, server.groups.get(cause, ""), f"{n:,}"]
            + [f"{per.get(cause, 0):,}" for per in server.instances.values()]
            for cause, n in list(server.total.items())[:top_causes_n]
        ]
        header = ["cause", "where", "busy answers", *server.instances]
        out += [f"#### Busy causes the target counted ({server.source})", ""]
        out += [*_table(header, rows, set(range(2, len(header)))), ""] if rows else ["none", ""]
        rows = [
            [
                p.name,
                window(p.start_s, p.end_s),
                top_causes(p.request.counts.causes),
                top_causes(p.server_causes),
            ]
            for p in m.phases
        ]
        rows += [
            [
                f"fault {f.name}",
                window(f.start_s, f.end_s),
                top_causes(f.request.counts.causes),
                top_causes(f.server_causes),
            ]
            for f in m.faults
        ]
        out += ["Client and server causes by phase and fault:", ""]
        out += [*_table(["phase or fault", "window", "client", "server"], rows, set()), ""]
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
        out += [f"Worst 10 s: {pct(w.busy_rate)} busy ({window(w.start_s, w.end_s)}).", ""]
    if m.notes:
        out += ["Notes: " + "; ".join(m.notes), ""]
    out.append(f"<sub>run {m.run_id} · {secs(m.duration_s)}</sub>")
    return "\n".join(out) + "\n"
