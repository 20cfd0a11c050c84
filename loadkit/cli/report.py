"""``loadkit report`` and ``loadkit compare``: argument parsing and printing over the library.

``add_report_parsers(subparsers)`` registers both on loadkit's argparse subparsers; each command
returns an exit code and raises :class:`~loadkit.errors.ConfigError` (exit 2) for a bad run
directory or option::

    loadkit report reports/20261128-193000-double11                 # every format
    loadkit report RUN_DIR --format html,terminal --max-busy 5%
    loadkit report RUN_DIR --format html --clock wall                  # wall-clock time axis
    loadkit compare reports/OLD reports/NEW --fail-on-regression
    loadkit compare reports/OLD reports/NEW --journey pay --instance wallet-1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from loadkit.cli.args import add_json_arg, add_out_arg, command, exit_codes
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
    if args.json:  # report.json on stdout: the other formats are written, nothing else printed
        formats = [f for f in formats if f != "terminal"]
        if "json" not in formats:
            formats.append("json")
    written = write_reports(
        run_dir,
        formats,
        out=Path(args.out) if args.out else None,
        max_busy=args.max_busy,
        busy_limit=args.busy_limit,
        term=console,
        clock=args.clock,
    )
    if args.json:
        print(written["json"].read_text(encoding="utf-8"), end="")
        return ExitCode.OK
    for fmt, path in written.items():
        console.print(f"{fmt:>5}: {path}", highlight=False, soft_wrap=True)
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from loadkit.report.compare import compare_metrics, render_comparison
    from loadkit.report.metrics import compute_metrics
    from loadkit.report.model import Scope

    scope = Scope(args.journey, args.endpoint, args.instance, args.network)
    run_a, run_b = RunDir.open(args.run_a, "RUN_A"), RunDir.open(args.run_b, "RUN_B")
    a = compute_metrics(run_a.path, scope=scope)
    b = compute_metrics(run_b.path, scope=scope)
    comparison = compare_metrics(a, b)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        render_comparison(comparison, console)
    if args.fail_on_regression and comparison.regressions:
        return ExitCode.FAILED
    return ExitCode.OK


def add_report_parsers(sub: Any) -> None:
    """Register ``report`` and ``compare`` on loadkit's subparsers."""
    report = command(
        sub,
        "report",
        "busy-rate reports of a run directory",
        description="Render the reports of a run directory (complete or cut short) again: "
        "report.html, summary.md, report.json, junit.xml, and the terminal report.",
        codes=exit_codes(
            ok="written (whatever the run's busy rate: the gate judges, not the report)",
            usage="not a run directory, or a bad option",
        ),
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    report.add_argument(
        "--format",
        default="all",
        help="comma-separated, from: "
        + ", ".join(f"{f.name} ({f.file or 'printed'})" for f in FORMATS)
        + " (default: all)",
    )
    add_out_arg(report, "where the files go (default: the run directory)")
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
    add_json_arg(report, "the list of files (report.json on stdout)")
    report.set_defaults(func=cmd_report)

    compare = command(
        sub,
        "compare",
        "two runs side by side: deltas and regressions",
        description="Compare run B with the baseline run A: busy rate and p95 per phase, "
        "fault, busy cause, target instance, network class and journey, regressions flagged. "
        "--journey, --endpoint, --instance and --network compare one slice of both runs (the "
        "scopes an SLO objective takes).",
        codes=exit_codes(
            ok="compared (no regression, or --fail-on-regression not given)",
            failed="--fail-on-regression and a regression was flagged",
            usage="not a run directory, or a bad option",
        ),
    )
    compare.add_argument("run_a", metavar="RUN_A", help="the baseline run directory")
    compare.add_argument("run_b", metavar="RUN_B", help="the run to compare with it")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a regression is flagged"
    )
    scope = compare.add_argument_group("one slice of both runs (default: every answer)")
    scope.add_argument("--journey", help="only this journey's answers")
    scope.add_argument(
        "--endpoint", help="only this request's answers, by label (e.g. 'POST /v1/transfers')"
    )
    scope.add_argument("--instance", help="only answers from this target instance (e.g. wallet-1)")
    scope.add_argument("--network", help="only answers to users of this network class")
    add_json_arg(compare, "the table")
    compare.set_defaults(func=cmd_compare)
