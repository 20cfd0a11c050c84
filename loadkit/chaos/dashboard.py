"""The game-day dashboard of ``loadkit chaos run``: active faults, the next one, the busy rate,
time since the last fault, recovery, abort conditions; and a halt key.

Keys are read without blocking, and only when stdin is a terminal (no TTY, no key handling):
``h`` halts at once and rolls everything back, like Ctrl-C::

    with Dashboard(controller, console) as board:
        while not controller.wait(0.25):
            board.refresh()         # also handles a pressed 'h'
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from types import TracebackType
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.controller import Controller
from loadkit.chaos.results import ChaosStatus
from loadkit.chaos.scenario import Plan
from loadkit.spec.values import format_duration

HALT_KEYS = ("h", "H")


class KeyReader:
    """Single key presses from a terminal, without blocking (cbreak mode while active)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin
        try:
            self.enabled = self.stream.isatty()
        except (ValueError, OSError):
            self.enabled = False
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        if self.enabled:
            import termios
            import tty

            fd = self.stream.fileno()
            self._saved = list(termios.tcgetattr(fd))
            tty.setcbreak(fd)  # keys arrive one by one; Ctrl-C still raises KeyboardInterrupt
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._saved is not None:
            import termios

            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self) -> str:
        """Whatever keys were pressed since the last call ('' when none, or no terminal)."""
        if not self.enabled:
            return ""
        fd = self.stream.fileno()
        ready, _, _ = select.select([fd], [], [], 0)
        return os.read(fd, 64).decode(errors="replace") if ready else ""


class Dashboard:
    """A rich Live view of one controller, refreshed by :meth:`refresh`."""

    def __init__(self, controller: Controller, console: Console, keys: KeyReader | None = None):
        self.c = controller
        self.console = console
        self.keys = keys if keys is not None else KeyReader()
        self._live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> Dashboard:
        self.keys.__enter__()
        self._live.__enter__()
        self.refresh()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):
            self._live.update(self.render())
        self._live.__exit__(et, e, tb)
        self.keys.__exit__(et, e, tb)

    def refresh(self) -> None:
        if any(k in HALT_KEYS for k in self.keys.read()):
            self.c.halt("halted by the operator (h)")
        self._live.update(self.render())

    def render(self) -> Panel:
        c = self.c
        now = c.now()
        stats = c.stats
        status = c.status.value.upper()
        if c.halted and not c.finished:
            status += " — rolling back"
        head = Text.assemble(
            ("run clock ", "dim"),
            (f"{now:6.1f}s", "bold"),
            (f" / {c.plan.end_s:g}s   ", "dim"),
            (status, _status_style(c.status)),
        )
        cause = stats.top_cause()
        busy = Text.assemble(
            (f"busy rate ({stats.source}, 10s): ", "dim"),
            (f"{stats.busy_rate:.1%}", "bold red" if stats.busy_rate > 0.05 else "bold green"),
            (f"  {stats.answered} answered", "dim"),
            (f"  top cause: {cause}" if cause else "", "yellow"),
            (f"   p95 {stats.p95_s * 1000:.0f}ms" if stats.p95_s is not None else "", ""),
        )
        ended = [r.reverted_t for r in c.runs if r.reverted_t is not None]
        if ended:
            since = f"last fault ended {now - max(ended):.1f}s ago"
            recovery = (
                f"recovered in {c.recovered_in:.1f}s"
                if c.recovered_in is not None
                else "recovering…"
            )
        else:
            since, recovery = "no fault has ended yet", "-"
        lines: list[Text | Table] = [
            head,
            busy,
            Text(f"{since} · recovery: {recovery}", style="dim"),
            self._faults_table(now),
        ]
        upcoming = [r for r in c.runs if r.injected_t is None and not r.done.is_set()]
        if upcoming and not c.halted:
            nxt = min(upcoming, key=lambda r: r.planned.start_s).planned
            lines.append(
                Text(
                    f"next: {nxt.spec.name} ({nxt.spec.type} on {nxt.spec.target}) at "
                    f"{nxt.start_s:g}s, in {max(0.0, nxt.start_s - now):.1f}s — touching: "
                    + "; ".join(c.targets.get(nxt.id, []) or [nxt.spec.target])
                )
            )
        if c.scenario.abort:
            lines.append(self._conditions())
        if c.reason:
            lines.append(Text(c.reason, style="bold red"))
        hint = "press h to halt and roll back (Ctrl-C too)" if self.keys.enabled else "Ctrl-C halts"
        return Panel(
            Group(*lines),
            title=f"chaos: {c.scenario.name}",
            subtitle=hint,
            title_align="left",
        )

    def _faults_table(self, now: float) -> Table:
        table = Table(title="active faults", title_justify="left", expand=False)
        for col in ("fault", "type", "target", "touching", "since", "ends in"):
            table.add_column(col, overflow="fold")
        for run in self.c.runs:
            if run.injected_t is None or run.reverted_t is not None or run.done.is_set():
                continue
            p = run.planned
            ends = f"{max(0.0, p.end_s - now):.1f}s" if p.end_s is not None else "(one action)"
            table.add_row(
                p.spec.name,
                p.spec.type,
                p.spec.target,
                "\n".join(self.c.targets.get(p.id, [])),
                f"{now - run.injected_t:.1f}s",
                ends,
            )
        return table

    def _conditions(self) -> Table:
        table = Table(title="abort conditions", title_justify="left")
        table.add_column("condition")
        table.add_column("when")
        table.add_column("now")
        for cond in self.c.scenario.abort:
            table.add_row(cond.name, cond.describe(), self.c.watch_states.get(cond.name, "-"))
        return table


def _status_style(status: ChaosStatus) -> str:
    return {
        ChaosStatus.RUNNING: "bold cyan",
        ChaosStatus.COMPLETED: "bold green",
        ChaosStatus.DEVIATED: "bold yellow",
    }.get(status, "bold red")


def plan_table(plan: Plan, title: str, targets: dict[str, list[str]] | None = None) -> Table:
    """The plan on the run clock (``--dry-run``), with each fault's resolved targets (the blast
    radius) when ``targets`` is given."""
    table = Table(title=title, title_justify="left")
    columns = ["at", "until", "fault", "type", "target", "parameters"]
    if targets is not None:
        columns.append("resolves to (blast radius)")
    for col in columns:
        table.add_column(col, overflow="fold")
    for p in plan.faults:
        spec = p.spec
        at = f"{p.start_s:g}s" + (f" ({spec.at})" if spec.at.phase else "")
        if p.end_s is None:
            until = "(one action)"
        else:
            until = f"{p.end_s:g}s"
            if spec.until is not None and spec.until.phase:
                until += f" ({spec.until})"
            elif spec.duration_s is not None:
                until += f" ({format_duration(spec.duration_s)})"
        params = FAULTS[spec.type].describe_params(spec.params)
        row = [at, until, spec.name, spec.type, spec.target, params]
        if targets is not None:
            row.append("\n".join(targets.get(p.id, [])))
        table.add_row(*row)
    return table
