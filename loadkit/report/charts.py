"""The HTML report's charts, drawn by matplotlib as inline SVG (no JavaScript, nothing fetched).

Every chart has the same time axis (the run clock as ``m:ss``, or the wall clock) and the same
decoration, *outside* the data: above the plot a lane of fault labels (each fault's window as a
red bar with its name; overlapping faults take separate rows) and a strip of phase names (a
phase too short for its name gets a numbered marker, and the chart's key under the axis names
it: ``2 = midnight-spike 1:22–1:24``). No phase is ever left unlabelled and no label covers the
data. Inside the plot, phases are alternating grey bands and faults red shading; hovering a band
or a label shows the window on the run clock and, when the run clock's origin is known, the
wall clock (an SVG ``<title>``).

Each chart comes in two :class:`Variant` s: ``WIDE`` (the desktop page) and ``NARROW`` (the page
below 820 px, and phones: fewer ticks, larger text, the legend under the plot); the page shows
one of them by CSS::

    svg = busy_chart(compute_metrics(run_dir))                  # "<svg …>…</svg>"
    svg = busy_chart(m, variant=NARROW, wall_t0=m.clock_t0)
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
import textwrap
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadkit.profile.outcome import CAUSE_INFO
from loadkit.report.verdict import clock as _run_clock

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
#: lines of a breakdown chart (one per instance or network class)
SLICE_COLOURS = ("#2e86ab", "#d1495b", "#e6a100", "#6c9a8b", "#6a3d9a", "#b15928", "#1b9e77")
#: the legend says which causes are not loadkit's
UNKNOWN_CAUSE = "{} (unknown cause)"
ACTION, REQUEST, FAULT, GOOD = "#d1495b", "#2e86ab", "#d1495b", "#1a7f37"
#: the number of the next chart drawn in this process: its SVG ids' prefix (``c7-…``), unique
#: across the page's charts
_next_id = [1]
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
#: a sans-serif character's mean width, in font sizes (for laying labels out without a renderer)
_CHAR_W = 0.56


@dataclass(frozen=True)
class Variant:
    """A chart's size and text: the figure's width and plot height (inches at 96 px), the
    font size (points), the plot's left and right edges (fractions: the same in every chart, so
    their time axes line up), at most how many time ticks, and where the legend goes."""

    name: str
    width_in: float
    plot_in: float
    font: float
    left: float
    right: float
    ticks: int
    legend_below: bool


#: the desktop page: 1056 px wide, 9 pt text, the legend right of the plot
WIDE = Variant("wide", 11.0, 1.9, 9.0, 0.07, 0.85, 12, legend_below=False)
#: below 820 px (a narrow window, a phone): 422 px wide (scaled to the screen), 10.5 pt text
NARROW = Variant("narrow", 4.4, 2.0, 10.5, 0.17, 0.97, 5, legend_below=True)
VARIANTS = (WIDE, NARROW)
#: characters of a legend label that fit right of the plot (the wide variant)
LEGEND_CHARS = 20


def _clock(value: float, _pos: object = None) -> str:
    """Run-clock seconds as ``m:ss`` (``h:mm:ss`` past an hour): the one format of times."""
    text: str = _run_clock(value)
    return text


def wall_text(t0: float, value: float, *, seconds: bool = True) -> str:
    """Run-clock ``value`` as local wall-clock time ``HH:MM:SS`` (the machine's time zone)."""
    moment = dt.datetime.fromtimestamp(t0 + value).astimezone()
    return moment.strftime("%H:%M:%S" if seconds else "%H:%M")


def zone_text(t0: float) -> str:
    """The date and UTC offset wall-clock times are given in: ``2026-11-28, UTC+08:00``."""
    moment = dt.datetime.fromtimestamp(t0).astimezone()
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d}, UTC{offset[:3]}:{offset[3:]}"


def window_title(name: str, start: float, end: float | None, t0: float | None) -> str:
    """What hovering a phase or a fault says: ``peak: 1:22–1:29 (wall 19:31:22–19:31:29)``."""
    until = _run_clock(end) if end is not None else "…"
    text = f"{name}: {_run_clock(start)}–{until} run clock"
    if t0:
        wall_end = wall_text(t0, end) if end is not None else "…"
        text += f" ({wall_text(t0, start)}–{wall_end} wall clock, {zone_text(t0)})"
    return text


def _tick_step(duration: float, most: int = 12) -> float:
    """A round tick step (seconds) giving at most ``most`` ticks over the run."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if duration / step <= most:
            return step
    return 86400


def _svg(fig: Figure, *, adjust: bool = True, titles: dict[str, str] | None = None) -> str:
    """The figure as inline SVG that scales with the page. ``adjust``: the fixed margins of a
    chart without its own layout; ``titles``: hover texts by artist ``gid``."""
    buf = io.StringIO()
    if adjust:
        # fixed margins (not bbox "tight") so that every chart's time axis lines up
        fig.subplots_adjust(left=0.07, right=0.85, top=0.88, bottom=0.2)
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    for gid, title in (titles or {}).items():
        text = text.replace(
            f'<g id="{gid}">', f'<g id="{gid}"><title>{html.escape(title)}</title>', 1
        )
    # ids must be unique across the page's several SVGs
    prefix = f"c{_next_id[0]}-"
    _next_id[0] += 1
    text = re.sub(r'id="([^"]+)"', lambda mt: f'id="{prefix}{mt.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda mt: f"url(#{prefix}{mt.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda mt: f'href="#{prefix}{mt.group(1)}"', text)
    # scale with the page: drop the fixed size, keep the viewBox
    size = r'<svg([^>]*?) width="[^"]+" height="[^"]+"'
    return re.sub(size, r'<svg\1 class="chart"', text, count=1)


# -- the labels above the plot ----------------------------------------------------------------


@dataclass
class _Label:
    text: str
    x: float  # data x of its anchor
    lo: float  # points, along the axis: where it starts and ends
    hi: float
    row: int = 0
    index: int = -1  # the phase's (or fault's) place in the run
    marker: bool = False  # a numbered marker standing for a phase too short for its name


def _pack(labels: list[_Label], taken: list[list[tuple[float, float]]] | None = None) -> int:
    """Give each label the lowest row where it overlaps nothing; the number of rows used."""
    rows = taken if taken is not None else []
    for label in labels:
        for row, spans in enumerate(rows):
            if all(label.hi + 3 <= lo or label.lo >= hi + 3 for lo, hi in spans):
                label.row = row
                spans.append((label.lo, label.hi))
                break
        else:
            label.row = len(rows)
            rows.append([(label.lo, label.hi)])
    return len(rows)


@dataclass
class _Layout:
    """Where a chart's labels go: fault labels in rows just above the plot, phase names (or
    markers) above them, the key of phase markers under the axis."""

    faults: list[tuple[_Label, float, float]]  # label, start, end (data)
    phases: list[_Label]
    markers: list[tuple[int, str]]  # marker number, key text
    fault_rows: int
    phase_rows: int
    key_lines: list[str]


def _layout(m: RunMetrics, v: Variant, x_end: float) -> _Layout:
    axis_pt = (v.right - v.left) * v.width_in * 72
    scale = axis_pt / x_end if x_end else 1.0
    font = v.font - 1

    def width(text: str) -> float:
        return len(text) * font * _CHAR_W + 4

    faults = []
    for f in m.faults:
        end = f.end_s if f.end_s is not None else x_end
        lo = f.start_s * scale
        label = _Label(f.name, f.start_s, lo, max(lo + width(f.name), end * scale))
        faults.append((label, f.start_s, end))
    fault_rows = _pack([lab for lab, _s, _e in faults]) if faults else 0
    inline: list[_Label] = []
    short: list[tuple[int, _Label]] = []
    markers: list[tuple[int, str]] = []
    for i, p in enumerate(m.phases):
        mid = (p.start_s + p.end_s) / 2
        span = (p.end_s - p.start_s) * scale
        need = width(p.name)
        if need <= span:
            inline.append(
                _Label(p.name, mid, mid * scale - need / 2, mid * scale + need / 2, index=i)
            )
        else:
            number = len(markers) + 1
            mark = str(number)
            half = width(mark) / 2 + font * 0.45  # the number in a small circle
            lo, hi = mid * scale - half, mid * scale + half
            short.append((i, _Label(mark, mid, lo, hi, index=i, marker=True)))
            markers.append((number, f"{mark} = {p.name} {_clock(p.start_s)}–{_clock(p.end_s)}"))
    rows: list[list[tuple[float, float]]] = [[(lab.lo, lab.hi) for lab in inline]]
    phase_rows = _pack([lab for _i, lab in short], rows) if (inline or short) else 0
    key: list[str] = []
    if markers:
        chars = max(20, int(v.width_in * 72 * 0.95 / (font * _CHAR_W)))
        text = "short phases: " + " · ".join(k for _n, k in markers)
        key = textwrap.wrap(text, chars)
    return _Layout(
        faults, inline + [lab for _i, lab in short], markers, fault_rows, phase_rows, key
    )


def _decorate(
    fig: Figure,
    ax: Axes,
    m: RunMetrics,
    v: Variant,
    lay: _Layout,
    x_end: float,
    wall_t0: float | None,
    titles: dict[str, str],
) -> None:
    """Phases as alternating bands, faults shaded red; their labels above the plot."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator
    from matplotlib.transforms import offset_copy

    font = v.font - 1
    row_pt = font * 1.55
    t0 = m.clock_t0
    for i, p in enumerate(m.phases):
        gid = f"lk-phase-{i}"
        ax.axvspan(
            p.start_s, p.end_s, color="#eef0f3" if i % 2 else "#ffffff", zorder=0, lw=0, gid=gid
        )
        titles[gid] = window_title(f"phase {p.name}", p.start_s, p.end_s, t0)
    for i, f in enumerate(m.faults):
        end = f.end_s if f.end_s is not None else x_end
        gid = f"lk-fault-{i}"
        ax.axvspan(
            f.start_s, max(end, f.start_s + 0.5), color=FAULT, alpha=0.12, lw=0, zorder=0, gid=gid
        )
        titles[gid] = window_title(
            f"fault {f.name} ({f.type} on {f.target})", f.start_s, f.end_s, t0
        )
    for i, (label, start, end) in enumerate(lay.faults):
        base = 3 + label.row * row_pt
        # the fault's window as a bar at the foot of its row, its name just above the bar
        lane = offset_copy(ax.get_xaxis_transform(), fig=fig, y=base, units="points")
        ax.plot(
            [start, max(end, start + 0.5)],
            [1.0, 1.0],
            transform=lane,
            color=FAULT,
            lw=2.0,
            solid_capstyle="butt",
            clip_on=False,
            gid=f"lk-fault-bar-{i}",
        )
        titles[f"lk-fault-bar-{i}"] = titles[f"lk-fault-{i}"]
        ax.annotate(
            label.text,
            xy=(start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(1, base + 1.5),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=font,
            color="#8c2f39",
            fontweight="bold",
            annotation_clip=False,
            gid=f"lk-fault-label-{i}",
        )
        titles[f"lk-fault-label-{i}"] = titles[f"lk-fault-{i}"]
    above = 3 + lay.fault_rows * row_pt + 2
    for label in lay.phases:
        gid = f"lk-phase-label-{label.index}"
        ax.annotate(
            label.text,
            xy=(label.x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, above + label.row * row_pt),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=font,
            color="#333" if label.marker else "#555",
            fontweight="bold" if label.marker else "normal",
            annotation_clip=False,
            gid=gid,
            bbox={"boxstyle": "circle,pad=0.2", "fc": "#fff", "ec": "#888", "lw": 0.6}
            if label.marker
            else None,
        )
        titles[gid] = titles[f"lk-phase-{label.index}"]
    step = _tick_step(x_end, v.ticks)
    if wall_t0 is None:
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    else:  # ticks on round wall-clock times (…:00, …:30), not on round run-clock seconds
        ax.xaxis.set_major_locator(MultipleLocator(step, offset=-(wall_t0 % step)))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda val, _p: wall_text(wall_t0, val, seconds=step < 60))
        )
    ax.set_xlim(0, x_end)


def _chart(
    m: RunMetrics,
    draw: Callable[[Axes, Variant], None],
    *,
    variant: Variant = WIDE,
    wall_t0: float | None = None,
    ylabel: str = "",
) -> str:
    # matplotlib is imported when a chart is drawn: the page's other parts, and a process that
    # only hands the charts to a chart worker (loadkit.report.chartjob), do without it
    import matplotlib as mpl
    from matplotlib.figure import Figure

    v = variant
    x_end = max(m.duration_s, max((p.t + p.width_s for p in m.series), default=0), 1.0)
    lay = _layout(m, v, x_end)
    titles: dict[str, str] = {}
    rc = {**_RC, "font.size": v.font, "legend.fontsize": v.font - 1}
    with mpl.rc_context(rc):
        fig = Figure(dpi=96)
        ax = fig.add_subplot()
        draw(ax, v)
        ax.patch.set_gid("lk-plot")  # the plot area: tests check that no label is drawn over it
        ax.set_ylabel(ylabel)
        _decorate(fig, ax, m, v, lay, x_end, wall_t0, titles)
        label = (
            "run clock (m:ss)"
            if wall_t0 is None
            else f"wall clock ({zone_text(wall_t0)}; run clock 0:00 = {wall_text(wall_t0, 0)})"
        )
        ax.set_xlabel(label, color="#555")
        handles, labels = ax.get_legend_handles_labels()
        # margins in points: the labels' rows above, ticks, axis label, legend and key below
        font = v.font - 1
        top_pt = 6 + (lay.fault_rows + lay.phase_rows) * font * 1.55 + 4
        bottom_pt = v.font * 3.4 + 4
        legend_rows = 0
        if handles and v.legend_below:
            legend_rows = math.ceil(len(handles) / 2)
            bottom_pt += legend_rows * font * 1.45 + 4
        bottom_pt += len(lay.key_lines) * font * 1.4
        plot_pt = v.plot_in * 72
        height_pt = top_pt + plot_pt + bottom_pt
        fig.set_size_inches(v.width_in, height_pt / 72)
        fig.subplots_adjust(
            left=v.left, right=v.right, top=1 - top_pt / height_pt, bottom=bottom_pt / height_pt
        )
        if handles:
            if v.legend_below:
                y = (len(lay.key_lines) * font * 1.4 + 2) / height_pt
                fig.legend(
                    handles,
                    labels,
                    loc="lower left",
                    bbox_to_anchor=(v.left - 0.1, y),
                    ncol=2,
                    frameon=False,
                    handlelength=1.4,
                    columnspacing=1.2,
                )
            else:
                # right of the plot there is room for ~20 characters: longer labels (an
                # instance's URL, "goodput (achieved − busy)") wrap rather than being cut off
                wrapped = [_wrap_label(text) for text in labels]
                ax.legend(
                    handles, wrapped, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
                )
        for i, line in enumerate(reversed(lay.key_lines)):
            fig.text(
                0.01, (3 + i * font * 1.4) / height_pt, line, fontsize=font, color="#333", ha="left"
            )
        return _svg(fig, adjust=False, titles=titles)


def _wrap_label(text: str, width: int = LEGEND_CHARS) -> str:
    """A legend label in lines of at most ``width`` characters (at spaces, else anywhere)::

    _wrap_label("goodput (achieved − busy)")   # 'goodput (achieved −\nbusy)'
    """
    return "\n".join(
        textwrap.wrap(text, width, break_on_hyphens=False) if "\n" not in text else [text]
    )


def _mid(m: RunMetrics) -> list[float]:
    return [p.t + p.width_s / 2 for p in m.series]


def _widths(m: RunMetrics) -> list[int]:
    return [max(p.width_s, 1) for p in m.series]


def busy_chart(m: RunMetrics, *, wall_t0: float | None = None, variant: Variant = WIDE) -> str:
    """Busy rate over time: user actions and requests, with the steady-state limit."""

    def draw(ax: Axes, v: Variant) -> None:
        from matplotlib.ticker import PercentFormatter

        x = _mid(m)
        ax.plot(
            x,
            [p.busy_rate or 0 for p in m.series],
            color=ACTION,
            lw=1.6,
            label="user actions (after retries)"
            if v.legend_below
            else "user actions\n(after retries)",
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

    return _chart(m, draw, variant=variant, wall_t0=wall_t0, ylabel="busy rate")


def slice_chart(
    m: RunMetrics,
    dimension: str,
    *,
    wall_t0: float | None = None,
    variant: Variant = WIDE,
) -> str:
    """Busy rate over time of each value of a breakdown (each instance, or network class)."""
    breakdown = m.breakdown(dimension)
    rows = breakdown.rows if breakdown is not None else []

    def draw(ax: Axes, v: Variant) -> None:
        from matplotlib.ticker import PercentFormatter

        x = _mid(m)
        for i, row in enumerate(rows):
            ys = [r if r is not None else math.nan for r in row.busy_series]
            ax.plot(
                x[: len(ys)],
                ys,
                color=SLICE_COLOURS[i % len(SLICE_COLOURS)],
                lw=1.4,
                ls="-" if i < len(SLICE_COLOURS) else "--",
                label=row.value,
            )
        if m.limit is not None:
            ax.axhline(
                m.limit.value, color="#333", lw=0.8, ls="--", label=f"limit {m.limit.value:.1%}"
            )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        top = max([r or 0 for row in rows for r in row.busy_series] + [0.0])
        ax.set_ylim(0, min(1.05, max(0.05, top * 1.2)))

    return _chart(m, draw, variant=variant, wall_t0=wall_t0, ylabel="busy rate (actions)")


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


def causes_chart(m: RunMetrics, *, wall_t0: float | None = None, variant: Variant = WIDE) -> str:
    """Busy user actions per second, stacked by cause (a cause loadkit does not know keeps a
    colour of its own and is named as unknown in the legend)."""
    causes = [c.cause for c in m.causes]

    def draw(ax: Axes, v: Variant) -> None:
        from matplotlib.ticker import MaxNLocator

        x = _mid(m)
        width = _widths(m)
        ys = [
            [p.causes.get(c, 0) / w for p, w in zip(m.series, width, strict=True)] for c in causes
        ]
        if causes and x:
            colour = cause_colours(causes)
            labels = [c if c in CAUSE_COLOURS else UNKNOWN_CAUSE.format(c) for c in causes]
            colours = [colour[c] for c in causes]
            ax.stackplot(x, ys, labels=labels, colors=colours, alpha=0.85, step=None)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))

    return _chart(m, draw, variant=variant, wall_t0=wall_t0, ylabel="busy actions / s")


def latency_chart(m: RunMetrics, *, wall_t0: float | None = None, variant: Variant = WIDE) -> str:
    """Latency percentiles over time (user actions, from the intended send time; log scale),
    and the service time's p95 (from the actual send: the server's share of the wait)."""

    def draw(ax: Axes, v: Variant) -> None:
        from matplotlib.ticker import FuncFormatter

        x = _mid(m)
        for name, colour, width in (
            ("p50", "#6c9a8b", 1.0),
            ("p95", "#e6a100", 1.2),
            ("p99", ACTION, 1.2),
        ):
            ax.plot(x, [getattr(p, name) for p in m.series], color=colour, lw=width, label=name)
        if any(p.service_p95 is not None for p in m.series):
            ax.plot(
                x,
                [p.service_p95 if p.service_p95 is not None else math.nan for p in m.series],
                color="#6a3d9a",
                lw=1.0,
                ls="--",
                label="p95 service time",
            )
        if any(p.p99 for p in m.series):
            ax.set_yscale("log")
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda val, _p: f"{val:,.0f}" if val >= 1 else f"{val:g}")
        )

    return _chart(m, draw, variant=variant, wall_t0=wall_t0, ylabel="latency (ms)")


def rate_chart(m: RunMetrics, *, wall_t0: float | None = None, variant: Variant = WIDE) -> str:
    """Offered (the profile's schedule) vs achieved (answered actions) and goodput (answered
    and not busy) per second."""

    def draw(ax: Axes, v: Variant) -> None:
        x = _mid(m)
        width = _widths(m)
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
        ax.plot(
            x,
            [p.goodput / w for p, w in zip(m.series, width, strict=True)],
            color=GOOD,
            lw=1.2,
            label="goodput (achieved − busy)" if v.legend_below else "goodput\n(achieved − busy)",
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

    return _chart(m, draw, variant=variant, wall_t0=wall_t0, ylabel="actions / s")


ChartFn = Callable[..., str]


def both(
    fn: ChartFn,
    m: RunMetrics,
    *args: Any,
    variants: Sequence[Variant] = VARIANTS,
    **kw: Any,
) -> Sequence[tuple[str, str]]:
    """The chart in every variant: ``[("wide", svg), ("narrow", svg)]``; with ``variants``,
    only those (each keeps the SVG ids it has among all: chart workers that draw the variants
    apart give the page the ids one process would)."""
    first = _next_id[0]
    out = []
    for k, v in enumerate(VARIANTS):
        if v in variants:
            _next_id[0] = first + k
            out.append((v.name, fn(m, *args, variant=v, **kw)))
    _next_id[0] = first + len(VARIANTS)
    return out
