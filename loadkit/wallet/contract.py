"""The reference wallet's contract with its clients: the names and words on the wire that the
stack, the faults, the probes and capacity reports share with the wallet server.

This module imports no server code (no Starlette, uvicorn, asyncpg, prometheus_client), so a
command that only talks to a wallet (``loadkit run``, ``loadkit chaos``) never loads the server,
and works where the ``stack`` extra is not installed::

    from loadkit.wallet.contract import BusyCause, Endpoint, PolicyName
    BusyCause("db_pool_timeout").group          # 'pool wait'
    httpx.post(url + Endpoint.ADMIN_POLICY, json={"policy": PolicyName.PEAK})
"""

from __future__ import annotations

from enum import StrEnum

#: the password every seeded user shares (test users, not people)
DEFAULT_PASSWORD = "wallet-pass"

#: environment variables ``serve`` reads its secrets from (never from the command line: argv is
#: visible to every user of the machine); the stack sets them for every instance it starts
SECRET_ENV = "LOADKIT_WALLET_SECRET"
ADMIN_TOKEN_ENV = "LOADKIT_WALLET_ADMIN_TOKEN"
#: optional: the password of the database role in ``--dsn`` (a DSN on the command line would
#: show it to every local user)
DB_PASSWORD_ENV = "LOADKIT_WALLET_DB_PASSWORD"
#: optional: turns the test "SMS" outbox on (``GET /admin/otp-outbox/{challenge}``) and is the
#: token that reads it; a stack sets it for load tests, whose journeys complete OTP steps
OTP_OUTBOX_TOKEN_ENV = "LOADKIT_WALLET_OTP_OUTBOX_TOKEN"

#: the ``code`` of every busy answer (429/503 problem+json); its ``cause`` is a :class:`BusyCause`
BUSY_CODE = "WALLET_BUSY"

#: a 503 in maintenance mode carries this header with the value ``true`` (and
#: ``"maintenance": true`` in its body), so clients can tell maintenance from an outage
MAINTENANCE_HEADER = "X-Wallet-Maintenance"


class UnsafeMode(StrEnum):
    """Deliberately broken behaviours, for demonstrating and testing the integrity check.

    ``ack-before-commit``: money movements are answered 201 at once and written to the database
    later, in the background; a crash or a database error loses acknowledged movements.
    ``ignore-idempotency``: a retry with the same ``Idempotency-Key`` is applied again.
    ``misapply``: one movement in four is applied with another amount (one fen off) or to
    another payee (the next account) than the request asked for.
    Never run a real service like this.
    """

    ACK_BEFORE_COMMIT = "ack-before-commit"
    IGNORE_IDEMPOTENCY = "ignore-idempotency"
    MISAPPLY = "misapply"


class PolicyName(StrEnum):
    """The risk policies an instance can run under (``POST /admin/policy``)."""

    NORMAL = "normal"
    PEAK = "peak"  # holiday surges: OTP for smaller amounts, stricter per-user limits


class BusyCause(StrEnum):
    """Why the wallet answered "busy": the ``cause`` of a ``WALLET_BUSY`` answer and the
    ``cause`` label of its ``wallet_busy_responses_total`` metric.

    Adding a cause: a member here and its group in :data:`_GROUPS`; the server raises it, and
    capacity reports group it from here.
    """

    OVERLOADED = "overloaded"  # instance in-flight limit
    RATE_LIMITED = "rate_limited"  # instance-wide request rate limit
    USER_RATE_LIMITED = "user_rate_limited"  # per-user token bucket
    DB_POOL_TIMEOUT = "db_pool_timeout"  # no database connection free in time
    DB_UNAVAILABLE = "db_unavailable"  # database unreachable, crashed, restarting
    DB_TIMEOUT = "db_timeout"  # a query took longer than its timeout
    DB_ERROR = "db_error"  # a transient database refusal (too many connections, conflicts)
    DEADLINE = "deadline"  # the request's overall deadline passed
    MAINTENANCE = "maintenance"  # maintenance mode, set through the admin API

    @property
    def status(self) -> int:
        """The HTTP status it is answered with: 429 for rate limits, 503 otherwise."""
        return 429 if self in (BusyCause.RATE_LIMITED, BusyCause.USER_RATE_LIMITED) else 503

    @property
    def group(self) -> str:
        """Where the busy answer came from, as people ask it (capacity reports)."""
        return _GROUPS[self]


_GROUPS: dict[BusyCause, str] = {
    BusyCause.RATE_LIMITED: "throttled",
    BusyCause.USER_RATE_LIMITED: "throttled (per user)",
    BusyCause.OVERLOADED: "in-flight limit",
    BusyCause.DB_POOL_TIMEOUT: "pool wait",
    BusyCause.DB_UNAVAILABLE: "database",
    BusyCause.DB_TIMEOUT: "database",
    BusyCause.DB_ERROR: "database",
    BusyCause.DEADLINE: "deadline",
    BusyCause.MAINTENANCE: "maintenance",
}
assert set(_GROUPS) == set(BusyCause), "every BusyCause needs its group"


class Endpoint(StrEnum):
    """The routes clients outside the wallet call (the admin ones need the admin token)."""

    LOGIN = "/v1/login"
    HEALTHZ = "/healthz"
    READYZ = "/readyz"
    METRICS = "/metrics"
    ADMIN_MAINTENANCE = "/admin/maintenance"
    ADMIN_POLICY = "/admin/policy"
    ADMIN_LIMITS = "/admin/limits"
    ADMIN_STATE = "/admin/state"
    ADMIN_INVARIANTS = "/admin/invariants"
    ADMIN_ANOMALIES = "/admin/anomalies"


def user_name(index: int) -> str:
    """The username of the ``index``-th seeded user (1-based): ``user00001``."""
    return f"user{index:05d}"


def merchant_name(index: int) -> str:
    """The account name of the ``index``-th seeded merchant (1-based): ``merchant00001``."""
    return f"merchant{index:05d}"
