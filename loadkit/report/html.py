"""``report.html``: one self-contained page (inline SVG charts and CSS; no JavaScript, nothing
fetched, works offline) with the verdict on top, busy rate, causes, latency and load over time,
and the per-phase, per-fault, per-endpoint and per-cause tables; a gated run's "Release gate"
section (from ``gate.json``) on top::

    RunDir(run_dir).report_html.write_text(render_html(compute_metrics(run_dir)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jinja2

from loadkit.report import charts
from loadkit.report.gateview import gate_view
from loadkit.report.integrity import integrity_rows, integrity_state, integrity_title
from loadkit.report.model import RunMetrics
from loadkit.report.security import HINT as SECURITY_HINT
from loadkit.report.security import TITLE as SECURITY_TITLE
from loadkit.report.security import security_rows
from loadkit.report.verdict import ms, pct, recovery_text, secs

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
header h1 { font-size: 15px; font-weight: 600; color: var(--dim); margin: 0 0 6px; }
.verdict { font-size: 20px; font-weight: 600; margin: 0 0 14px; }
.verdict.bad { color: var(--bad); }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px;
         margin-bottom: 18px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.tile b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
.tile span { color: var(--dim); font-size: 12px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 12px 16px; margin-bottom: 16px; }
h2 { font-size: 15px; margin: 0 0 8px; }
p.hint { color: var(--dim); margin: 0 0 6px; font-size: 12px; }
svg.chart { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: auto; min-width: 60%; font-variant-numeric:
tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eaeef2; text-align: right; white-space:
nowrap; }
th { color: var(--dim); font-weight: 600; font-size: 12px; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
td.wrap { white-space: normal; text-align: left; }
.bad { color: var(--bad); } .ok { color: var(--ok); } .warn { color: var(--warn); }
.notes { color: var(--dim); font-size: 12px; }
footer { color: var(--dim); font-size: 12px; }
</style></head>
<body><main>
<header>
<h1>loadkit · {{ m.profile }} · {{ m.status }}{% if m.scenario %} · chaos: {{ m.scenario }}{%
endif %}
 · run {{ m.run_id }}</h1>
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
{{ gate.invalid_reason }}.{% endif %}</p><table>
<tr><th class="l"></th><th class="l">objective</th><th>measured</th><th>limit</th>
{% if gate.has_baseline %}<th>baseline</th>{% endif %}<th class="l">detail</th></tr>
{% for o in gate.rows %}<tr><td class="l {{ 'ok' if o.passed else 'bad' }}">{{ 'pass' if
o.passed else 'FAIL' }}</td><td class="l">{{ o.title }}</td>
<td class="{{ '' if o.passed else 'bad' }}">{{ o.measured_text }}</td><td>{{ o.limit_text }}</td>
{% if gate.has_baseline %}<td>{{ o.baseline_text }}</td>{% endif %}
<td class="l wrap">{{ o.detail }}</td></tr>
{% endfor %}</table></section>{% endif %}
{% for c in chart_list %}<section><h2>{{ c.title }}</h2><p class="hint">{{ c.hint }}</p>
{{ c.svg | safe }}</section>
{% endfor %}
{% if m.phases %}<section><h2>Phases</h2>
{% if m.clock_t0 %}<p class="hint">Wall-clock starts: local time, {{ zone }}.</p>{% endif %}<table>
<tr><th>phase</th><th>window</th>{% if m.clock_t0 %}<th>starts (wall)</th>{% endif %}
<th>offered</th><th>achieved</th><th>busy</th>
<th>busy (requests)</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>unsent</th></tr>
{% for p in m.phases %}<tr><td>{{ p.name }}</td>
<td>{{ clock(p.start_s) }}–{{ clock(p.end_s) }}</td>{% if m.clock_t0 %}
<td>{{ wall(p.start_s) }}</td>{% endif %}
<td>{{ rate(p.offered_rate) }}</td><td>{{ rate(p.achieved_rate) }}</td>
<td class="{{ style(p.action.busy_rate) }}">{{ pct(p.action.busy_rate, 2) }}</td>
<td>{{ pct(p.request.busy_rate, 2) }}</td><td>{{ ms(p.action.latency.p50) }}</td>
<td>{{ ms(p.action.latency.p95) }}</td><td>{{ ms(p.action.latency.p99) }}</td>
<td>{{ ms(p.action.latency.p999) }}</td><td>{{ "{:,}".format(p.action.counts.unsent) }}</td></tr>
{% endfor %}</table></section>{% endif %}
{% if m.faults %}<section><h2>Faults</h2>
<p class="hint">{% if m.limit %}Recovery: seconds from the fault's end until the 10-second busy
rate is within {{ pct(m.limit.value) }} ({{ m.limit.source }}) and stays there for 10 s.{% endif
%}</p>
<table><tr><th>fault</th><th class="l">type</th><th class="l">target</th><th>window</th>
{% if m.clock_t0 %}<th>starts (wall)</th>{% endif %}<th>busy</th>
<th>busy (requests)</th><th>busy for</th><th>worst 10 s</th><th>p95</th>
<th class="l">recovery</th></tr>
{% for f in m.faults %}<tr><td>{{ f.name }}</td><td class="l">{{ f.type }}</td>
<td class="l">{{ f.target }}</td>
<td>{{ clock(f.start_s) }}–{{ clock(f.end_s) if f.end_s is not none else "…" }}</td>
{% if m.clock_t0 %}<td>{{ wall(f.start_s) }}</td>{% endif %}
<td class="{{ style(f.action.busy_rate) }}">{{ pct(f.action.busy_rate, 2) }}</td>
<td>{{ pct(f.request.busy_rate, 2) }}</td><td>{{ f.busy_s }} s</td><td>{{ pct(f.peak_10s) }}</td>
<td>{{ ms(f.action.latency.p95) }}</td>
<td class="wrap {{ 'ok' if f.recovered else 'bad' }}">{{ recovery(f) }}{% if f.note %}
<br><span class="notes">{{ f.note }}</span>{% endif %}</td></tr>
{% endfor %}</table></section>{% endif %}
{% if m.causes %}<section><h2>Busy causes</h2><table>
<tr><th>cause</th><th>requests</th><th>user actions</th><th>share of busy requests</th></tr>
{% for c in m.causes %}<tr><td>{{ c.cause }}</td><td>{{ "{:,}".format(c.requests) }}</td>
<td>{{ "{:,}".format(c.actions) }}</td><td>{{ pct(c.share) }}</td></tr>{% endfor %}
</table></section>{% endif %}
{% if m.endpoints %}<section><h2>Journeys and endpoints</h2><table>
<tr><th>journey</th><th class="l">endpoint</th><th class="l">level</th><th>answered</th>
<th>rejected</th>
<th>busy</th><th>p50</th><th>p95</th><th>p99</th><th class="l">top causes</th></tr>
{% for e in m.endpoints %}<tr><td>{{ e.journey }}</td><td class="l">{{ e.endpoint }}</td>
<td class="l">{{ e.level }}</td><td>{{ "{:,}".format(e.stats.counts.answered) }}</td>
<td>{{ "{:,}".format(e.stats.counts.rejected) }}</td>
<td class="{{ style(e.stats.busy_rate) }}">{{ pct(e.stats.busy_rate, 2) }}</td>
<td>{{ ms(e.stats.latency.p50) }}</td><td>{{ ms(e.stats.latency.p95) }}</td>
<td>{{ ms(e.stats.latency.p99) }}</td><td class="wrap">{{ top(e.stats.counts.causes) }}</td></tr>
{% endfor %}</table></section>{% endif %}
{% if integrity %}<section id="integrity"><h2 class="{{ integrity_class }}">{{ integrity_title
}}</h2><p class="hint">Every money movement the client sent (acks.jsonl) against the ledger after
the run: acknowledged ones must be applied exactly once; unknown outcomes are reported, not
errors.</p><table>
{% for label, value, bad_row in integrity %}<tr><td>{{ label }}</td>
<td class="wrap {{ 'bad' if bad_row else '' }}">{{ value }}</td></tr>
{% endfor %}</table></section>{% endif %}
{% if security %}<section id="security"><h2>{{ security_title }}</h2><p class="hint">{{
security_hint }}</p><table>
{% for label, value in security %}<tr><td>{{ label }}</td><td class="wrap">{{ value }}</td></tr>
{% endfor %}</table></section>{% endif %}
{% if m.notes %}<p class="notes">Notes: {{ m.notes | join("; ") }}</p>{% endif %}
<footer>Generated by loadkit from {{ m.run_id }}{% if m.started_at %}, run started
{{ m.started_at }}{% endif %}. Busy rate = busy / (ok + rejected + busy); user actions are
counted after client retries.</footer>
</main></body></html>
"""


def _clock(value: float) -> str:
    return charts._clock(value)


def render_html(m: RunMetrics, options: ReportOptions | None = None) -> str:
    """The whole page as a string."""
    limit = m.limit.value if m.limit else 0.05

    def style(rate: float | None) -> str:
        return "" if not rate else "bad" if rate > limit else "warn"

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}/s"

    def top(causes: dict[str, int]) -> str:
        ranked = sorted(causes.items(), key=lambda kv: -kv[1])[:3]
        return ", ".join(f"{c} {n:,}" for c, n in ranked) or "-"

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
            "worst 10 s busy rate",
            style(worst.busy_rate if worst else None),
        ),
        (ms(t.action.latency.p95), "p95 latency (actions)", ""),
        (rate(t.achieved_rate), f"achieved (offered {rate(t.offered_rate)})", ""),
        (
            f"{t.action.counts.unsent:,}",
            f"unsent ({pct(t.unsent_share, 2)})",
            "bad" if not t.valid else "",
        ),
        (secs(m.duration_s), "run length", ""),
    ]
    wall_t0 = m.clock_t0 if options is not None and options.clock == "wall" else None
    chart_list = []
    if m.series:
        chart_list = [
            {
                "title": "Busy rate over time",
                "svg": charts.busy_chart(m, wall_t0=wall_t0),
                "hint": "Shaded red: fault windows. Grey bands: alternate profile phases.",
            },
            {
                "title": "Busy causes",
                "svg": charts.causes_chart(m, wall_t0=wall_t0),
                "hint": "Busy user actions per second, stacked by cause.",
            },
            {
                "title": "Latency over time",
                "svg": charts.latency_chart(m, wall_t0=wall_t0),
                "hint": "User actions, from the intended send time (what users waited); log scale.",
            },
            {
                "title": "Offered vs achieved load",
                "svg": charts.rate_chart(m, wall_t0=wall_t0),
                "hint": "Offered: the profile's schedule. Achieved: answered user actions.",
            },
        ]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    bad = m.status not in ("completed", "unknown") or not t.valid
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
    return env.from_string(TEMPLATE).render(
        gate=gate,
        integrity=integrity_rows(m.integrity),
        integrity_title=integrity_title(m.integrity),
        integrity_class={"clean": "ok", "violated": "bad"}.get(state, "warn"),
        security=security_rows(m),
        security_title=SECURITY_TITLE,
        security_hint=SECURITY_HINT,
        m=m,
        tiles=tiles,
        chart_list=chart_list,
        bad=bad,
        pct=pct,
        ms=ms,
        clock=_clock,
        wall=lambda s: charts.wall_text(m.clock_t0, s) if m.clock_t0 else "-",
        zone=charts.zone_text(m.clock_t0) if m.clock_t0 else "",
        rate=rate,
        style=style,
        top=top,
        recovery=recovery_text,
    )
