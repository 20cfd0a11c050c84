"""``loadkit report`` and ``loadkit compare``: argument parsing and printing over the library.

``add_report_parsers(subparsers)`` registers both on loadkit's argparse subparsers; each command
returns an exit code and raises :class:`~loadkit.errors.ConfigError` (exit 2) for a bad run
directory or option::

    loadkit report reports/20261128-193000-double11                 # every format
    loadkit report RUN_DIR --format html,terminal --max-busy 5%
    loadkit report RUN_DIR --format html --clock wall                  # wall-clock time axis
    loadkit compare reports/OLD reports/NEW --fail-on-regression
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from loadkit.errors import ExitCode
from loadkit.report.formats import CLOCKS, FORMATS, parse_formats, write_reports
from loadkit.rundir import RunDir

console = Console()


def _percent(value: str) -> float:
    from loadkit.spec.values import parse_percent

    try:
        return parse_percent(value if value.strip().endswith("%") else float(value))
    except (ValueError, Exception) as exc:
        raise argparse.ArgumentTypeError(f"expected a percentage like 5% or 0.05 ({exc})") from exc


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = RunDir.open(args.run_dir)
    formats = parse_formats(args.format)
    written = write_reports(
        run_dir,
        formats,
        out=Path(args.out) if args.out else None,
        max_busy=args.max_busy,
        busy_limit=args.busy_limit,
        term=console,
        clock=args.clock,
    )
    for fmt, path in written.items():
        console.print(f"{fmt:>5}: {path}", highlight=False, soft_wrap=True)
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from loadkit.report.compare import compare_metrics, render_comparison
    from loadkit.report.metrics import compute_metrics

    a = compute_metrics(RunDir.open(args.run_a).path)
    b = compute_metrics(RunDir.open(args.run_b).path)
    comparison = compare_metrics(a, b)
    render_comparison(comparison, console)
    if args.fail_on_regression and comparison.regressions:
        return ExitCode.FAILED
    return ExitCode.OK


def add_report_parsers(sub: Any) -> None:
    """Register ``report`` and ``compare`` on loadkit's subparsers."""
    report = sub.add_parser("report", help="busy-rate reports of a run directory")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    report.add_argument(
        "--format",
        default="all",
        help="comma-separated, from: "
        + ", ".join(f"{f.name} ({f.file or 'printed'})" for f in FORMATS)
        + " (default: all)",
    )
    report.add_argument("--out", help="where the files go (default: the run directory)")
    report.add_argument(
        "--max-busy",
        type=_percent,
        metavar="PCT",
        help="junit.xml: fail a phase whose busy rate is above this (e.g. 5%%)",
    )
    report.add_argument(
        "--busy-limit",
        type=_percent,
        metavar="PCT",
        help="steady-state limit for recovery (default: the scenario's busy-rate probe, else "
        "the pre-fault baseline + 1 point)",
    )
    report.add_argument(
        "--clock",
        choices=CLOCKS,
        default="run",
        help="the charts' time axis: run clock (m:ss from the run's start; default) or wall "
        "clock (local time, to line up with your own dashboards)",
    )
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="two runs side by side: deltas and regressions")
    compare.add_argument("run_a", metavar="RUN_A", help="the baseline run directory")
    compare.add_argument("run_b", metavar="RUN_B", help="the run to compare with it")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a regression is flagged"
    )
    compare.set_defaults(func=cmd_compare)
