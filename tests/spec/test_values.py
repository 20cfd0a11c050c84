"""The value parsers: what each accepts, and what each says about what it refuses."""

from __future__ import annotations

import pytest

from loadkit.spec.errors import Invalid
from loadkit.spec.values import (
    format_duration,
    parse_bandwidth,
    parse_duration,
    parse_int,
    parse_number,
    parse_percent,
    parse_rate,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("2m", 120.0),
        ("2min", 120.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("2m30s", 150.0),
        (" 10S ", 10.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            90,
            "expected a duration like '90s', '2m', '1h30m' or '500ms', got the bare number 90; "
            "did you mean '90s'?",
        ),
        ("-5s", "a duration cannot be negative, got '-5s'"),
        ("soon", "expected a duration like '90s', '2m', '1h30m' or '500ms', got 'soon'"),
        ("5 parsecs", "expected a duration like '90s', '2m', '1h30m' or '500ms', got '5 parsecs'"),
        ("0s", "expected a duration above zero, got '0s'"),
        (None, "expected a duration like '90s', '2m', '1h30m' or '500ms', got nothing (null)"),
        ([1], "expected a duration like '90s', '2m', '1h30m' or '500ms', got a list"),
        (True, "expected a duration like '90s', '2m', '1h30m' or '500ms', got true"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_duration(value)
    assert caught.value.message == message


def test_zero_duration_where_allowed() -> None:
    assert parse_duration("0s", allow_zero=True) == 0.0


@pytest.mark.parametrize(
    ("value", "per_second"),
    [
        (120, 120.0),
        (2.5, 2.5),
        ("120", 120.0),
        ("120/s", 120.0),
        ("120/sec", 120.0),
        ("7200/min", 120.0),
        ("7200/m", 120.0),
        ("36000/h", 10.0),
        ("1.5k/s", 1500.0),
        ("2k", 2000.0),
        ("0", 0.0),
    ],
)
def test_rates(value: object, per_second: float) -> None:
    assert parse_rate(value) == pytest.approx(per_second)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5/s", "a rate cannot be negative, got '-5/s'"),
        (-5, "a rate cannot be negative, got -5"),
        ("5/week", "unknown time unit '/week' in '5/week'; use /s, /min or /h"),
        ("lots", "expected an arrival rate like '120/s', '7200/min' or '1.5k/s', got 'lots'"),
        (True, "expected an arrival rate like '120/s', '7200/min' or '1.5k/s', got true"),
    ],
)
def test_bad_rates(value: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_rate(value)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("value", "fraction"), [("10%", 0.1), ("0%", 0.0), ("100%", 1.0), (0.25, 0.25), (1, 1.0)]
)
def test_percents(value: object, fraction: float) -> None:
    assert parse_percent(value) == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            10,
            "expected a percentage like '10%' (or a fraction from 0 to 1), got 10; "
            "did you mean '10%'?",
        ),
        ("150%", "expected at most 100%, got '150%'"),
        (-0.5, "a percentage cannot be negative, got -0.5"),
        ("ten%", "expected a percentage like '10%' (or a fraction from 0 to 1), got 'ten%'"),
    ],
)
def test_bad_percents(value: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_percent(value)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("value", "kbps"),
    [("64kbps", 64.0), ("1mbps", 1000.0), ("1.5Mbps", 1500.0), ("1gbps", 1e6), ("8000bps", 8.0)],
)
def test_bandwidths(value: str, kbps: float) -> None:
    assert parse_bandwidth(value) == pytest.approx(kbps)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", "expected a bandwidth like '512kbps' or '10mbps', got 'fast'"),
        (512, "expected a bandwidth like '512kbps' or '10mbps', got 512; did you mean '512kbps'?"),
        ("5 kpbs", "unknown bandwidth unit 'kpbs' in '5 kpbs'; did you mean 'kbps'?"),
        ("0mbps", "expected a bandwidth above zero, got '0mbps'"),
    ],
)
def test_bad_bandwidths(value: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_bandwidth(value)
    assert caught.value.message == message


def test_ints_and_numbers() -> None:
    assert parse_int(3, minimum=1, maximum=10) == 3
    with pytest.raises(Invalid, match="expected a whole number from 1 to 10, got 11"):
        parse_int(11, minimum=1, maximum=10)
    with pytest.raises(Invalid, match="expected a whole number, got true"):
        parse_int(True)
    with pytest.raises(Invalid, match="expected a number above 0, got 0"):
        parse_number(0, above=0)
    assert parse_number(0.5, above=0) == 0.5


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400, "1h30m"), (0.25, "250ms"), (90, "1m30s"), (86400, "1d"), (0, "0ms")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    if seconds:
        assert parse_duration(text) == pytest.approx(seconds)
