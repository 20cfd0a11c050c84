"""``loadkit gate RUN_DIR --slo SLO [--baseline RUN_DIR --max-regression 1pp]``.

Exit codes: ``0`` every objective met, ``1`` any failed (or the run is invalid), ``2`` a bad SLO
file, option or run directory (nothing is written then)::

    loadkit gate reports/20261128-193000-smoke --slo slo/smoke.yaml
    loadkit gate reports/NEW --slo slo/smoke.yaml --baseline reports/OLD --max-regression 0.5pp
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from rich.console import Console

from loadkit.cli.args import add_json_arg, command, exit_codes
from loadkit.errors import ConfigError, ExitCode
from loadkit.report.formats import FORMATS
from loadkit.rundir import GATE, RunDir

#: the default allowed rise of a busy rate over the baseline's, with --baseline
DEFAULT_MAX_REGRESSION = 0.01
_POINTS = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*pp\s*", re.IGNORECASE)

console = Console()


def parse_points(text: str) -> float:
    """``1pp`` → ``0.01``; ``0.5pp`` → ``0.005`` (percentage points, as a fraction)."""
    match = _POINTS.fullmatch(text)
    if match:
        return float(match[1]) / 100
    hint = ""
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*%?\s*", text):
        hint = f"; did you mean '{text.strip().rstrip('%').strip()}pp'?"
    raise ConfigError(
        f"--max-regression: expected percentage points like '1pp' or '0.5pp', got {text!r}{hint}"
    )


def cmd_gate(args: argparse.Namespace) -> int:
    from loadkit.gate.output import gate_run, render_table
    from loadkit.gate.slo import load_slo

    slo = load_slo(args.slo)  # SpecError: exit 2 before anything is read or written
    run_dir = RunDir.open(args.run_dir, "RUN_DIR")
    baseline = RunDir.open(args.baseline, "--baseline") if args.baseline else None
    if args.max_regression is not None and baseline is None:
        raise ConfigError("--max-regression compares with a baseline: add --baseline RUN_DIR")
    max_regression = None
    if baseline is not None:
        max_regression = (
            parse_points(args.max_regression)
            if args.max_regression is not None
            else DEFAULT_MAX_REGRESSION
        )
    result = gate_run(run_dir, slo, baseline_dir=baseline, max_regression=max_regression)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render_table(result, console)
        for fmt, path in result.written.items():
            console.print(f"{fmt:>5}: {path}", highlight=False, soft_wrap=True)
    return ExitCode.OK if result.passed else ExitCode.FAILED


def add_gate_parser(sub: Any) -> None:
    """Register ``gate`` on loadkit's subparsers."""
    gate = command(
        sub,
        "gate",
        "check a run against an SLO file: exit 0 pass, 1 fail, 2 bad SLO",
        description="Check a run directory against an SLO file. Prints every objective "
        f"(measured, limit, pass/fail), writes {GATE} in the run directory and renders its "
        f"reports again ({', '.join(f.file for f in FORMATS if f.file)}) so that they show the "
        "gate.",
        codes=exit_codes(
            ok="every objective met",
            failed="an objective failed, or the run cannot pass (not completed, or invalid)",
            usage="a bad SLO file, option or run directory (nothing is written)",
        ),
    )
    gate.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    gate.add_argument(
        "--slo", required=True, metavar="SLO", help="an SLO file, e.g. slo/smoke.yaml"
    )
    gate.add_argument("--baseline", metavar="RUN_DIR", help="an earlier run to compare with")
    gate.add_argument(
        "--max-regression",
        metavar="PP",
        help="with --baseline: fail a busy rate or unsent share that rose by more than this "
        "many percentage points (default 1pp)",
    )
    add_json_arg(gate, "the table (gate.json on stdout)")
    gate.set_defaults(func=cmd_gate)
