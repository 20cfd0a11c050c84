"""``loadkit profile from-traffic``: argument parsing and printing over
:mod:`loadkit.profile.traffic`::

    loadkit profile from-traffic profiles/traffic/double11-evening.csv --peak-multiplier 1.3 \\
        --time-scale 0.05 -o profiles/double11-2026.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from loadkit.cli.args import add_json_arg, add_out_arg, command, exit_codes, percent_arg
from loadkit.errors import ExitCode

console = Console()


def cmd_from_traffic(args: argparse.Namespace) -> int:
    from loadkit.profile.traffic import write_traffic_profile

    source = Path(args.traffic)
    summary = write_traffic_profile(
        source,
        Path(args.out) if args.out else source.with_suffix(".yaml"),
        journeys_from=Path(args.journeys_from) if args.journeys_from else None,
        peak_multiplier=args.peak_multiplier,
        time_scale=args.time_scale,
        merge=args.merge,
        name=args.name,
        force=args.force,
    )
    if args.json:
        import json

        out = Path(args.out) if args.out else source.with_suffix(".yaml")
        print(json.dumps({"written": str(out), "summary": summary}, indent=2))
        return ExitCode.OK
    console.print(Text.assemble(("wrote ", "green"), summary), soft_wrap=True)
    return ExitCode.OK


def add_profile_parsers(sub: Any) -> None:
    """Register ``profile from-traffic`` on loadkit's subparsers."""
    codes = exit_codes(
        ok="the profile was written (and validates)",
        usage="a bad CSV (file:line), option, or OUT exists and was not generated (--force)",
    )
    profile = command(sub, "profile", "make load profiles (from historical traffic)", codes=codes)
    profile_sub = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    traffic = command(
        profile_sub,
        "from-traffic",
        "a profile shaped like a traffic CSV (timestamp,count or timestamp,journey,count)",
        codes=codes,
    )
    traffic.add_argument(
        "traffic", metavar="TRAFFIC.csv", help="timestamp,count or timestamp,journey,count rows"
    )
    add_out_arg(
        traffic, "the profile to write (default: TRAFFIC.yaml)", metavar="OUT.yaml", old="--output"
    )
    traffic.add_argument(
        "--peak-multiplier",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every rate (this year's forecast, e.g. 1.3)",
    )
    traffic.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="run-clock compression (0.05: a minute of traffic runs in 3 s)",
    )
    traffic.add_argument(
        "--journeys-from",
        metavar="PROFILE",
        help="journeys, client and users from this profile (default: the wallet's Double 11 mix)",
    )
    traffic.add_argument(
        "--merge",
        type=percent_arg,
        default=0.0,
        metavar="PCT",
        help="join neighbouring intervals within PCT of their mean into one stage (default 0)",
    )
    traffic.add_argument("--name", help="the profile's name (default: the file's name)")
    traffic.add_argument(
        "--force", action="store_true", help="overwrite OUT even if it was not generated"
    )
    add_json_arg(traffic, "a line")
    traffic.set_defaults(func=cmd_from_traffic)
