"""The outcome taxonomy of docs/design.md, for every status, cause and ``expect`` override."""

from __future__ import annotations

import pytest

from loadkit.profile.model import Expect
from loadkit.profile.model import Outcome as Declared
from loadkit.profile.outcome import (
    CAUSES,
    OUTCOMES,
    REJECTED_STATUSES,
    Cause,
    Failure,
    Outcome,
    StatusTable,
    classify,
)

BUSY = Outcome.BUSY


def expected(status: int, maintenance: bool = False) -> tuple[Outcome, Cause | None]:
    """The taxonomy written out longhand, independently of the implementation."""
    if 200 <= status <= 399:
        return Outcome.OK, None
    if status == 429:
        return BUSY, Cause.THROTTLED
    if 400 <= status <= 499:
        return Outcome.REJECTED, None
    if status == 503:
        return BUSY, Cause.MAINTENANCE if maintenance else Cause.UNAVAILABLE
    if status == 502:
        return BUSY, Cause.UNAVAILABLE
    if status == 504:
        return BUSY, Cause.GATEWAY_TIMEOUT
    return BUSY, Cause.SERVER_ERROR  # 500, other 5xx, and anything outside 200–599


@pytest.mark.parametrize("maintenance", [False, True])
def test_every_status_has_exactly_the_outcome_design_md_gives_it(maintenance: bool) -> None:
    for status in range(0, 700):
        assert classify(status, maintenance=maintenance) == expected(status, maintenance), status


@pytest.mark.parametrize(
    ("status", "outcome", "cause"),
    [
        (200, Outcome.OK, None),
        (201, Outcome.OK, None),
        (204, Outcome.OK, None),
        (302, Outcome.OK, None),
        (304, Outcome.OK, None),
        (400, Outcome.REJECTED, None),
        (401, Outcome.REJECTED, None),
        (402, Outcome.REJECTED, None),
        (403, Outcome.REJECTED, None),
        (404, Outcome.REJECTED, None),
        (409, Outcome.REJECTED, None),
        (422, Outcome.REJECTED, None),
        (405, Outcome.REJECTED, None),
        (413, Outcome.REJECTED, None),
        (429, BUSY, Cause.THROTTLED),
        (500, BUSY, Cause.SERVER_ERROR),
        (501, BUSY, Cause.SERVER_ERROR),
        (502, BUSY, Cause.UNAVAILABLE),
        (503, BUSY, Cause.UNAVAILABLE),
        (504, BUSY, Cause.GATEWAY_TIMEOUT),
        (507, BUSY, Cause.SERVER_ERROR),
        (599, BUSY, Cause.SERVER_ERROR),
        (101, BUSY, Cause.SERVER_ERROR),
        (600, BUSY, Cause.SERVER_ERROR),
    ],
)
def test_named_statuses(status: int, outcome: Outcome, cause: Cause | None) -> None:
    assert classify(status) == (outcome, cause)


def test_the_refusals_design_md_lists() -> None:
    assert {400, 401, 402, 403, 404, 409, 422} == REJECTED_STATUSES
    assert all(classify(s)[0] is Outcome.REJECTED for s in REJECTED_STATUSES)


def test_maintenance_is_a_marked_503_only() -> None:
    assert classify(503, maintenance=True) == (BUSY, Cause.MAINTENANCE)
    assert classify(502, maintenance=True) == (BUSY, Cause.UNAVAILABLE)
    assert classify(200, maintenance=True) == (Outcome.OK, None)


def test_answers_that_never_came_are_busy_whatever_expect_says() -> None:
    assert classify(None, failure=Failure.TIMEOUT) == (BUSY, Cause.TIMEOUT)
    assert classify(None, failure=Failure.CONNECTION) == (BUSY, Cause.CONNECTION)
    assert classify(None) == (BUSY, Cause.CONNECTION)
    lenient = Expect(classes={5: Declared.OK, 4: Declared.OK, 2: Declared.OK})
    assert classify(None, failure=Failure.TIMEOUT, expect=lenient) == (BUSY, Cause.TIMEOUT)


def test_expect_overrides_by_code_and_by_class_and_a_code_wins() -> None:
    expect = Expect(
        statuses={404: Declared.OK, 409: Declared.BUSY, 500: Declared.REJECTED},
        classes={4: Declared.BUSY, 2: Declared.REJECTED},
    )
    assert classify(404, expect=expect) == (Outcome.OK, None)
    assert classify(409, expect=expect) == (BUSY, Cause.UNAVAILABLE)  # not busy by default
    assert classify(500, expect=expect) == (Outcome.REJECTED, None)
    assert classify(400, expect=expect) == (BUSY, Cause.UNAVAILABLE)  # by its class
    assert classify(429, expect=expect) == (BUSY, Cause.THROTTLED)  # declared busy: own cause
    assert classify(201, expect=expect) == (Outcome.REJECTED, None)
    assert classify(302, expect=expect) == (Outcome.OK, None)  # unlisted: the taxonomy
    assert classify(504, expect=expect) == (BUSY, Cause.GATEWAY_TIMEOUT)
    busy = Expect(statuses={503: Declared.BUSY, 200: Declared.BUSY})
    assert classify(503, maintenance=True, expect=busy) == (BUSY, Cause.MAINTENANCE)
    assert classify(200, expect=busy) == (BUSY, Cause.UNAVAILABLE)


@pytest.mark.parametrize(
    "expect",
    [
        None,
        Expect(),
        Expect(statuses={404: Declared.OK, 201: Declared.BUSY}, classes={5: Declared.REJECTED}),
    ],
)
def test_the_hot_path_table_is_classify_cached(expect: Expect | None) -> None:
    table = StatusTable(expect)
    for status in range(0, 700):
        for maintenance in (False, True):
            outcome, cause = classify(status, maintenance=maintenance, expect=expect)
            want = (OUTCOMES.index(outcome), -1 if cause is None else CAUSES.index(cause))
            assert table.lookup(status, maintenance) == want, (status, maintenance)


def test_the_money_view_follows_the_classified_outcome() -> None:
    from loadkit.profile.outcome import BUSY, OK, REJECTED, UNSENT, MoneyView, money_view

    assert money_view(OK) is MoneyView.ACKNOWLEDGED
    assert money_view(REJECTED) is MoneyView.REFUSED
    assert money_view(BUSY) is MoneyView.UNKNOWN
    assert money_view(UNSENT) is MoneyView.UNKNOWN


@pytest.mark.parametrize(
    ("header", "body", "marked"),
    [
        ("true", b"", True),
        (" TRUE ", None, True),
        (b"true", None, True),
        (None, b'{"maintenance": true, "code": "WALLET_BUSY"}', True),
        (None, b'{"maintenance": false}', False),
        (None, b'{"reason": "maintenance"}', False),
        (None, b"maintenance, not json", False),
        ("false", b"", False),
        (None, None, False),
    ],
)
def test_one_maintenance_detector(header: object, body: bytes | None, marked: bool) -> None:
    from loadkit.profile.outcome import maintenance_marked

    assert maintenance_marked(header, body) is marked


def test_every_cause_has_a_colour_and_a_description() -> None:
    from loadkit.profile.outcome import CAUSE_INFO, Cause

    assert set(CAUSE_INFO) == set(Cause)
    colours = [info.colour for info in CAUSE_INFO.values()]
    assert len(set(colours)) == len(colours)
