"""What ``loadkit run`` shows while the run goes: phase, elapsed, achieved vs offered rate, busy
rate, p95 and unsent, on one line above a progress bar (the report follows at the end).

:func:`progress_of` makes a :class:`Progress` snapshot of a run at a ``tick``;
:class:`LiveProgress` shows them::

    with LiveProgress(console, profile_name) as live:
        result = run_profile(options, on_progress=live.update)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from loadkit.profile.model import LoadModel, Profile
from loadkit.rundir.timeline import Timeline

#: seconds whose answers are still arriving: progress looks this far back
LAG_S = 3


@dataclass
class Progress:
    """A snapshot for the live display."""

    elapsed: float
    duration: float
    phase: str | None
    target_rate: float
    achieved_rate: float
    busy_rate: float
    p95_ms: float | None
    unsent: int
    answered: int


def progress_of(profile: Profile, timeline: Timeline, elapsed: float) -> Progress:
    """The run as it stands ``elapsed`` run-clock seconds in: rates over the last 3 settled
    seconds, the busy rate and p95 over the last 10."""
    window_end = int(elapsed) - LAG_S
    recent = timeline.select("action", t_from=window_end - 10, t_to=window_end)
    rate_win = timeline.select("action", t_from=window_end - 3, t_to=window_end)
    total = timeline.totals("action")
    offered = 0.0
    if profile.model is LoadModel.OPEN and window_end > 0:
        # offered over the same (lagged) window as the achieved rate
        offered = profile.arrivals_between(max(0.0, window_end - 3.0), float(window_end)) / 3.0
    return Progress(
        elapsed=elapsed,
        duration=profile.duration_s,
        phase=profile.phase_at(min(elapsed, profile.duration_s - 1e-9)),
        target_rate=offered,
        achieved_rate=(rate_win.answered + rate_win.count("unsent")) / 3.0
        if window_end > 0
        else 0.0,
        busy_rate=recent.busy_rate,
        p95_ms=recent.percentile_ms(95),
        unsent=total.count("unsent"),
        answered=total.answered,
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:,.1f} s" if value >= 1000 else f"{value:,.0f} ms"


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

    def stop(self) -> None:
        """Take the live line away (the run's end prints below it); safe to call twice."""
        if self.live.is_started:
            self.live.stop()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live.is_started:
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
