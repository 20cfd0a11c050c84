"""The HTML report's charts, drawn by matplotlib as inline SVG (no JavaScript, nothing fetched).
Every chart shows phases as bands and fault windows shaded and labelled, on the run clock::

    svg = busy_chart(compute_metrics(run_dir))   # "<svg …>…</svg>"
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import zlib
from collections.abc import Callable
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter

from loadkit.profile.outcome import CAUSE_INFO
from loadkit.report.model import RunMetrics

#: every busy cause's colour, from the outcome vocabulary (loadkit.profile.outcome.CAUSE_INFO)
CAUSE_COLOURS: dict[str, str] = {cause.value: info.colour for cause, info in CAUSE_INFO.items()}
#: colours for causes loadkit does not know (a newer recorder, a hand-written timeline): none
#: of them is a known cause's, and none is grey
EXTRA_COLOURS = (
    "#1b9e77",
    "#e7298a",
    "#66a61e",
    "#a6761d",
    "#1f78b4",
    "#b15928",
    "#6a3d9a",
    "#33a02c",
)
#: the legend says which causes are not loadkit's
UNKNOWN_CAUSE = "{} (unknown cause)"
ACTION, REQUEST, FAULT = "#d1495b", "#2e86ab", "#d1495b"
_ids = itertools.count(1)
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: small files, the page's own font
    "svg.hashsalt": "loadkit",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
}


def _clock(value: float, _pos: object = None) -> str:
    """Run-clock seconds as ``m:ss`` (``h:mm:ss`` past an hour)."""
    s = round(value)
    h, rest = divmod(abs(s), 3600)
    m, sec = divmod(rest, 60)
    sign = "-" if s < 0 else ""
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


def wall_text(t0: float, value: float, *, seconds: bool = True) -> str:
    """Run-clock ``value`` as local wall-clock time ``HH:MM:SS`` (the machine's time zone)."""
    moment = dt.datetime.fromtimestamp(t0 + value).astimezone()
    return moment.strftime("%H:%M:%S" if seconds else "%H:%M")


def zone_text(t0: float) -> str:
    """The date and UTC offset wall-clock times are given in: ``2026-11-28, UTC+08:00``."""
    moment = dt.datetime.fromtimestamp(t0).astimezone()
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d}, UTC{offset[:3]}:{offset[3:]}"


def _tick_step(duration: float) -> float:
    """A round tick step (seconds) giving at most 12 ticks over the run."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if duration / step <= 12:
            return step
    return 86400


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    # fixed margins (not bbox "tight") so that every chart's time axis lines up with the others
    fig.subplots_adjust(left=0.07, right=0.85, top=0.88, bottom=0.2)
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    # ids must be unique across the page's several SVGs
    prefix = f"c{next(_ids)}-"
    text = re.sub(r'id="([^"]+)"', lambda mt: f'id="{prefix}{mt.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda mt: f"url(#{prefix}{mt.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda mt: f'href="#{prefix}{mt.group(1)}"', text)
    # scale with the page: drop the fixed size, keep the viewBox
    size = r'<svg([^>]*?) width="[^"]+" height="[^"]+"'
    return re.sub(size, r'<svg\1 class="chart"', text, count=1)


def _decorate(ax: Axes, m: RunMetrics, *, labels: bool, wall_t0: float | None = None) -> None:
    """Phases as alternating bands (named at the top), faults shaded red and named."""
    for i, p in enumerate(m.phases):
        if i % 2:
            ax.axvspan(p.start_s, p.end_s, color="#f3f4f6", zorder=0, lw=0)
        if labels and m.duration_s and p.duration_s / m.duration_s > 0.04:
            ax.annotate(
                p.name,
                xy=((p.start_s + p.end_s) / 2, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color="#555",
                clip_on=False,
            )
    for f in m.faults:
        end = f.end_s if f.end_s is not None else m.duration_s
        ax.axvspan(f.start_s, max(end, f.start_s + 0.5), color=FAULT, alpha=0.12, lw=0, zorder=0)
        if labels:
            ax.annotate(
                f.name,
                xy=(f.start_s, 0.97),
                xycoords=("data", "axes fraction"),
                xytext=(3, 0),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=8,
                color="#8c2f39",
                fontweight="bold",
            )
    step = _tick_step(m.duration_s)
    if wall_t0 is None:
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    else:  # ticks on round wall-clock times (…:00, …:30), not on round run-clock seconds
        ax.xaxis.set_major_locator(MultipleLocator(step, offset=-(wall_t0 % step)))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _p: wall_text(wall_t0, v, seconds=step < 60))
        )
    ax.set_xlim(0, max(m.duration_s, 1.0))


def _chart(
    m: RunMetrics,
    draw: Callable[[Axes], None],
    *,
    height: float = 2.6,
    wall_t0: float | None = None,
) -> str:
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(11, height), dpi=96)
        ax = fig.add_subplot()
        draw(ax)
        _decorate(ax, m, labels=True, wall_t0=wall_t0)
        label = (
            "run clock (m:ss)"
            if wall_t0 is None
            else f"wall clock ({zone_text(wall_t0)}; run clock 0:00 = {wall_text(wall_t0, 0)})"
        )
        ax.set_xlabel(label, color="#555")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        return _svg(fig)


def _mid(m: RunMetrics) -> list[float]:
    return [p.t + p.width_s / 2 for p in m.series]


def busy_chart(m: RunMetrics, *, wall_t0: float | None = None) -> str:
    """Busy rate over time: user actions and requests, with the steady-state limit."""

    def draw(ax: Axes) -> None:
        x = _mid(m)
        ax.plot(
            x,
            [p.busy_rate or 0 for p in m.series],
            color=ACTION,
            lw=1.6,
            label="user actions\n(after retries)",
        )
        ax.plot(
            x,
            [p.request_busy_rate or 0 for p in m.series],
            color=REQUEST,
            lw=1.0,
            alpha=0.8,
            label="requests",
        )
        if m.limit is not None:
            ax.axhline(
                m.limit.value, color="#333", lw=0.8, ls="--", label=f"limit {m.limit.value:.1%}"
            )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        top = max([p.request_busy_rate or 0 for p in m.series] + [0.0])
        ax.set_ylim(0, min(1.05, max(0.05, top * 1.2)))
        ax.set_ylabel("busy rate")

    return _chart(m, draw, wall_t0=wall_t0)


def cause_colours(causes: list[str]) -> dict[str, str]:
    """A colour per cause: a known cause has its own; an unknown one a colour picked from its
    name (the same in every report), distinct from the known causes' and from the other
    unknown ones' while :data:`EXTRA_COLOURS` lasts::

        cause_colours(["throttled", "quota_exceeded"])   # {"throttled": "#e6a100", "quota…": …}
    """
    out = {c: CAUSE_COLOURS[c] for c in causes if c in CAUSE_COLOURS}
    taken = set(CAUSE_COLOURS.values())
    for cause in sorted(c for c in causes if c not in CAUSE_COLOURS):
        start = zlib.crc32(cause.encode("utf-8")) % len(EXTRA_COLOURS)
        ring = EXTRA_COLOURS[start:] + EXTRA_COLOURS[:start]
        colour = next((c for c in ring if c not in taken), EXTRA_COLOURS[start])
        out[cause] = colour
        taken.add(colour)
    return out


def causes_chart(m: RunMetrics, *, wall_t0: float | None = None) -> str:
    """Busy user actions per second, stacked by cause (a cause loadkit does not know keeps a
    colour of its own and is named as unknown in the legend)."""
    causes = [c.cause for c in m.causes]

    def draw(ax: Axes) -> None:
        x = _mid(m)
        width = [max(p.width_s, 1) for p in m.series]
        ys = [
            [p.causes.get(c, 0) / w for p, w in zip(m.series, width, strict=True)] for c in causes
        ]
        if causes and x:
            colour = cause_colours(causes)
            labels = [c if c in CAUSE_COLOURS else UNKNOWN_CAUSE.format(c) for c in causes]
            colours = [colour[c] for c in causes]
            ax.stackplot(x, ys, labels=labels, colors=colours, alpha=0.85, step=None)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("busy actions / s")

    return _chart(m, draw, wall_t0=wall_t0)


def latency_chart(m: RunMetrics, *, wall_t0: float | None = None) -> str:
    """Latency percentiles over time (user actions, from the intended send time; log scale)."""

    def draw(ax: Axes) -> None:
        x = _mid(m)
        for name, colour, width in (
            ("p50", "#6c9a8b", 1.0),
            ("p95", "#e6a100", 1.2),
            ("p99", ACTION, 1.2),
        ):
            ax.plot(x, [getattr(p, name) for p in m.series], color=colour, lw=width, label=name)
        if any(p.p99 for p in m.series):
            ax.set_yscale("log")
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 1 else f"{v:g}")
        )
        ax.set_ylabel("latency (ms)")

    return _chart(m, draw, wall_t0=wall_t0)


def rate_chart(m: RunMetrics, *, wall_t0: float | None = None) -> str:
    """Offered (the profile's schedule) vs achieved (answered actions) per second."""

    def draw(ax: Axes) -> None:
        x = _mid(m)
        width = [max(p.width_s, 1) for p in m.series]
        if any(p.offered is not None for p in m.series):
            ax.plot(
                x,
                [(p.offered or 0) / w for p, w in zip(m.series, width, strict=True)],
                color="#333",
                lw=1.0,
                ls="--",
                label="offered",
            )
        ax.plot(
            x,
            [p.answered / w for p, w in zip(m.series, width, strict=True)],
            color=REQUEST,
            lw=1.4,
            label="achieved",
        )
        if any(p.unsent for p in m.series):
            ax.plot(
                x,
                [p.unsent / w for p, w in zip(m.series, width, strict=True)],
                color=ACTION,
                lw=1.0,
                label="unsent",
            )
        ax.set_ylim(bottom=0)
        ax.set_ylabel("actions / s")

    return _chart(m, draw, wall_t0=wall_t0)
