"""Outcome classification: what one HTTP request, or one user action, ended in.

One definition everywhere (docs/design.md, "Outcome taxonomy"): ``ok`` (2xx/3xx), ``rejected`` (a
correct refusal: 400, 401, 402, 403, 404, 409, 422 and every other 4xx), ``busy`` with a cause, or
``unsent`` (the generator could not send an arrival; never the result of a request).
A declarative step's ``expect`` block overrides the status rules; answers that never came
(``timeout``, ``connection``) are always busy::

    classify(429)                                  # (Outcome.BUSY, Cause.THROTTLED)
    classify(503, maintenance=True)                # (Outcome.BUSY, Cause.MAINTENANCE)
    classify(None, failure=Failure.TIMEOUT)        # (Outcome.BUSY, Cause.TIMEOUT)
    classify(409, expect=Expect({409: Outcome.OK}))  # (Outcome.OK, None)

Beyond docs/design.md's list, so that every status has exactly one outcome: every 4xx but 429 is
``rejected`` (405, 408, 413 … too); a status outside 200–599 (a broken answer) is busy
``server_error``. A status that ``expect`` declares busy gets the cause its code has by
default, or ``unavailable`` when its code is not busy by default (a 409 the service uses to say
"try later", say).

The hot path does not call :func:`classify`: :class:`StatusTable` caches its answers for every
status of one ``expect`` block (indexes, see :data:`OUTCOMES` and :data:`CAUSES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import orjson


class Outcome(StrEnum):
    """How a request or an action ended (the keys of a timeline line's ``n``). An ``expect``
    block may assign a status to any of :data:`EXPECTABLE`."""

    OK = "ok"
    REJECTED = "rejected"
    BUSY = "busy"
    UNSENT = "unsent"  # never an answer: an arrival the generator could not send


#: the outcomes a declarative journey's ``expect`` block may name
EXPECTABLE: tuple[Outcome, ...] = (Outcome.OK, Outcome.REJECTED, Outcome.BUSY)


class Cause(StrEnum):
    """Why an answer counts as busy (the keys of a timeline line's ``busy``).

    Adding a cause: a member here, its colour and description in :data:`CAUSE_INFO`, and the
    statuses that mean it in :func:`busy_cause`; SLO files, reports and charts take it from here.
    """

    THROTTLED = "throttled"
    MAINTENANCE = "maintenance"
    UNAVAILABLE = "unavailable"
    SERVER_ERROR = "server_error"
    GATEWAY_TIMEOUT = "gateway_timeout"
    TIMEOUT = "timeout"
    CONNECTION = "connection"


@dataclass(frozen=True, slots=True)
class CauseInfo:
    colour: str  # in every chart
    description: str  # in reports and docs


CAUSE_INFO: Mapping[Cause, CauseInfo] = {
    Cause.THROTTLED: CauseInfo("#e6a100", "429: rate limits, admission control, risk throttling"),
    Cause.MAINTENANCE: CauseInfo("#7a5cc9", "503 marked as maintenance"),
    Cause.UNAVAILABLE: CauseInfo("#d1495b", "502, or a 503 not marked as maintenance"),
    Cause.SERVER_ERROR: CauseInfo("#8c2f39", "500 and other 5xx, or a broken answer"),
    Cause.GATEWAY_TIMEOUT: CauseInfo("#ed7d3a", "504"),
    Cause.TIMEOUT: CauseInfo("#2e86ab", "the client's deadline passed"),
    Cause.CONNECTION: CauseInfo("#5c6b73", "refused, reset, closed early, TLS failure"),
}
assert set(CAUSE_INFO) == set(Cause), "every Cause needs its CAUSE_INFO"


class Detail(StrEnum):
    """A finer reason inside one busy cause (the keys of a timeline line's ``detail``), counted
    on top of its cause: ``busy: {"connection": 9}, detail: {"tls": 7}`` = 7 of the 9 connection
    failures were TLS failures. :data:`DETAIL_CAUSE` names each detail's cause."""

    TLS = "tls"  # the handshake failed, the certificate was refused, a TLS alert


DETAIL_CAUSE: Mapping[Detail, Cause] = {Detail.TLS: Cause.CONNECTION}
assert set(DETAIL_CAUSE) == set(Detail), "every Detail needs its cause"


@dataclass(frozen=True, slots=True)
class Expect:
    """Which statuses mean what for one HTTP step: ``statuses`` by code, ``classes`` by hundreds
    (``4`` for ``4xx``). A code wins over its class; unlisted ones follow the taxonomy."""

    statuses: Mapping[int, Outcome] = field(default_factory=dict)
    classes: Mapping[int, Outcome] = field(default_factory=dict)

    def outcome_of(self, status: int) -> Outcome | None:
        """The outcome this step assigns to ``status``, or ``None`` for the default taxonomy."""
        return self.statuses.get(status) or self.classes.get(status // 100)


class Failure(StrEnum):
    """A request that got no (complete) answer."""

    TIMEOUT = "timeout"  # the client's deadline passed
    CONNECTION = "connection"  # refused, reset, closed early, or an unreadable answer


#: the order of outcome and cause indexes used by the recorder and :class:`StatusTable`
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
CAUSES: tuple[Cause, ...] = tuple(Cause)
OK, REJECTED, BUSY, UNSENT = range(4)
NO_CAUSE = -1
#: the order of detail indexes used by the recorder; ``NO_DETAIL`` when an answer has none
DETAILS: tuple[Detail, ...] = tuple(Detail)
NO_DETAIL = -1
TLS_FAILED = DETAILS.index(Detail.TLS)

#: statuses docs/design.md names as refusals (every other 4xx is one too, see the module docstring)
REJECTED_STATUSES = frozenset({400, 401, 402, 403, 404, 409, 422})


def busy_cause(status: int, *, maintenance: bool = False) -> Cause | None:
    """The cause a status has when it means busy by default; ``None`` when it does not."""
    if status == 429:
        return Cause.THROTTLED
    if status == 503:
        return Cause.MAINTENANCE if maintenance else Cause.UNAVAILABLE
    if status == 502:
        return Cause.UNAVAILABLE
    if status == 504:
        return Cause.GATEWAY_TIMEOUT
    if 500 <= status <= 599 or not 200 <= status <= 599:
        return Cause.SERVER_ERROR
    return None


def classify(
    status: int | None,
    *,
    maintenance: bool = False,
    failure: Failure | None = None,
    expect: Expect | None = None,
) -> tuple[Outcome, Cause | None]:
    """The outcome (and busy cause) of one answer.

    ``status`` is the HTTP status, ``None`` when no answer came (then ``failure`` says why).
    ``maintenance``: the answer was marked as maintenance (header ``X-Wallet-Maintenance: true``
    or ``"maintenance": true`` in the body); it only matters for a busy 503.
    """
    if status is None or failure is not None:
        return Outcome.BUSY, Cause.TIMEOUT if failure is Failure.TIMEOUT else Cause.CONNECTION
    declared = expect.outcome_of(status) if expect is not None else None
    if declared is not None:
        outcome = declared
        if outcome is Outcome.BUSY:
            return outcome, busy_cause(status, maintenance=maintenance) or Cause.UNAVAILABLE
        return outcome, None
    if 200 <= status <= 399:
        return Outcome.OK, None
    if 400 <= status <= 499 and status != 429:
        return Outcome.REJECTED, None
    return Outcome.BUSY, busy_cause(status, maintenance=maintenance)


class StatusTable:
    """:func:`classify` for every status of one ``expect`` block, as ``(outcome, cause)`` indexes
    into :data:`OUTCOMES` and :data:`CAUSES` (``cause`` is :data:`NO_CAUSE` unless busy)::

        table = StatusTable(step.expect)
        outcome, cause = table.lookup(503, maintenance=False)
    """

    __slots__ = ("_maintenance", "_plain")

    def __init__(self, expect: Expect | None = None) -> None:
        self._plain = [_indexes(*classify(s, expect=expect)) for s in range(600)]
        self._maintenance = _indexes(*classify(503, maintenance=True, expect=expect))

    def lookup(self, status: int, maintenance: bool = False) -> tuple[int, int]:
        if maintenance and status == 503:
            return self._maintenance
        if 0 <= status < 600:
            return self._plain[status]
        return BUSY, CAUSES.index(Cause.SERVER_ERROR)


#: the (outcome, cause) indexes of the two ways a request can get no answer
TIMED_OUT = (BUSY, CAUSES.index(Cause.TIMEOUT))
CONNECTION_LOST = (BUSY, CAUSES.index(Cause.CONNECTION))


def maintenance_marked(header: object, body: bytes | None) -> bool:
    """The one maintenance detector: a 503 whose header ``X-Wallet-Maintenance`` is ``true``
    (``header`` is its value, or None) or whose JSON body says ``"maintenance": true``::

        maintenance_marked(response.headers.get("X-Wallet-Maintenance"), response.content)
    """
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if isinstance(header, str) and header.strip().lower() == "true":
        return True
    if not body or b"maintenance" not in body:
        return False
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("maintenance") is True


#: the header :func:`maintenance_marked` reads (the reference wallet sends it; any service may)
MAINTENANCE_HEADER = "X-Wallet-Maintenance"  # the reference wallet sends it (tested there)


class MoneyView(StrEnum):
    """The client's final view of one money movement (``acks.bin``'s ``view``)."""

    ACKNOWLEDGED = "acknowledged"  # the service said it happened
    REFUSED = "refused"  # the service said, correctly, that it did not
    UNKNOWN = "unknown"  # busy or no answer: it may or may not have happened


def money_view(outcome: int) -> MoneyView:
    """The one money-outcome rule, from the answer's classified outcome (an index into
    :data:`OUTCOMES`), so a step's ``expect`` counts: a 409 it declares busy is ``unknown``,
    never ``refused``."""
    if outcome == OK:
        return MoneyView.ACKNOWLEDGED
    if outcome == REJECTED:
        return MoneyView.REFUSED
    return MoneyView.UNKNOWN


def _indexes(outcome: Outcome, cause: Cause | None) -> tuple[int, int]:
    return OUTCOMES.index(outcome), NO_CAUSE if cause is None else CAUSES.index(cause)
