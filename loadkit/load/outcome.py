"""Outcome classification: what one HTTP request, or one user action, ended in.

One definition everywhere (DESIGN.md, "Outcome taxonomy"): ``ok`` (2xx/3xx), ``rejected`` (a
correct refusal: 400, 401, 402, 403, 404, 409, 422 and every other 4xx), ``busy`` with a cause, or
``unsent`` (the generator could not send an arrival; never the result of a request).
A declarative step's ``expect`` block overrides the status rules; answers that never came
(``timeout``, ``connection``) are always busy::

    classify(429)                                  # (Outcome.BUSY, Cause.THROTTLED)
    classify(503, maintenance=True)                # (Outcome.BUSY, Cause.MAINTENANCE)
    classify(None, failure=Failure.TIMEOUT)        # (Outcome.BUSY, Cause.TIMEOUT)
    classify(409, expect=Expect({409: Outcome.OK}))  # (Outcome.OK, None)

Beyond DESIGN.md's list, so that every status has exactly one outcome: every 4xx but 429 is
``rejected`` (405, 408, 413 … too); a status outside 200–599 (a broken answer) is busy
``server_error``. A status that ``expect`` declares busy gets the cause its code has by
default, or ``unavailable`` when its code is not busy by default (a 409 the service uses to say
"try later", say).

The hot path does not call :func:`classify`: :class:`StatusTable` caches its answers for every
status of one ``expect`` block (indexes, see :data:`OUTCOMES` and :data:`CAUSES`).
"""

from __future__ import annotations

from enum import StrEnum

from loadkit.load.profile import Expect
from loadkit.load.profile import Outcome as Outcome  # the one taxonomy, re-exported


class Cause(StrEnum):
    """Why an answer counts as busy (the keys of a timeline line's ``busy``)."""

    THROTTLED = "throttled"
    MAINTENANCE = "maintenance"
    UNAVAILABLE = "unavailable"
    SERVER_ERROR = "server_error"
    GATEWAY_TIMEOUT = "gateway_timeout"
    TIMEOUT = "timeout"
    CONNECTION = "connection"


class Failure(StrEnum):
    """A request that got no (complete) answer."""

    TIMEOUT = "timeout"  # the client's deadline passed
    CONNECTION = "connection"  # refused, reset, closed early, or an unreadable answer


#: the order of outcome and cause indexes used by the recorder and :class:`StatusTable`
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
CAUSES: tuple[Cause, ...] = tuple(Cause)
OK, REJECTED, BUSY, UNSENT = range(4)
NO_CAUSE = -1

#: statuses DESIGN.md names as refusals (every other 4xx is one too, see the module docstring)
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


def _indexes(outcome: Outcome, cause: Cause | None) -> tuple[int, int]:
    return OUTCOMES.index(outcome), NO_CAUSE if cause is None else CAUSES.index(cause)
