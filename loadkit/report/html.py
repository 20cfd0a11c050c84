"""``report.html``: one self-contained page (inline SVG charts and CSS; no JavaScript, nothing
fetched, works offline) with a banner for a run that did not end as planned, the verdict, busy
rate (overall and by instance or network class), causes, latency and service time, offered vs
achieved vs goodput over time, and the tables: phases, faults (with how each instance fared),
breakdowns by instance, network class and journey, client and server busy causes, endpoints;
a gated run's "Release gate" section (from ``gate.json``) on top. Every chart comes wide and
narrow; below 820 px the page shows the narrow ones, and wide tables scroll in their own box,
so the page never scrolls sideways::

    RunDir(run_dir).report_html.write_text(render_html(compute_metrics(run_dir)))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jinja2

from loadkit.report import charts
from loadkit.report.gateview import gate_view
from loadkit.report.integrity import integrity_rows, integrity_state, integrity_title
from loadkit.report.model import RunMetrics
from loadkit.report.security import HINT as SECURITY_HINT
from loadkit.report.security import TITLE as SECURITY_TITLE
from loadkit.report.security import security_rows
from loadkit.report.verdict import clock, ms, pct, recovery_text, secs
from loadkit.report.views import (
    DIMENSION_TITLES,
    scope_title,
    status_banner,
    tls_banner,
    top_causes,
)

if TYPE_CHECKING:
    from loadkit.report.formats import ReportOptions

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loadkit — {{ m.profile }} — {{ m.run_id }}</title>
<style>
:root { --ink:#1f2328; --dim:#59636e; --line:#d1d9e0; --bad:#b42318; --ok:#1a7f37;
--warn:#9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       color: var(--ink); margin: 0; background: #f6f8fa; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 40px; }
header h1 { font-size: 15px; font-weight: 600; color: var(--dim); margin: 0 0 6px;
            overflow-wrap: anywhere; }
.verdict { font-size: 20px; font-weight: 600; margin: 0 0 14px; overflow-wrap: anywhere; }
.verdict.bad { color: var(--bad); }
.banner { border-radius: 8px; padding: 10px 14px; margin: 0 0 14px; font-size: 15px;
          border: 2px solid var(--bad); background: #fff1f0; color: #6b1410; }
.banner.note { border-color: var(--warn); background: #fff8e6; color: #5c3d00; }
.banner b { display: block; font-size: 17px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px;
         margin-bottom: 18px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.tile b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
.tile span { color: var(--dim); font-size: 12px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 12px 16px; margin-bottom: 16px; min-width: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 10px 0 4px; color: var(--dim); }
p.hint { color: var(--dim); margin: 0 0 6px; font-size: 12px; }
svg.chart { width: 100%; height: auto; display: block; }
.chart-narrow { display: none; }
.scroll { overflow-x: auto; max-width: 100%; }
.pair { display: flex; flex-wrap: wrap; gap: 8px 32px; }
.pair > div { min-width: 0; max-width: 100%; }
table { border-collapse: collapse; width: auto; min-width: 60%; font-variant-numeric:
tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eaeef2; text-align: right; white-space:
nowrap; }
th { color: var(--dim); font-weight: 600; font-size: 12px; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
td.wrap { white-space: normal; text-align: left; min-width: 12em; }
td.sub { padding-left: 26px; color: var(--dim); }
td[title] { text-decoration: underline dotted #b0b8c0; }
.bad { color: var(--bad); } .ok { color: var(--ok); } .warn { color: var(--warn); }
.hit { font-weight: 600; color: var(--bad); }
.notes { color: var(--dim); font-size: 12px; }
footer { color: var(--dim); font-size: 12px; }
@media (max-width: 820px) {
  main { padding: 12px 10px 30px; }
  section { padding: 10px 10px; }
  .chart-wide { display: none; }
  .chart-narrow { display: block; max-width: 560px; margin: 0 auto; }
  .verdict { font-size: 17px; }
  .tiles { grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); }
  table { min-width: 0; }
}
</style></head>
<body><main>
<header>
<h1>loadkit · {{ m.profile }} · {{ m.status }}{% if m.scenario %} · chaos: {{ m.scenario }}{%
endif %}
 · run {{ m.run_id }}{% if scope %} · only {{ scope }}{% endif %}</h1>
{% if banner %}<div class="banner {{ 'note' if banner.kind == 'note' else '' }}" role="alert"
id="status"><b>{{ banner.title }}</b>{{ banner.text }}</div>{% endif %}
{% if tls_banner %}<div class="banner" role="alert" id="tls"><b>{{ tls_banner.title }}</b>{{
tls_banner.text }}</div>{% endif %}
<p class="verdict {{ 'bad' if bad else '' }}">{{ m.verdict }}</p>
</header>
<div class="tiles">
{% for value, label, cls in tiles %}<div class="tile"><b class="{{ cls }}">{{ value }}</b>
<span>{{ label }}</span></div>
{% endfor %}</div>
{% if gate %}<section id="gate"><h2 class="{{ 'ok' if gate.passed else 'bad' }}">Release gate:
{{ 'passed' if gate.passed else 'FAILED' }} (SLO {{ gate.slo_name }})</h2>
<p class="hint">From gate.json: {{ gate.slo_file }}{% if gate.baseline_dir %}, baseline
{{ gate.baseline_dir }}{% endif %}.{% if gate.invalid_reason %} The run is not valid:
{{ gate.invalid_reason }}.{% endif %}</p><div class="scroll"><table>
<tr><th class="l"></th><th class="l">objective</th><th>measured</th><th>limit</th>
{% if gate.has_baseline %}<th>baseline</th>{% endif %}<th class="l">detail</th></tr>
{% for o in gate.rows %}<tr><td class="l {{ 'ok' if o.passed else 'bad' }}">{{ 'pass' if
o.passed else 'FAIL' }}</td><td class="l wrap">{{ o.title }}</td>
<td class="{{ '' if o.passed else 'bad' }}">{{ o.measured_text }}</td><td>{{ o.limit_text }}</td>
{% if gate.has_baseline %}<td>{{ o.baseline_text }}</td>{% endif %}
<td class="l wrap">{{ o.detail }}</td></tr>
{% endfor %}</table></div></section>{% endif %}
{% for c in chart_list %}<section class="chart-section"><h2>{{ c.title }}</h2>
<p class="hint">{{ c.hint }}</p>
{% for variant, svg in c.svgs %}<div class="chart-{{ variant }}">{{ svg | safe }}</div>
{% endfor %}</section>
{% endfor %}
{% if m.phases %}<section id="phases"><h2>Phases</h2>
<p class="hint">Times are m:ss on the run clock{% if m.clock_t0 %}; hover a window for the wall
clock ({{ zone }}){% endif %}. Goodput: answered user actions that were not busy. The
causes of each phase are under <a href="#causes">Busy causes</a>.</p><div class="scroll"><table>
<tr><th>phase</th><th>window</th>{% if m.clock_t0 %}<th>starts (wall)</th>{% endif %}
<th>offered</th><th>achieved</th><th>goodput</th><th>busy</th>
<th>busy (requests)</th><th>p50</th><th>p95</th><th>p99</th><th>p95 service</th><th>unsent</th>
</tr>
{% for p in m.phases %}<tr><td>{{ p.name }}</td>
<td title="{{ wall_window(p.start_s, p.end_s) }}">{{ clock(p.start_s) }}–{{ clock(p.end_s) }}</td>
{% if m.clock_t0 %}<td>{{ wall(p.start_s) }}</td>{% endif %}
<td>{{ rate(p.offered_rate) }}</td><td>{{ rate(p.achieved_rate) }}</td>
<td>{{ rate(p.goodput_rate) }}</td>
<td class="{{ style(p.action.busy_rate) }}">{{ pct(p.action.busy_rate, 2) }}</td>
<td>{{ pct(p.request.busy_rate, 2) }}</td><td>{{ ms(p.action.latency.p50) }}</td>
<td>{{ ms(p.action.latency.p95) }}</td><td>{{ ms(p.action.latency.p99) }}</td>
<td>{{ ms(p.action.service.p95) }}</td>
<td>{{ "{:,}".format(p.action.counts.unsent) }}</td></tr>
{% endfor %}</table></div></section>{% endif %}
{% if m.faults %}<section id="faults"><h2>Faults</h2>
<p class="hint">{% if m.limit %}Recovery: seconds from the fault's end until the 10-second busy
rate is within {{ pct(m.limit.value) }} ({{ m.limit.source }}) and stays there for 10 s. {%
endif %}{% if has_instances %}By instance: user actions each instance answered while the fault
was on; <span class="hit">hit</span> marks the instances the fault's target names.{% endif %}
Hover a window for the wall clock; the causes of each fault are under
<a href="#causes">Busy causes</a>.</p><div class="scroll"><table>
<tr><th>fault</th><th class="l">type</th><th class="l">target</th><th>window</th>
<th>busy</th><th>busy for</th><th>worst 10 s</th><th>p95</th>
<th class="l">recovery</th>{% if has_instances %}<th class="l">by instance</th>{% endif %}</tr>
{% for f in m.faults %}<tr><td>{{ f.name }}</td><td class="l">{{ f.type }}</td>
<td class="l">{{ f.target }}</td>
<td title="{{ wall_window(f.start_s, f.end_s) }}">{{ clock(f.start_s) }}–{{ clock(f.end_s) if
f.end_s is not none else "…" }}</td>
<td class="{{ style(f.action.busy_rate) }}">{{ pct(f.action.busy_rate, 2) }}</td>
<td>{{ f.busy_s }} s</td><td>{{ pct(f.peak_10s) }}</td>
<td>{{ ms(f.action.latency.p95) }}</td>
<td class="wrap {{ 'ok' if f.recovered else 'bad' }}">{{ recovery(f) }}{% if f.note %}
<br><span class="notes">{{ f.note }}</span>{% endif %}</td>
{% if has_instances %}<td class="wrap">{% for i in f.instances %}<span class="{{ 'hit' if i.hit
else '' }}">{{ i.instance }}{% if i.hit %} (hit){% endif %}</span> <span class="{{
style(i.action.busy_rate) }}">{{ pct(i.action.busy_rate, 1) }}</span> busy, p95 {{
ms(i.action.latency.p95) }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td>{% endif %}
</tr>
{% endfor %}</table></div></section>{% endif %}
{% for b in breakdowns %}<section id="by-{{ b.dimension }}"><h2>By {{ title(b.dimension) }}</h2>
<p class="hint">{{ breakdown_hint(b.dimension) }}</p><div class="scroll"><table>
<tr><th>{{ title(b.dimension) }}</th><th>answered</th><th>busy</th><th>busy (requests)</th>
<th>p50</th><th>p95</th><th>p99</th><th>p95 service</th><th class="l">top causes</th></tr>
{% for r in b.rows %}<tr><td>{{ r.value }}</td>
<td>{{ "{:,}".format(r.action.counts.answered) }}</td>
<td class="{{ style(r.action.busy_rate) }}">{{ pct(r.action.busy_rate, 2) }}</td>
<td>{{ pct(r.request.busy_rate, 2) }}</td><td>{{ ms(r.action.latency.p50) }}</td>
<td>{{ ms(r.action.latency.p95) }}</td><td>{{ ms(r.action.latency.p99) }}</td>
<td>{{ ms(r.action.service.p95) }}</td>
<td class="wrap">{{ top(r.request.counts.causes) }}</td></tr>
{% endfor %}</table></div>
{% if m.phases|length > 1 %}<h3>Busy rate (user actions) by phase</h3><div class="scroll"><table>
<tr><th>{{ title(b.dimension) }}</th>{% for p in m.phases %}<th>{{ p.name }}</th>{% endfor %}</tr>
{% for r in b.rows %}<tr><td>{{ r.value }}</td>{% for s in r.phases %}<td class="{{
style(s.busy_rate) }}" title="{{ s.busy }} busy of {{ s.answered }} answered; p95 {{ ms(s.p95)
}}">{{ pct(s.busy_rate, 1) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>{% endif %}</section>
{% endfor %}
{% if m.causes or m.server_causes %}<section id="causes"><h2>Busy causes</h2>
<p class="hint">What the client saw (every busy request, by the taxonomy's cause){% if
m.server_causes %}, beside what the target counted itself ({{ m.server_causes.source }}){%
endif %}.</p><div class="pair"><div><h3>client</h3><div class="scroll"><table>
<tr><th>cause</th><th>requests</th><th>user actions</th><th>share of busy requests</th></tr>
{% for c in m.causes %}<tr><td>{{ c.cause }}</td><td>{{ "{:,}".format(c.requests) }}</td>
<td>{{ "{:,}".format(c.actions) }}</td><td>{{ pct(c.share) }}</td></tr>{% endfor %}
</table></div></div>
{% if m.server_causes %}<div><h3>server</h3><div class="scroll"><table>
<tr><th>cause</th>{% if m.server_causes.groups %}<th class="l">where</th>{% endif %}
<th>busy answers</th>{% for name in m.server_causes.instances %}<th>{{ name }}</th>{% endfor %}</tr>
{% for cause, n in m.server_causes.total.items() %}<tr><td>{{ cause }}</td>{% if
m.server_causes.groups %}<td class="l">{{ m.server_causes.groups.get(cause, "") }}</td>{% endif
%}<td>{{ "{:,}".format(n) }}</td>{% for name, per in m.server_causes.instances.items() %}<td>{{
"{:,}".format(per.get(cause, 0)) }}</td>{% endfor %}</tr>
{% else %}<tr><td class="l" colspan="3">no busy answers counted</td></tr>{% endfor %}
</table></div></div>{% endif %}</div>
{% if m.phases or m.faults %}<h3>By phase and fault</h3><div class="scroll"><table>
<tr><th>phase or fault</th><th>window</th><th class="l">client causes (busy requests)</th>{% if
m.server_causes %}<th class="l">server causes (its own count)</th>{% endif %}</tr>
{% for p in m.phases %}<tr><td>{{ p.name }}</td><td>{{ clock(p.start_s) }}–{{ clock(p.end_s) }}</td>
<td class="wrap">{{ top(p.request.counts.causes) }}</td>{% if m.server_causes %}<td class="wrap">{{
top(p.server_causes) }}</td>{% endif %}</tr>
{% endfor %}{% for f in m.faults %}<tr><td>fault {{ f.name }}</td><td>{{ clock(f.start_s) }}–{{
clock(f.end_s) if f.end_s is not none else "…" }}</td>
<td class="wrap">{{ top(f.request.counts.causes) }}</td>{% if m.server_causes %}<td class="wrap">{{
top(f.server_causes) }}</td>{% endif %}</tr>
{% endfor %}</table></div>{% endif %}</section>{% endif %}
{% if m.endpoints %}<section id="endpoints"><h2>Journeys and endpoints</h2><div class="scroll">
<table><tr><th>journey</th><th class="l">endpoint</th><th class="l">level</th><th>answered</th>
<th>rejected</th>
<th>busy</th><th>p50</th><th>p95</th><th>p99</th><th>p95 service</th><th class="l">top causes</th>
</tr>
{% for e in m.endpoints %}<tr><td>{{ e.journey }}</td><td class="l">{{ e.endpoint }}</td>
<td class="l">{{ e.level }}</td><td>{{ "{:,}".format(e.stats.counts.answered) }}</td>
<td>{{ "{:,}".format(e.stats.counts.rejected) }}</td>
<td class="{{ style(e.stats.busy_rate) }}">{{ pct(e.stats.busy_rate, 2) }}</td>
<td>{{ ms(e.stats.latency.p50) }}</td><td>{{ ms(e.stats.latency.p95) }}</td>
<td>{{ ms(e.stats.latency.p99) }}</td><td>{{ ms(e.stats.service.p95) }}</td>
<td class="wrap">{{ top(e.stats.counts.causes) }}</td></tr>
{% endfor %}</table></div></section>{% endif %}
{% if integrity %}<section id="integrity"><h2 class="{{ integrity_class }}">{{ integrity_title
}}</h2><p class="hint">Every money movement the client sent (acks.bin) against the ledger after
the run: acknowledged ones must be applied exactly once; unknown outcomes are reported, not
errors.</p><div class="scroll"><table>
{% for label, value, bad_row in integrity %}<tr><td>{{ label }}</td>
<td class="wrap {{ 'bad' if bad_row else '' }}">{{ value }}</td></tr>
{% endfor %}</table></div></section>{% endif %}
{% if security %}<section id="security"><h2>{{ security_title }}</h2><p class="hint">{{
security_hint }}</p><div class="scroll"><table>
{% for label, value in security %}<tr><td{% if label.startswith(" ") %} class="sub"{% endif
%}>{{ label.strip() }}</td><td class="wrap">{{ value }}</td></tr>
{% endfor %}</table></div></section>{% endif %}
{% if m.notes %}<p class="notes">Notes: {{ m.notes | join("; ") }}</p>{% endif %}
<footer>Generated by loadkit from {{ m.run_id }}{% if m.started_at %}, run started
{{ m.started_at }}{% endif %}. Busy rate = busy / (ok + rejected + busy); user actions are
counted after client retries. Times are run-clock m:ss from the run's start.</footer>
</main></body></html>
"""


_BREAKDOWN_HINTS = {
    "instance": "Where the answers came from: the target instance each request went to (the "
    "reference stack's wallets by name, other targets by URL); a user action counts where its "
    "last request went.",
    "network": "The users' network class (the profile's network section): weak links show as "
    "timeouts and slow answers here.",
    "journey": "User actions of each journey after client retries; requests of all its steps.",
}


#: one chart of the page: its ``title``, ``hint`` and ``svgs`` (``[(variant name, svg), …]``)
ChartSection = dict[str, Any]


def chart_sections(
    m: RunMetrics,
    wall_t0: float | None = None,
    variants: Sequence[charts.Variant] = charts.VARIANTS,
) -> list[ChartSection]:
    """The page's charts, each in every variant (or only ``variants``: what one chart worker
    draws, :mod:`loadkit.report.chartjob`); none for a run without a time series::

        chart_sections(m)[0]["title"]                   # "Busy rate over time"
        chart_sections(m, variants=[charts.NARROW])     # "svgs": [("narrow", svg)] each
    """
    chart_list: list[ChartSection] = []
    if not m.series:
        return chart_list
    chart_list = [
        {
            "title": "Busy rate over time",
            "svgs": charts.both(charts.busy_chart, m, wall_t0=wall_t0, variants=variants),
            "hint": "Shaded red, and named above the chart: fault windows. Grey bands: "
            "alternate profile phases. Hover a band or a name for its times.",
        },
    ]
    for b in m.breakdowns:
        if b.dimension in ("instance", "network") and len(b.rows) > 1:
            chart_list.append(
                {
                    "title": f"Busy rate by {DIMENSION_TITLES[b.dimension]}",
                    "svgs": charts.both(
                        charts.slice_chart, m, b.dimension, wall_t0=wall_t0, variants=variants
                    ),
                    "hint": f"User actions; one line per {DIMENSION_TITLES[b.dimension]}.",
                }
            )
    chart_list += [
        {
            "title": "Busy causes",
            "svgs": charts.both(charts.causes_chart, m, wall_t0=wall_t0, variants=variants),
            "hint": "Busy user actions per second, stacked by cause.",
        },
        {
            "title": "Latency over time",
            "svgs": charts.both(charts.latency_chart, m, wall_t0=wall_t0, variants=variants),
            "hint": "User actions, from the intended send time (what users waited); "
            "dashed: the service time's p95 (from the actual send); log scale.",
        },
        {
            "title": "Offered, achieved and goodput",
            "svgs": charts.both(charts.rate_chart, m, wall_t0=wall_t0, variants=variants),
            "hint": "Offered: the profile's schedule. Achieved: answered user actions. "
            "Goodput: answered and not busy.",
        },
    ]
    return chart_list


@functools.cache
def page_template() -> jinja2.Template:
    """The page's template, compiled once per process (~0.07 s: a chart worker compiles it
    while the timeline is read)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE)


def render_html(m: RunMetrics, options: ReportOptions | None = None) -> str:
    """The whole page as a string."""
    limit = m.limit.value if m.limit else 0.05

    def style(rate: float | None) -> str:
        return "" if not rate else "bad" if rate > limit else "warn"

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}/s"

    t = m.total
    worst = m.worst_10s
    tiles = [
        (
            pct(t.action.busy_rate, 2),
            "user actions busy (after retries)",
            style(t.action.busy_rate),
        ),
        (pct(t.request.busy_rate, 2), "requests busy", style(t.request.busy_rate)),
        (
            pct(worst.busy_rate) if worst else "-",
            f"worst 10 s busy rate{f' (at {clock(worst.start_s)})' if worst else ''}",
            style(worst.busy_rate if worst else None),
        ),
        (ms(t.action.latency.p95), "p95 latency (actions)", ""),
        (ms(t.action.service.p95), "p95 service time (actions)", ""),
        (rate(t.achieved_rate), f"achieved (offered {rate(t.offered_rate)})", ""),
        (rate(t.goodput_rate), "goodput (achieved − busy)", ""),
        (
            f"{t.action.counts.unsent:,}",
            f"unsent ({pct(t.unsent_share, 2)})",
            "bad" if not t.valid else "",
        ),
        (
            (f"{clock(m.stopped_s)} of {clock(m.duration_s)}", "ran (stopped early)", "bad")
            if m.stopped_s is not None
            else (secs(m.duration_s), "run length", "")
        ),
    ]
    wall_t0 = m.clock_t0 if options is not None and options.clock == "wall" else None
    # charts drawn beforehand (the chart worker's); otherwise drawn here
    pending = options.charts if options is not None else None
    banner = status_banner(m)
    bad = banner is not None and banner.kind == "bad"
    bad = bad or m.status not in ("completed", "unknown") or not t.valid
    state = integrity_state(m.integrity)
    bad = bad or state == "violated"
    if m.integrity:
        tiles.append(
            (state, "money integrity", {"clean": "ok", "violated": "bad"}.get(state, "warn"))
        )
    gate = gate_view(m.gate)
    if gate is not None:
        passed = gate.passed
        tiles.append(("passed" if passed else "FAILED", "release gate", "ok" if passed else "bad"))
        bad = bad or not passed
    t0 = m.clock_t0

    def wall_window(start: float, end: float | None) -> str:
        if not t0:
            return ""
        until = charts.wall_text(t0, end) if end is not None else "…"
        return f"wall clock {charts.wall_text(t0, start)}–{until} ({charts.zone_text(t0)})"

    template = page_template()
    given = pending() if pending is not None else None
    chart_list = list(given) if given is not None else chart_sections(m, wall_t0)
    return template.render(
        gate=gate,
        banner=banner,
        tls_banner=tls_banner(m),
        scope=scope_title(m),
        integrity=integrity_rows(m.integrity),
        integrity_title=integrity_title(m.integrity),
        integrity_class={"clean": "ok", "violated": "bad"}.get(state, "warn"),
        security=security_rows(m),
        security_title=SECURITY_TITLE,
        security_hint=SECURITY_HINT,
        m=m,
        tiles=tiles,
        chart_list=chart_list,
        breakdowns=[b for b in m.breakdowns if b.rows],
        has_instances=any(f.instances for f in m.faults),
        bad=bad,
        pct=pct,
        ms=ms,
        clock=clock,
        wall=lambda s: charts.wall_text(t0, s) if t0 else "-",
        wall_window=wall_window,
        zone=charts.zone_text(t0) if t0 else "",
        rate=rate,
        style=style,
        top=top_causes,
        title=lambda d: DIMENSION_TITLES.get(d, d),
        breakdown_hint=lambda d: _BREAKDOWN_HINTS.get(d, ""),
        recovery=recovery_text,
    )
