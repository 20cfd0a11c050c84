"""The terminal report (rich): a banner when the run did not end as planned, the verdict, then
phases, faults (with how each instance fared), the breakdowns by instance, network class and
journey, client and server busy causes, and a gated run's objectives table last (from
``gate.json``), readable from 80 columns up (narrow terminals drop the less important columns
rather than wrap numbers). Moments of the run are run-clock ``m:ss``, as in every report::

    render_terminal(compute_metrics(run_dir), Console())
    render_gate(gate_view(json.loads(RunDir(run_dir).gate.read_text())), Console())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from loadkit.report.gateview import GateView, gate_view
from loadkit.report.integrity import integrity_rows, integrity_state, integrity_title
from loadkit.report.model import RunMetrics
from loadkit.report.security import TITLE as SECURITY_TITLE
from loadkit.report.security import security_rows
from loadkit.report.verdict import ms, pct, recovery_text, window
from loadkit.report.views import (
    DIMENSION_TITLES,
    banners,
    fault_instances_text,
    scope_title,
    top_causes,
)

if TYPE_CHECKING:
    from loadkit.report.formats import ReportOptions

#: below this width, tables show fewer columns
NARROW = 100


def _busy_style(rate: float | None, limit: float | None) -> str:
    if not rate:
        return "green"
    return "red" if rate > (limit if limit is not None else 0.05) else "yellow"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def _phases(m: RunMetrics, wide: bool) -> Table:
    table = Table(title="phases (user actions after retries)", title_justify="left", expand=False)
    table.add_column("phase", no_wrap=True, overflow="ellipsis", max_width=22)
    columns = ["window", "offered", "achieved", "goodput", "busy", "p95", "p99", "p95 svc"]
    columns.append("unsent")
    if not wide:
        for col in ("window", "goodput", "p99", "p95 svc"):
            columns.remove(col)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    limit = m.limit.value if m.limit else None
    rows = [
        (
            p.name,
            window(p.start_s, p.end_s),
            p.offered_rate,
            p.achieved_rate,
            p.goodput_rate,
            p.action,
            p.request,
        )
        for p in m.phases
    ]
    t = m.total
    whole = window(0, m.duration_s)
    rows.append(
        ("all", whole, t.offered_rate, t.achieved_rate, t.goodput_rate, t.action, t.request)
    )
    for i, (name, span, offered, achieved, goodput, action, _request) in enumerate(rows):
        cells: dict[str, str | Text] = {
            "window": span,
            "offered": _rate(offered),
            "achieved": _rate(achieved),
            "goodput": _rate(goodput),
            "busy": Text(pct(action.busy_rate, 2), _busy_style(action.busy_rate, limit)),
            "p95": ms(action.latency.p95),
            "p99": ms(action.latency.p99),
            "p95 svc": ms(action.service.p95),
            "unsent": Text(f"{action.counts.unsent:,}", "red" if action.counts.unsent else ""),
        }
        if i == len(rows) - 1:
            table.add_section()
        table.add_row(name, *(cells[c] for c in columns), style="bold" if name == "all" else "")
    return table


def _faults(m: RunMetrics, wide: bool) -> Table:
    limit = f" — limit {pct(m.limit.value)} ({m.limit.source})" if m.limit else ""
    table = Table(title=f"faults{limit}", title_justify="left")
    table.add_column("fault", no_wrap=True, overflow="ellipsis", max_width=20)
    if wide:
        table.add_column("type", no_wrap=True, overflow="ellipsis", max_width=22)
    for col in ("window", "busy", "busy for"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("recovery", overflow="fold")
    instances = any(f.instances for f in m.faults)
    if instances:
        table.add_column("by instance", overflow="fold")
    for f in m.faults:
        recovery = Text(recovery_text(f), "green" if f.recovered else "red")
        cells: list[str | Text] = [f.name]
        if wide:
            cells.append(f.type)
        cells += [window(f.start_s, f.end_s), pct(f.action.busy_rate), f"{f.busy_s} s", recovery]
        if instances:
            cells.append(fault_instances_text(f).replace(" · ", "\n"))
        table.add_row(*cells)
    return table


def _breakdown(m: RunMetrics, dimension: str, wide: bool) -> Table | None:
    b = m.breakdown(dimension)
    if b is None or not b.rows:
        return None
    title = DIMENSION_TITLES.get(dimension, dimension)
    table = Table(title=f"by {title} (user actions)", title_justify="left")
    table.add_column(title, no_wrap=True, overflow="ellipsis", max_width=28)
    columns = ["answered", "busy", "p95", "p95 svc"]
    if not wide:
        columns.remove("p95 svc")
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("top causes", overflow="fold")
    limit = m.limit.value if m.limit else None
    for r in b.rows:
        cells: dict[str, str | Text] = {
            "answered": f"{r.action.counts.answered:,}",
            "busy": Text(pct(r.action.busy_rate, 2), _busy_style(r.action.busy_rate, limit)),
            "p95": ms(r.action.latency.p95),
            "p95 svc": ms(r.action.service.p95),
        }
        table.add_row(r.value, *(cells[c] for c in columns), top_causes(r.request.counts.causes))
    return table


def _causes(m: RunMetrics) -> Table:
    table = Table(title="busy causes (the client's view)", title_justify="left")
    table.add_column("cause", no_wrap=True)
    for col in ("requests", "actions", "share"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in m.causes[:7]:
        table.add_row(c.cause, f"{c.requests:,}", f"{c.actions:,}", pct(c.share))
    return table


def _server_causes(m: RunMetrics) -> Table | None:
    server = m.server_causes
    if server is None:
        return None
    table = Table(title=f"busy causes the target counted ({server.source})", title_justify="left")
    table.add_column("cause", no_wrap=True)
    if server.groups:
        table.add_column("where", no_wrap=True)
    table.add_column("answers", justify="right", no_wrap=True)
    table.add_column("by phase and fault", overflow="fold")
    for cause, n in list(server.total.items())[:7]:
        where = [
            f"{p.name} {p.server_causes[cause]:,}" for p in m.phases if p.server_causes.get(cause)
        ]
        where += [
            f"fault {f.name} {f.server_causes[cause]:,}"
            for f in m.faults
            if f.server_causes.get(cause)
        ]
        cells = [cause] + ([server.groups.get(cause, "")] if server.groups else [])
        table.add_row(*cells, f"{n:,}", ", ".join(where) or "-")
    if not server.total:
        table.add_row("none", *([""] if server.groups else []), "0", "-")
    return table


def _integrity(m: RunMetrics) -> Table:
    state = integrity_state(m.integrity)
    colour = {"clean": "green", "violated": "bold red"}.get(state, "yellow")
    table = Table(
        title=Text(integrity_title(m.integrity), style=colour),
        title_justify="left",
        show_header=False,
    )
    table.add_column("what", no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    for label, value, bad in integrity_rows(m.integrity):
        if label.startswith("examples"):
            continue
        table.add_row(label, Text(value, "red" if bad else ""))
    return table


def _security(m: RunMetrics) -> Table:
    table = Table(title=SECURITY_TITLE, title_justify="left", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    for label, value in security_rows(m):
        table.add_row(label, value)
    return table


def terminal_report(m: RunMetrics, *, width: int = 120) -> Group:
    """The renderable: build it for a console of ``width`` columns."""
    wide = width >= NARROW
    bad = m.status not in ("completed", "unknown") or not m.total.valid
    bad = bad or integrity_state(m.integrity) == "violated"
    style = "red" if bad else _busy_style(m.total.action.busy_rate, None)
    parts: list[Panel | Table | Text] = []
    for banner in banners(m):
        colour = "bold red" if banner.kind == "bad" else "bold yellow"
        parts.append(
            Panel(Text(banner.text), title=Text(banner.title, colour), border_style=colour)
        )
    scope = scope_title(m)
    title = f"{m.profile} — {m.status}" + (f" — only {scope}" if scope else "")
    parts.append(Panel(Text(m.verdict), title=title, border_style=style))
    if m.phases:
        parts.append(_phases(m, wide))
    if m.faults:
        parts.append(_faults(m, wide))
    for dimension in ("instance", "network", "journey"):
        table = _breakdown(m, dimension, wide)
        if table is not None:
            parts.append(table)
    if m.causes:
        parts.append(_causes(m))
    server = _server_causes(m)
    if server is not None:
        parts.append(server)
    if m.integrity:
        parts.append(_integrity(m))
    if m.security:
        parts.append(_security(m))
    if m.notes:
        parts.append(Text("notes: " + "; ".join(m.notes), style="dim"))
    gate = gate_view(m.gate)
    if gate is not None:
        parts += [Text(""), *gate_table(gate)]
    return Group(*parts)


def render_terminal(m: RunMetrics, console: Console) -> None:
    """Print the report to ``console`` (fits its width)."""
    console.print(terminal_report(m, width=console.width))


def print_report(m: RunMetrics, options: ReportOptions) -> None:
    """The ``terminal`` format: :func:`render_terminal` to ``options.console``."""
    render_terminal(m, options.console or Console())


# -- the gate ---------------------------------------------------------------------------------


def gate_table(gate: GateView) -> list[Table | Text]:
    """Every objective with measured value, limit and verdict (fits 80 columns), then a line
    per failure, and the headline."""
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"SLO {gate.slo_name} — run {gate.run_id}",
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("", no_wrap=True, width=4)
    table.add_column("objective", overflow="fold", ratio=1)
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    if gate.has_baseline:
        table.add_column("baseline", justify="right", no_wrap=True)
    for row in gate.rows:
        mark = Text("pass", style="green") if row.passed else Text("FAIL", style="bold red")
        cells: list[Text | str] = [mark, row.title, row.measured_text, row.limit_text]
        if gate.has_baseline:
            cells.append(row.baseline_text)
        table.add_row(*cells)
    parts: list[Table | Text] = [table]
    for line in gate.failure_lines:
        parts.append(Text.assemble(("✗ ", "red"), line))
    parts.append(Text(gate.headline, style="bold green" if gate.passed else "bold red"))
    return parts


def render_gate(gate: GateView, console: Console) -> None:
    """Print :func:`gate_table` to ``console`` (``loadkit gate``'s table); the lines below the
    table do not wrap, so that a log keeps each failure on one line."""
    table, *lines = gate_table(gate)
    console.print(table)
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
