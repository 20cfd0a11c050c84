"""The report formats, in one registry: each has a name, the run-directory file it writes
(``None``: it prints) and its renderer. ``loadkit report``, the end of ``loadkit run``, the gate,
``loadkit capacity`` and the pytest plugin all go through :func:`write_reports`::

    write_reports(run_dir)                                    # every file format
    write_reports(run_dir, ["html", "terminal"], term=Console())
    parse_formats("markdown,xml")                             # ["md", "junit"]

Adding a format: a renderer module whose function takes ``(metrics, options)`` and returns the
file's text (or prints to ``options.console`` and returns ``None``), plus one line in
:data:`FORMATS`. Renderers are imported when used: listing the formats pulls in neither numpy
nor matplotlib.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadkit.errors import ConfigError
from loadkit.rundir import JUNIT_XML, REPORT_HTML, REPORT_JSON, SUMMARY_MD

if TYPE_CHECKING:
    from rich.console import Console

    from loadkit.report.chartjob import ChartJob
    from loadkit.report.model import RunMetrics
    from loadkit.rundir import RunDir


@dataclass(frozen=True)
class ReportOptions:
    """What a renderer may be asked beyond the metrics: ``max_busy`` (junit.xml fails a phase
    above this action busy rate), ``console`` (where a printing format prints; a new
    ``Console()`` when ``None``) and ``clock`` (``run`` or ``wall``: the HTML charts' time
    axis)."""

    max_busy: float | None = None
    console: Console | None = None
    #: the charts' time axis: ``run`` (run clock, m:ss) or ``wall`` (local wall-clock time)
    clock: str = "run"
    #: the HTML page's charts drawn beforehand (the chart worker draws them, then renders the
    #: page): returns :func:`loadkit.report.html.chart_sections`'s list, or ``None`` (draw them
    #: here); ``None``: the page draws its charts
    charts: Callable[[], Sequence[dict[str, Any]] | None] | None = None


#: the time axes the HTML charts can have
CLOCKS: tuple[str, ...] = ("run", "wall")

Renderer = Callable[["RunMetrics", ReportOptions], "str | None"]


@dataclass(frozen=True)
class ReportFormat:
    """One format: ``file`` is its name in the run directory (a :mod:`loadkit.rundir`
    constant), ``None`` for one that prints; ``renderer`` is ``"module:function"``."""

    name: str
    file: str | None
    renderer: str
    aliases: tuple[str, ...] = ()

    def render(self, m: RunMetrics, options: ReportOptions) -> str | None:
        module, _, function = self.renderer.partition(":")
        fn: Renderer = getattr(importlib.import_module(module), function)
        return fn(m, options)


FORMATS: tuple[ReportFormat, ...] = (
    ReportFormat("html", REPORT_HTML, "loadkit.report.html:render_html"),
    ReportFormat("md", SUMMARY_MD, "loadkit.report.markdown:render_markdown", ("markdown",)),
    ReportFormat("json", REPORT_JSON, "loadkit.report.jsonreport:render_json"),
    ReportFormat("junit", JUNIT_XML, "loadkit.report.junit:render_junit", ("xml",)),
    ReportFormat("terminal", None, "loadkit.report.terminal:print_report"),
)
BY_NAME = {f.name: f for f in FORMATS}
#: every format's name, in registry order; ``FILE_FORMATS``: the ones that write a file
ALL_FORMATS: tuple[str, ...] = tuple(BY_NAME)
FILE_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.file is not None)
_ALIASES = {alias: f.name for f in FORMATS for alias in f.aliases}


def parse_formats(text: str) -> list[str]:
    """``"html,md"`` → ``["html", "md"]``; ``all`` is every format; an unknown name is a
    ``ConfigError`` (exit 2) with a close match."""
    from loadkit.spec.values import did_you_mean

    names = [f.strip().lower() for f in text.split(",") if f.strip()]
    if names == ["all"]:
        return list(ALL_FORMATS)
    known = ", ".join(ALL_FORMATS)
    out = []
    for name in names:
        name = _ALIASES.get(name, name)
        if name not in BY_NAME:
            hint = did_you_mean(name, ALL_FORMATS)
            raise ConfigError(f"--format: unknown format '{name}'{hint} (one of {known})")
        out.append(name)
    if not out:
        raise ConfigError(f"--format: expected a list like html,md (one of {known})")
    return out


def write_reports(
    run_dir: str | Path | RunDir,
    formats: Iterable[str] = FILE_FORMATS,
    *,
    out: Path | None = None,
    max_busy: float | None = None,
    busy_limit: float | None = None,
    term: Console | None = None,
    metrics: RunMetrics | None = None,
    clock: str = "run",
    chart_worker: bool = True,
) -> dict[str, Path]:
    """Compute the metrics once (or take ``metrics``) and render each format: files into
    ``out`` (default: the run directory), a printing format to ``term``. Returns the files
    written, by format. A gated run's reports carry the gate (they read ``gate.json``).
    ``chart_worker``: draw the HTML page's charts and render it in a forked process meanwhile
    (:mod:`loadkit.report.chartjob`; where forking is safe), the same page sooner."""
    # a report allocates hundreds of thousands of objects (matplotlib's artists above all) and
    # drops them at the end: the cyclic collector's passes meanwhile cost ~20% of its time
    was_enabled = gc.isenabled()
    gc.disable()
    job = None
    try:
        formats = list(formats)
        if chart_worker and "html" in formats:
            # numpy and the metrics' model imported once, before the fork: the worker needs
            # them too (it unpickles the metrics), so it inherits them instead of importing
            import loadkit.report.metrics  # noqa: F401
            from loadkit.report.chartjob import ChartJob

            job = ChartJob.start()
        return _write_reports(
            run_dir, formats, out, max_busy, busy_limit, term, metrics, clock, job
        )
    finally:
        if job is not None:
            job.close()
        if was_enabled:
            gc.enable()


def _write_reports(
    run_dir: str | Path | RunDir,
    formats: list[str],
    out: Path | None,
    max_busy: float | None,
    busy_limit: float | None,
    term: Console | None,
    metrics: RunMetrics | None,
    clock: str,
    job: ChartJob | None,
) -> dict[str, Path]:
    from loadkit.report.metrics import compute_metrics

    if clock not in CLOCKS:
        raise ConfigError(f"--clock: expected one of {', '.join(CLOCKS)}, got {clock!r}")
    if metrics is None:
        metrics = compute_metrics(Path(run_dir), busy_limit=busy_limit)
    if clock == "wall" and metrics.clock_t0 is None:
        raise ConfigError(
            f"--clock wall: {run_dir} has no clock.json (the run clock never started), so its "
            "wall-clock times are unknown; use --clock run"
        )
    options = ReportOptions(max_busy=max_busy, console=term, clock=clock)
    order = list(formats)
    if job is not None:  # the page last: the worker renders it meanwhile
        job.submit(metrics, metrics.clock_t0 if clock == "wall" else None)
        order.sort(key=lambda name: name == "html")
    target = Path(out) if out is not None else Path(run_dir)
    done: dict[str, Path] = {}
    for name in order:
        fmt = BY_NAME[name]
        # the page from the chart worker (None: it failed, the page is rendered here)
        text = job.result() if name == "html" and job is not None else None
        if text is None:
            text = fmt.render(metrics, options)
        if fmt.file is None or text is None:
            continue
        target.mkdir(parents=True, exist_ok=True)
        path = target / fmt.file
        path.write_text(text, encoding="utf-8")
        done[name] = path
    written = {name: done[name] for name in formats if name in done}  # in the order asked
    return written


__all__ = [
    "ALL_FORMATS",
    "CLOCKS",
    "FILE_FORMATS",
    "FORMATS",
    "ReportFormat",
    "ReportOptions",
    "parse_formats",
    "write_reports",
]
