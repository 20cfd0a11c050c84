"""Parsers for the values people type into spec files: durations, rates, percents, bandwidths.

Each takes the value ``yaml.safe_load`` produced and returns it in base units (seconds, arrivals per
second, a fraction, kilobits per second), or raises :class:`~loadkit.spec.errors.Invalid` with a
message that says what is accepted and, where it can, what was probably meant::

    parse_duration("1h30m")  # 5400.0
    parse_rate("7200/min")   # 120.0

Decisions, so that every file reads the same way:

- durations need a unit (``500ms``, ``90s``, ``2m``, ``1h30m``, ``1.5h``, ``1d``): a bare ``90`` is
  refused with "did you mean '90s'?", because minutes and seconds are both plausible;
- rates are arrivals per second; a bare number is per second, ``/s``, ``/min`` (or ``/m``) and
  ``/h`` name the unit, and ``k`` multiplies by 1000 (``1.5k/s``);
- percents are ``10%`` or a fraction from 0 to 1 (``0.1``); a bare ``10`` is refused with
  "did you mean '10%'?";
- bandwidths are bits per second, decimal: ``bps``, ``kbps``, ``mbps``, ``gbps`` (any case).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TypeVar

from loadkit.spec.errors import Invalid

_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|min|s|m|h|d)", re.IGNORECASE)
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 1 / 60, "min": 1 / 60, "h": 1 / 3600, "hr": 1 / 3600}
_RATE = re.compile(rf"({_NUMBER})\s*(k?)\s*(?:/\s*([a-z]+))?", re.IGNORECASE)
_BANDWIDTH_UNITS = {"bps": 0.001, "kbps": 1.0, "mbps": 1000.0, "gbps": 1_000_000.0}
_BANDWIDTH = re.compile(rf"({_NUMBER})\s*([a-z]+)", re.IGNORECASE)

DURATION_EXAMPLES = "a duration like '90s', '2m', '1h30m' or '500ms'"
RATE_EXAMPLES = "an arrival rate like '120/s', '7200/min' or '1.5k/s'"
PERCENT_EXAMPLES = "a percentage like '10%' (or a fraction from 0 to 1)"
BANDWIDTH_EXAMPLES = "a bandwidth like '512kbps' or '10mbps'"

E = TypeVar("E", bound=StrEnum)


def describe(value: object) -> str:
    """How a value is shown in a message: ``'abc'``, ``12``, ``true``, ``null``, ``a list``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _number(value) if isinstance(value, int | float) else repr(value)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'duration'?"`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Seconds from ``'90s'``, ``'2m'``, ``'1h30m'``, ``'500ms'``; see the module notes."""
    if _is_number(value):
        assert isinstance(value, int | float)
        hint = f"; did you mean '{_number(value)}s'?" if value >= 0 else ""
        raise Invalid(f"expected {DURATION_EXAMPLES}, got the bare number {describe(value)}{hint}")
    if not isinstance(value, str):
        raise Invalid(f"expected {DURATION_EXAMPLES}, got {describe(value)}")
    text = value.strip()
    if text.startswith("-"):
        raise Invalid(f"a duration cannot be negative, got {describe(value)}")
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            break
        total += float(match[1]) * _DURATION_UNITS[match[2].lower()]
        pos = match.end()
    if pos == 0 or pos < len(text) or not math.isfinite(total):
        raise Invalid(f"expected {DURATION_EXAMPLES}, got {describe(value)}")
    if total == 0 and not allow_zero:
        raise Invalid(f"expected a duration above zero, got {describe(value)}")
    return total


def parse_rate(value: object) -> float:
    """Arrivals per second from ``120``, ``'120/s'``, ``'7200/min'``, ``'1.5k/s'``."""
    if _is_number(value):
        assert isinstance(value, int | float)
        if value < 0:
            raise Invalid(f"a rate cannot be negative, got {describe(value)}")
        return _finite(float(value), RATE_EXAMPLES, value)
    if not isinstance(value, str):
        raise Invalid(f"expected {RATE_EXAMPLES}, got {describe(value)}")
    text = value.strip()
    if text.startswith("-"):
        raise Invalid(f"a rate cannot be negative, got {describe(value)}")
    match = _RATE.fullmatch(text)
    if not match:
        raise Invalid(f"expected {RATE_EXAMPLES}, got {describe(value)}")
    unit = (match[3] or "s").lower()
    if unit not in _RATE_UNITS:
        raise Invalid(f"unknown time unit '/{unit}' in {describe(value)}; use /s, /min or /h")
    factor = 1000.0 if match[2] else 1.0
    return _finite(float(match[1]) * factor * _RATE_UNITS[unit], RATE_EXAMPLES, value)


def parse_percent(value: object, *, maximum: float = 1.0) -> float:
    """A fraction from ``'10%'`` or ``0.1``; at most ``maximum`` (1.0 = 100%)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        if not re.fullmatch(_NUMBER, number):
            raise Invalid(f"expected {PERCENT_EXAMPLES}, got {describe(value)}")
        fraction = float(number) / 100
    elif _is_number(value):
        assert isinstance(value, int | float)
        fraction = float(value)
        if fraction > 1:
            hint = f"did you mean '{_number(value)}%'?"
            raise Invalid(f"expected {PERCENT_EXAMPLES}, got {describe(value)}; {hint}")
    else:
        raise Invalid(f"expected {PERCENT_EXAMPLES}, got {describe(value)}")
    if fraction < 0:
        raise Invalid(f"a percentage cannot be negative, got {describe(value)}")
    if fraction > maximum:
        raise Invalid(f"expected at most {_number(maximum * 100)}%, got {describe(value)}")
    return fraction


def parse_bandwidth(value: object) -> float:
    """Kilobits per second from ``'512kbps'``, ``'10mbps'``, ``'1.5Mbps'``; must be above zero."""
    text = value.strip() if isinstance(value, str) else ""
    match = _BANDWIDTH.fullmatch(text)
    if not match:
        hint = ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            hint = f"; did you mean '{_number(value)}kbps'?"
        raise Invalid(f"expected {BANDWIDTH_EXAMPLES}, got {describe(value)}{hint}")
    unit = match[2].lower()
    if unit not in _BANDWIDTH_UNITS:
        hint = did_you_mean(unit, _BANDWIDTH_UNITS) or "; use bps, kbps, mbps or gbps"
        raise Invalid(f"unknown bandwidth unit '{match[2]}' in {describe(value)}{hint}")
    kbps = float(match[1]) * _BANDWIDTH_UNITS[unit]
    if kbps <= 0:
        raise Invalid(f"expected a bandwidth above zero, got {describe(value)}")
    return _finite(kbps, BANDWIDTH_EXAMPLES, value)


def parse_number(
    value: object, *, minimum: float | None = None, above: float | None = None
) -> float:
    """A finite number, at least ``minimum`` or strictly above ``above``."""
    if not _is_number(value):
        raise Invalid(f"expected a number, got {describe(value)}")
    assert isinstance(value, int | float)
    number = _finite(float(value), "a number", value)
    if above is not None and number <= above:
        raise Invalid(f"expected a number above {_number(above)}, got {describe(value)}")
    if minimum is not None and number < minimum:
        raise Invalid(f"expected a number of at least {_number(minimum)}, got {describe(value)}")
    return number


def parse_int(value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected a whole number, got {describe(value)}")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise Invalid(f"expected a whole number from {minimum} to {maximum}, got {value}")
    if minimum is not None and value < minimum:
        raise Invalid(f"expected a whole number of at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise Invalid(f"expected a whole number of at most {maximum}, got {value}")
    return value


def parse_bool(value: object) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def parse_text(value: object, *, pattern: str | None = None, hint: str = "") -> str:
    """A non-empty string, optionally matching ``pattern`` (``hint`` says what it allows)."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected {hint or 'some text'}, got {describe(value)}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise Invalid(f"expected {hint or 'text matching ' + pattern}, got {describe(value)}")
    return value


def parse_choice(value: object, choices: type[E], what: str) -> E:
    """One member of a string enum, by value, with "did you mean" for near misses."""
    names: Sequence[str] = [member.value for member in choices]
    if isinstance(value, str):
        for member in choices:
            if member.value == value:
                return member
        hint = did_you_mean(value, names)
        listing = ", ".join(names)
        raise Invalid(f"unknown {what} {describe(value)}{hint} (expected one of: {listing})")
    raise Invalid(f"expected a {what} (one of: {', '.join(names)}), got {describe(value)}")


def format_duration(seconds: float) -> str:
    """``5400`` → ``'1h30m'``; ``0.25`` → ``'250ms'``; the inverse of :func:`parse_duration`."""
    if seconds < 1:
        return f"{_number(round(seconds * 1000, 3))}ms"
    parts = []
    rest = round(seconds, 3)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            count, rest = divmod(rest, size)
            parts.append(f"{int(count)}{unit}")
    if rest or not parts:
        parts.append(f"{_number(round(rest, 3))}s")
    return "".join(parts)


def format_rate(per_second: float) -> str:
    """``1500.0`` → ``'1500/s'``; ``0.5`` → ``'0.5/s'``."""
    return f"{_number(round(per_second, 3))}/s"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float) -> str:
    """``2.0`` → ``'2'``, ``2.5`` → ``'2.5'``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _finite(number: float, expected: str, value: object) -> float:
    if not math.isfinite(number):
        raise Invalid(f"expected {expected}, got {describe(value)}")
    return number
