"""What ``loadkit run`` shows while the run goes: phase, elapsed, achieved vs offered rate, busy
rate, p95 and unsent, on one line above a progress bar (the report follows at the end)::

    with LiveProgress(console, profile_name) as live:
        result = run_profile(options, on_progress=live.update)
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from loadkit.run.orchestrator import Progress


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
