"""``loadkit capacity``: argument parsing and printing over :mod:`loadkit.capacity`::

    loadkit capacity profiles/double11.yaml --max-busy 1% --min-knee 800/s
    loadkit capacity profiles/double11.yaml --slo slo/double11.yaml --chaos chaos/x.yaml

Exit codes of ``capacity``: 0 a knee was found (and is at least ``--min-knee``); 1 the objective
is lost even at the lowest rate, no knee below ``--max-rate`` (capacity ≥ the highest rate tried),
the generator could not offer more, or the knee is below ``--min-knee``; 2 bad input; 3 the stack
or a component is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from loadkit.cli.args import (
    add_allow_arg,
    add_json_arg,
    add_out_arg,
    add_stack_dir_arg,
    command,
    duration_arg,
    exit_codes,
    percent_arg,
    rate_arg,
)
from loadkit.cli.live import add_live_args, close_live, open_live
from loadkit.errors import ConfigError, ExitCode

console = Console()
err_console = Console(stderr=True)


def _objectives(args: argparse.Namespace) -> tuple[Any, ...]:
    from loadkit.capacity.model import Measure, StepObjective, objectives_from_slo

    out: list[StepObjective] = []
    level = args.level
    if args.max_busy is not None:
        out.append(StepObjective(Measure.BUSY_RATE, args.max_busy, level=level))
    if args.max_p95 is not None:
        out.append(StepObjective(Measure.P95, args.max_p95, level=level))
    if args.max_p99 is not None:
        out.append(StepObjective(Measure.P99, args.max_p99, level=level))
    if args.slo:
        try:
            from loadkit.gate import load_slo
        except ImportError as exc:
            raise ConfigError("--slo: SLO files are not supported by this build") from exc
        slo = load_slo(args.slo)
        found, skipped = objectives_from_slo(slo)
        if not found:
            raise ConfigError(
                f"--slo {args.slo}: no objective a step can test (whole-run max_busy_rate, "
                f"max_p95 or max_p99); it has: {'; '.join(skipped) or 'none'}"
            )
        for label in skipped:
            console.print(f"[dim]--slo: not a per-step objective, ignored: {label}[/]")
        out.extend(found)
    if not out:
        out.append(StepObjective(Measure.BUSY_RATE, 0.01, level=level))
    return tuple(out)


def cmd_capacity(args: argparse.Namespace) -> int:
    from loadkit.capacity.report import render_capacity_terminal, write_capacity_files
    from loadkit.capacity.search import CapacityOptions, CapacitySearch

    options = CapacityOptions(
        profile=Path(args.profile),
        objectives=_objectives(args),
        start_rate=args.start_rate,
        max_rate=args.max_rate,
        step=args.step,
        resolution=args.resolution,
        hold_s=args.hold,
        warmup_s=args.warmup,
        stop_after=args.stop_after,
        chaos=Path(args.chaos) if args.chaos else None,
        target=args.target,
        stack_dir=Path(args.stack_dir) if args.stack_dir else None,
        instances=args.instances,
        workers=args.workers,
        out=Path(args.out),
        slo_name=args.slo,
        allow=tuple(args.allow or ()),
        system=Path(args.system) if args.system else None,
        ca=Path(args.ca) if args.ca else None,
        command=["loadkit", *sys.argv[1:]],
    )
    quiet = args.json

    def say(line: str) -> None:
        if not quiet:
            console.print(line, highlight=False, soft_wrap=True)

    search = CapacitySearch(options, say)  # everything validated here: nothing started yet
    from loadkit.safety import Allowlist

    view = open_live(
        args,
        Allowlist.parse(options.allow, source="--allow"),
        title=f"{search.profile.name} capacity",
        console=console,
    )
    if view is not None:
        search.on_runner = lambda runner: view.attach(
            runner,
            kind="capacity",
            title=f"capacity · {runner.profile.name}",
            also_halt=search.halt,
        )
    try:
        result = search.run()
    except BaseException:
        close_live(view, console, linger=False)
        raise
    close_live(view, console, linger=False)
    files = write_capacity_files(result)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        render_capacity_terminal(result, console)
        console.print(
            f"report: {files['html']}\ncapacity directory: {result.capacity_dir}",
            soft_wrap=True,
            highlight=False,
        )
    code = ExitCode.OK if result.found else ExitCode.FAILED
    if args.min_knee is not None:
        knee = result.knee_rate
        if knee is None or knee < args.min_knee:
            got = f"{knee:g}/s" if knee is not None else "no knee found"
            err_console.print(
                Text.assemble(
                    ("capacity below --min-knee: ", "bold red"),
                    f"needed {args.min_knee:g}/s, {got}",
                ),
                soft_wrap=True,
            )
            code = ExitCode.FAILED
    return code


def add_capacity_parsers(sub: Any) -> None:
    """Register ``capacity`` on loadkit's subparsers."""
    cap = command(
        sub,
        "capacity",
        "find the highest arrival rate that keeps the busy rate within the objective",
        description="Steps the arrival rate with the profile's journey mix until the objective "
        "is lost (a coarse pass, then a fine one around it) and reports the knee.",
        codes=exit_codes(
            ok="a knee was found (and is at least --min-knee)",
            failed="the objective is lost even at the lowest rate, no knee below --max-rate, "
            "the generator could not offer more, or the knee is below --min-knee",
            usage="a bad profile, scenario, SLO file or option",
            environment="the stack or a component is missing",
            interrupted="Ctrl-C or a halt from the live view",
        ),
    )
    cap.add_argument("profile", metavar="PROFILE", help="its journeys, client and users are used")
    objective = cap.add_argument_group("objective (default: --max-busy 1%)")
    objective.add_argument("--max-busy", type=percent_arg, metavar="PCT", help="e.g. 1%%")
    objective.add_argument("--max-p95", type=duration_arg, metavar="DURATION", help="e.g. 300ms")
    objective.add_argument("--max-p99", type=duration_arg, metavar="DURATION", help="e.g. 800ms")
    objective.add_argument(
        "--level",
        choices=("action", "request"),
        default="action",
        help="user actions after retries (default) or every request",
    )
    objective.add_argument(
        "--slo",
        metavar="SLO",
        help="take the SLO file's whole-run max_busy_rate (and max_p95/max_p99) objectives",
    )
    search = cap.add_argument_group("search (defaults from the profile's peak rate)")
    search.add_argument("--start-rate", type=rate_arg, metavar="RATE", help="default max/10")
    search.add_argument("--max-rate", type=rate_arg, metavar="RATE", help="default 2 × peak")
    search.add_argument("--step", type=rate_arg, metavar="RATE", help="coarse step (ten steps)")
    search.add_argument(
        "--resolution", type=rate_arg, metavar="RATE", help="fine step (default step/5)"
    )
    search.add_argument(
        "--hold", type=duration_arg, default=20.0, metavar="DURATION", help="per step (20s)"
    )
    search.add_argument(
        "--warmup", type=duration_arg, metavar="DURATION", help="not measured (default hold/4)"
    )
    search.add_argument(
        "--stop-after",
        type=int,
        default=2,
        metavar="N",
        help="end a pass after N failing steps in a row (2)",
    )
    cap.add_argument(
        "--min-knee", type=rate_arg, metavar="RATE", help="CI gate: exit 1 if the knee is lower"
    )
    cap.add_argument("--chaos", metavar="SCENARIO", help="hold a chaos scenario through each pass")
    cap.add_argument("--target", help="URL(s) of your own service, comma-separated")
    add_allow_arg(cap)
    cap.add_argument("--system", metavar="FILE", help="a system file (systems/*.yaml)")
    cap.add_argument("--ca", metavar="FILE", help="a CA bundle for --target's https:// URLs")
    add_stack_dir_arg(cap, "use the reference stack running in this directory")
    cap.add_argument(
        "--instances", type=int, default=2, help="wallet instances of a stack it starts (2)"
    )
    cap.add_argument("--workers", type=int, default=0, help="Locust worker processes (0)")
    add_out_arg(cap, "where the capacity directory goes (default reports/)", default="reports")
    add_json_arg(cap, "the table (capacity.json on stdout)")
    add_live_args(cap)
    cap.set_defaults(func=cmd_capacity)
