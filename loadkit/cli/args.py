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
