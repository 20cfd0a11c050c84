"""What ``loadkit run`` shows: a live line while the run goes, a short summary at the end.

with LiveProgress(console, profile_name) as live:
    result = run_profile(options, on_progress=live.update)
console.print(summary_table(result))
"""

from __future__ import annotations

from types import TracebackType

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from loadkit.load.runner import Progress, RunResult
from loadkit.report.timeline import Bucket


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:,.1f} s" if value >= 1000 else f"{value:,.0f} ms"


def _n(value: float) -> str:
    """Counts that fit a narrow column: 950, 47.8k, 1.2M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,.0f}"


class LiveProgress:
    """A rich ``Live`` display fed with :class:`Progress` snapshots."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.live = Live(
            Text(f"{title}: starting…"), console=console, refresh_per_second=4, transient=True
        )

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def update(self, p: Progress) -> None:
        done = min(p.elapsed, p.duration)
        bar = ProgressBar(total=p.duration, completed=done, width=40)
        busy_style = "red" if p.busy_rate >= 0.05 else "yellow" if p.busy_rate > 0 else "green"
        line = Text.assemble(
            (f"{self.title} ", "bold"),
            (f"{p.phase or '-'}  ", "cyan"),
            f"{done:,.0f}/{p.duration:,.0f}s  ",
            f"rate {p.achieved_rate:,.0f}/s of {p.target_rate:,.0f}/s  ",
            ("busy ", ""),
            (f"{p.busy_rate:.1%}", busy_style),
            f"  p95 {_ms(p.p95_ms)}  ",
            ("unsent ", ""),
            (f"{p.unsent:,}", "red" if p.unsent else ""),
        )
        self.live.update(Group(line, bar))


def _row(name: str, b: Bucket, seconds: float) -> list[str]:
    scheduled = b.answered + b.count("unsent")
    busy = b.count("busy")
    top = max(b.busy.items(), key=lambda kv: kv[1], default=None)
    causes = f"{top[0]} {top[1] / busy:.0%}" if top and busy else ""
    return [
        name,
        _n(scheduled),
        _n(scheduled / seconds) if seconds > 0 else "-",
        _n(b.count("rejected")),
        f"{b.busy_rate:.1%}",
        causes or "-",
        _ms(b.percentile_ms(95)),
        _ms(b.percentile_ms(99)),
        _n(b.count("unsent")),
    ]


def summary_table(result: RunResult) -> Table:
    """Per phase (user actions after retries): arrivals, rate, rejected, busy, latency, unsent."""
    tl, profile = result.timeline, result.profile
    table = Table(
        title=f"{profile.name} — {result.status} — user actions per phase (rej = rejected)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    columns = ("phase", "n", "/s", "rej", "busy", "top cause", "p95", "p99", "unsent")
    # SIMPLE_HEAD and no_wrap: the whole table fits an 80-column terminal
    for col in columns:
        left = col in ("phase", "top cause")
        table.add_column(
            col,
            justify="left" if left else "right",
            no_wrap=True,
        )
    lengths: dict[str, float] = {}
    for stage in profile.stages:
        # stage durations are profile time; rates are per run second
        run_s = stage.duration_s * profile.time_scale
        lengths[stage.name] = lengths.get(stage.name, 0.0) + run_s
    for phase in tl.phases():
        table.add_row(*_row(phase, tl.select("action", phase=phase), lengths.get(phase, 0.0)))
    table.add_section()
    table.add_row(*_row("all", tl.totals("action"), profile.duration_s), style="bold")
    return table
