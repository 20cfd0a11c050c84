"""The capacity search's files and terminal table: ``capacity.json`` (schema
``loadkit.capacity/v1``), ``capacity.html`` (the chart: busy rate and p99 against offered rate,
in the HTML report's look) and ``summary.md``::

    write_capacity_files(result)            # into result.capacity_dir
    render_capacity_terminal(result, Console())
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jinja2
import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, PercentFormatter
from rich.console import Console
from rich.table import Table
from rich.text import Text

from loadkit.capacity.model import CapacityResult, Outcome, StepResult, Verdict
from loadkit.report import charts
from loadkit.report.html import TEMPLATE as REPORT_TEMPLATE
from loadkit.report.verdict import ms, pct
from loadkit.rundir import SUMMARY_MD

#: the capacity directory's own files (each pass's run directory has the usual report files)
CAPACITY_JSON = "capacity.json"
CAPACITY_HTML = "capacity.html"
_COLOURS = {
    Verdict.PASS: "#1a7f37",
    Verdict.FAIL: "#b42318",
    Verdict.GENERATOR_LIMITED: "#999999",
    Verdict.NO_DATA: "#999999",
}


def measured(result: CapacityResult) -> list[StepResult]:
    """Measured steps, by rate (a fine step after a coarse one at the same rate)."""
    done = [s for s in result.steps if s.verdict is not Verdict.NOT_RUN]
    return sorted(done, key=lambda s: (s.rate, s.pass_name != "coarse"))


def headline(result: CapacityResult) -> str:
    where = f" (chaos {Path(result.scenario).stem} held)" if result.scenario else ""
    return f"{result.profile}{where}: {result.message}"


def _causes_text(step: StepResult, limit: int = 3) -> str:
    groups = step.cause_groups()
    total = sum(groups.values())
    if not total:
        return "-"
    return ", ".join(f"{c} {n / total:.0%}" for c, n in list(groups.items())[:limit])


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


# -- chart ------------------------------------------------------------------------------------


def capacity_chart(result: CapacityResult) -> str:
    """Busy rate (left, %) and p99 latency (right, ms, log) against offered rate; the knee and
    the busy-rate objective as lines, each step coloured by its verdict."""
    # one point per rate: a fine-pass step re-measures a coarse one (``measured`` sorts it after)
    steps = list({s.rate: s for s in measured(result)}.values())
    with mpl.rc_context(charts._RC):
        fig = Figure(figsize=(11, 3.4), dpi=96)
        ax = fig.add_subplot()
        xs = [s.rate for s in steps]
        busy = [s.busy_rate or 0.0 for s in steps]
        ax.plot(xs, busy, color=charts.ACTION, lw=1.4, label="busy rate (actions)")
        ax.scatter(
            xs,
            busy,
            c=[_COLOURS.get(s.verdict, "#999") for s in steps],
            s=28,
            zorder=3,
            label="step: green pass, red fail, grey not measurable",
        )
        for text in result.objectives:
            match = re.match(r"busy rate \(\w+\) ≤ ([0-9.]+)%", text)
            if match:
                limit = float(match[1]) / 100
                ax.axhline(limit, color="#333", lw=0.8, ls="--", label=f"objective {text}")
        if result.knee_rate is not None:
            ax.axvline(result.knee_rate, color=charts.REQUEST, lw=1.2, label="knee")
            ax.annotate(
                f"knee {result.knee_rate:,.0f}/s",
                xy=(result.knee_rate, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color=charts.REQUEST,
                fontweight="bold",
            )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.set_ylim(0, min(1.05, max(0.05, max([*busy, 0.0]) * 1.2)))
        ax.set_ylabel("busy rate")
        ax.set_xlabel("offered rate (arrivals/s)", color="#555")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
        lat = ax.twinx()
        lat.grid(False)
        lat.spines["right"].set_visible(True)
        p99 = [s.p99_ms if s.p99_ms is not None else math.nan for s in steps]
        lat.plot(xs, p99, color="#e6a100", lw=1.2, ls="-.", marker=".", label="p99 latency")
        positive = [v for v in p99 if v > 0]
        if positive and max(positive) / min(positive) > 20:  # log only over a wide range
            lat.set_yscale("log")
        else:
            lat.set_ylim(bottom=0)
        lat.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 1 else f"{v:g}")
        )
        lat.yaxis.set_minor_formatter(NullFormatter())
        lat.set_ylabel("p99 (ms)")
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = lat.get_legend_handles_labels()
        ax.legend(
            handles + h2,
            labels + l2,
            loc="lower left",
            bbox_to_anchor=(0.0, 1.01),
            ncol=3,
            fontsize=8,
            frameon=False,
        )
        return charts._svg(fig)


# -- html -------------------------------------------------------------------------------------

_STYLE = re.search(r"<style>.*?</style>", REPORT_TEMPLATE, re.S)

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loadkit capacity — {{ r.profile }}</title>
{{ style | safe }}</head>
<body><main>
<header><h1>loadkit · capacity · {{ r.profile }}{% if r.scenario %} · chaos: {{ r.scenario
}}{% endif %}</h1>
<p class="verdict {{ '' if r.outcome == 'knee' else 'bad' }}">{{ head }}</p></header>
<div class="tiles">
{% for value, label, cls in tiles %}<div class="tile"><b class="{{ cls }}">{{ value }}</b>
<span>{{ label }}</span></div>
{% endfor %}</div>
<section><h2>Busy rate and p99 against offered rate</h2>
<p class="hint">Each point is one step, measured after its warm-up. The knee is the highest rate
that meets every objective ({{ r.objectives | join("; ") }}).</p>
{{ chart | safe }}</section>
<section><h2>Steps</h2><table>
<tr><th>pass</th><th>step</th><th>offered</th><th>achieved</th><th>busy</th>
<th>busy (requests)</th><th>p50</th><th>p95</th><th>p99</th><th>unsent</th>
<th class="l">busy answers came from</th><th class="l">verdict</th></tr>
{% for s in steps %}<tr><td>{{ s.pass_name }}</td><td>{{ s.index }}</td>
<td>{{ rate(s.rate) }}</td><td>{{ rate(s.achieved_rate) }}</td>
<td class="{{ vclass(s) }}">{{ pct(s.busy_rate, 2) }}</td><td>{{ pct(s.request_busy_rate, 2) }}</td>
<td>{{ ms(s.p50_ms) }}</td><td>{{ ms(s.p95_ms) }}</td><td>{{ ms(s.p99_ms) }}</td>
<td>{{ pct(s.unsent_share, 1) }}</td><td class="wrap">{{ causes(s) }}</td>
<td class="wrap {{ vclass(s) }}">{{ s.verdict.value }}{% if s.failed %}<br><span class="notes">{{
s.failed | join("; ") }}</span>{% endif %}</td></tr>
{% endfor %}</table></section>
<section><h2>Runs</h2><table><tr><th>pass</th><th class="l">status</th>
<th class="l">run directory</th></tr>
{% for p in r.passes %}<tr><td>{{ p.name }}</td><td class="l">{{ p.status }}{% if p.reason %}
<span class="notes">({{ p.reason }})</span>{% endif %}</td>
<td class="l"><a href="runs/{{ base(p.run_dir) }}/report.html">{{ base(p.run_dir) }}</a></td></tr>
{% endfor %}</table></section>
{% if r.notes %}<p class="notes">Notes: {{ r.notes | join("; ") }}</p>{% endif %}
<footer>Generated by loadkit capacity. Busy rate = busy / (ok + rejected + busy); user actions
are counted after client retries. Busy answers' origin: the wallet's own causes (throttled,
pool wait, database…) when the target is the reference stack, else the client's.</footer>
</main></body></html>
"""


def render_capacity_html(result: CapacityResult) -> str:
    steps = measured(result)

    def vclass(s: StepResult) -> str:
        return {"pass": "ok", "fail": "bad"}.get(s.verdict.value, "warn")

    knee = result.knee_step()
    tiles = [
        (
            _rate(result.knee_rate) if result.knee_rate is not None else "-",
            "knee (highest rate meeting the objective)",
            "ok" if result.found else "bad",
        ),
        (_rate(result.first_failing_rate), "first rate that lost it", ""),
        (pct(knee.busy_rate, 2) if knee else "-", "busy at the knee", ""),
        (ms(knee.p99_ms) if knee else "-", "p99 at the knee", ""),
        (str(len(steps)), "steps measured", ""),
    ]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        r=result,
        head=headline(result),
        style=_STYLE.group(0) if _STYLE else "",
        tiles=tiles,
        chart=capacity_chart(result) if steps else "<p>No step was measured.</p>",
        steps=steps,
        rate=_rate,
        pct=pct,
        ms=ms,
        causes=_causes_text,
        vclass=vclass,
        base=lambda p: Path(p).name,
    )


# -- markdown, json, terminal -----------------------------------------------------------------


def render_capacity_markdown(result: CapacityResult) -> str:
    lines = [
        f"# Capacity: {result.profile}",
        "",
        f"**{headline(result)}**",
        "",
        f"Objectives: {'; '.join(result.objectives)}.",
        "",
        "| pass | offered | achieved | busy | p95 | p99 | unsent | busy answers came from | "
        "verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for s in measured(result):
        knee = " ◀ knee" if s is result.knee_step() else ""
        lines.append(
            f"| {s.pass_name} | {_rate(s.rate)} | {_rate(s.achieved_rate)} | "
            f"{pct(s.busy_rate, 2)} | {ms(s.p95_ms)} | {ms(s.p99_ms)} | "
            f"{pct(s.unsent_share, 1)} | {_causes_text(s)} | {s.verdict.value}{knee} |"
        )
    for note in result.notes:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def write_capacity_files(result: CapacityResult) -> dict[str, Path]:
    """``capacity.json``, ``capacity.html`` and ``summary.md`` in the capacity directory."""
    cdir = Path(result.capacity_dir)
    cdir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt, name, text in (
        ("json", CAPACITY_JSON, json.dumps(result.to_dict(), indent=2, default=str) + "\n"),
        ("html", CAPACITY_HTML, render_capacity_html(result)),
        ("md", SUMMARY_MD, render_capacity_markdown(result)),
    ):
        path = cdir / name
        path.write_text(text, encoding="utf-8")
        written[fmt] = path
    return written


def render_capacity_terminal(result: CapacityResult, console: Console) -> None:
    table = Table(
        title=f"capacity — {result.profile} ({'; '.join(result.objectives)})",
        title_justify="left",
    )
    wide = console.width >= 100
    table.add_column("pass", no_wrap=True)
    columns = ["offered", "achieved", "busy", "p95", "p99", "unsent"]
    if not wide:
        columns = ["offered", "busy", "p99", "unsent"]
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("busy from", overflow="fold", min_width=16)
    table.add_column("verdict", no_wrap=True)
    knee = result.knee_step()
    for s in measured(result):
        style = {"pass": "green", "fail": "red"}.get(s.verdict.value, "yellow")
        cells: dict[str, str | Text] = {
            "offered": _rate(s.rate),
            "achieved": _rate(s.achieved_rate),
            "busy": Text(pct(s.busy_rate, 2), style),
            "p95": ms(s.p95_ms),
            "p99": ms(s.p99_ms),
            "unsent": pct(s.unsent_share, 1),
        }
        table.add_row(
            s.pass_name,
            *(cells[c] for c in columns),
            _causes_text(s, 3 if wide else 2),
            Text(s.verdict.value + (" ◀ knee" if s is knee else ""), style),
            style="bold" if s is knee else "",
        )
    console.print(table)
    colour = "green" if result.outcome is Outcome.KNEE else "red"
    console.print(Text(headline(result), style=f"bold {colour}"), soft_wrap=True)
