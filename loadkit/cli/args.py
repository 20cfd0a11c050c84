"""Argument types shared by every command, so the same value is spelt the same way everywhere
(a rate as ``800/s``, a duration as ``90s``, a percentage as ``1%`` or ``0.01``)::

    parser.add_argument("--max-busy", type=percent_arg)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from typing import Any


def spec_arg(parse: Callable[[Any], float], what: str) -> Callable[[str], float]:
    def convert(text: str) -> float:
        from loadkit.spec.errors import Invalid

        try:
            return parse(text)
        except Invalid as exc:
            raise argparse.ArgumentTypeError(f"{what}: {exc.message}") from exc

    return convert


def rate_arg(text: str) -> float:
    from loadkit.spec.values import parse_rate

    return spec_arg(parse_rate, "expected a rate like 800/s")(text)


def duration_arg(text: str) -> float:
    from loadkit.spec.values import parse_duration

    return spec_arg(lambda v: parse_duration(v, allow_zero=True), "expected a duration")(text)


def percent_arg(text: str) -> float:
    from loadkit.spec.values import parse_percent

    value: Any = text
    with contextlib.suppress(ValueError):
        value = float(text)  # a plain number is a fraction (0.01 = 1%)
    return spec_arg(parse_percent, "expected a percentage like 1%")(value)


def add_allow_arg(parser: argparse.ArgumentParser) -> None:
    """``--allow HOST|IP|CIDR|*.SUFFIX`` (repeatable): where load, probes and faults may go
    beyond loopback (loadkit.safety)."""
    parser.add_argument(
        "--allow",
        action="append",
        metavar="HOST|CIDR|*.SUFFIX",
        help="also allow this host, address, network or *.suffix beyond loopback (repeatable); "
        "a name must also resolve only to allowed addresses",
    )


def _tags(text: str) -> list[str]:
    tags = [t.strip() for t in text.split(",") if t.strip()]
    if not tags:
        raise argparse.ArgumentTypeError("expected tags like payments,checkout")
    return tags


def add_tag_args(parser: argparse.ArgumentParser) -> None:
    """``--tags`` / ``--exclude-tags``: run a subset of the profile's journeys by their tags."""
    parser.add_argument(
        "--tags",
        type=_tags,
        action="extend",
        metavar="TAG[,TAG]",
        help="run only the journeys with one of these tags",
    )
    parser.add_argument(
        "--exclude-tags",
        type=_tags,
        action="extend",
        metavar="TAG[,TAG]",
        help="leave out the journeys with any of these tags",
    )


# -- one convention for every command ---------------------------------------------------------
#
# The same flag for the same thing everywhere: ``--stack-dir`` (the reference stack's directory;
# ``--dir`` is its old, hidden spelling), ``-o/--out`` (where files go), ``--json`` (machine-
# readable output instead of tables). Every command says what it does, every argument has help,
# and every command lists its exit codes at the end of its ``--help`` (loadkit/errors.py).

#: what each exit code means, in the words every command's help uses
EXIT_MEANINGS: dict[int, str] = {
    0: "ok",
    1: "failed: an SLO or gate failed, money integrity violated, or the run invalid",
    2: "usage or configuration error (nothing was started)",
    3: "environment error: a component missing or failing to start",
    4: "run aborted by a safety condition (after rollback)",
    130: "interrupted by Ctrl-C or SIGTERM (after rollback)",
}


class Formatter(argparse.HelpFormatter):
    """argparse's formatter, except that a paragraph whose lines after the first are indented
    (the exit-code list, examples) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if len(lines) > 1 and all(line.startswith("  ") for line in lines[1:]):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(out)


def exit_codes(**meanings: str) -> str:
    """The epilog listing a command's exit codes: ``exit_codes(ok="report written",
    usage="not a run directory")`` → ``exit codes:`` then one indented line per code."""
    names = {"ok": 0, "failed": 1, "usage": 2, "environment": 3, "aborted": 4, "interrupted": 130}
    lines = ["exit codes:"]
    for name, text in meanings.items():
        code = names[name]
        lines.append(f"  {code:>3}  {text or EXIT_MEANINGS[code]}")
    return "\n".join(lines)


def command(
    sub: Any,
    name: str,
    help: str,
    *,
    codes: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A (sub)command with its one-line help, a description (default: the help) and its exit
    codes (:func:`exit_codes`) as the epilog."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        epilog=codes,
        formatter_class=Formatter,
    )
    return parser


def add_stack_dir_arg(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--stack-dir DIR`` (``--dir`` still works, unlisted)."""
    parser.add_argument(
        "--stack-dir",
        metavar="DIR",
        help=help
        or "the reference stack's directory (default: $LOADKIT_STACK_DIR or .loadkit/stack)",
    )
    parser.add_argument("--dir", dest="stack_dir", help=argparse.SUPPRESS)


def add_out_arg(
    parser: argparse.ArgumentParser,
    help: str,
    *,
    default: str | None = None,
    metavar: str = "DIR",
    old: str | None = None,
) -> None:
    """``-o/--out`` (``old``: an earlier spelling that still works, unlisted)."""
    parser.add_argument("-o", "--out", default=default, metavar=metavar, help=help)
    if old is not None:
        parser.add_argument(old, dest="out", help=argparse.SUPPRESS)


def add_json_arg(parser: argparse.ArgumentParser, what: str = "the tables") -> None:
    """``--json``: print machine-readable JSON instead of ``what``."""
    parser.add_argument(
        "--json", action="store_true", help=f"print machine-readable JSON instead of {what}"
    )
