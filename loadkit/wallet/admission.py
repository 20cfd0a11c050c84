"""Admission control: answer "busy" fast instead of queueing until everything times out.

Three gates run before a request does any work — the instance's in-flight limit (503
``overloaded``), an instance-wide token bucket (429 ``rate_limited``, off unless set) and a token
bucket per user (429 ``user_rate_limited``) — and :func:`db_busy` names the cause when the
database is what cannot serve::

    admission = Admission(max_inflight=256)
    admission.enter()            # raises Busy when full or over the rate
    try: ...
    finally: admission.leave()
"""

from __future__ import annotations

import asyncio
import math
import time

import asyncpg

from loadkit.wallet.contract import BusyCause
from loadkit.wallet.problems import Busy

#: one token, less float rounding (0.1 s at 10/s must buy a token)
_ONE = 1.0 - 1e-9


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per request."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> float:
        """0.0 when a token was taken, else the seconds until one will be there."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= _ONE:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


def _retry_after(wait: float) -> int:
    return max(1, math.ceil(wait))


class UserRateLimiter:
    """A token bucket per account. Buckets of idle users are dropped when there are many."""

    def __init__(self, rate: float, burst: int, *, max_users: int = 200_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[int, list[float]] = {}  # account -> [tokens, stamp]
        self._max_users = max_users

    def configure(self, rate: float, burst: int) -> None:
        """New limits apply to every bucket from its next request on."""
        self.rate = rate
        self.burst = float(max(1, burst))

    def check(self, account_id: int) -> None:
        """Take one token for ``account_id``; :class:`Busy` 429 when there is none."""
        now = time.monotonic()
        bucket = self._buckets.get(account_id)
        if bucket is None:
            if len(self._buckets) >= self._max_users:
                self._prune(now)
            self._buckets[account_id] = [self.burst - 1.0, now]
            return
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= _ONE:
            bucket[0] = tokens - 1.0
            return
        bucket[0] = tokens
        wait = (1.0 - tokens) / self.rate
        raise Busy(
            BusyCause.USER_RATE_LIMITED,
            f"too many requests for this account (limit {self.rate:g}/s)",
            retry_after=_retry_after(wait),
        )

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


class Admission:
    """The instance-wide gates: in-flight limit and optional request-rate limit."""

    def __init__(self, max_inflight: int, rate_limit: float | None = None) -> None:
        self.max_inflight = max_inflight
        self.inflight = 0
        self._bucket: TokenBucket | None = None
        self.rate_limit: float | None = None
        self.rate_burst: float | None = None
        self.set_rate(rate_limit)

    def set_rate(self, rate: float | None, burst: float | None = None) -> None:
        """Limit the instance to ``rate`` requests/s (None: no limit). The burst defaults to a
        tenth of a second's worth, so the limit shows as a sharp knee under rising load."""
        if rate is None:
            self._bucket = None
            self.rate_limit = self.rate_burst = None
            return
        burst = burst if burst is not None else max(1.0, rate / 10)
        self._bucket = TokenBucket(rate, burst)
        self.rate_limit, self.rate_burst = rate, self._bucket.burst

    def enter(self) -> None:
        """Admit one request or raise :class:`Busy`; pair every successful call with leave()."""
        if self.inflight >= self.max_inflight:
            raise Busy(
                BusyCause.OVERLOADED,
                f"this instance is serving its limit of {self.max_inflight} requests",
            )
        if self._bucket is not None:
            wait = self._bucket.take(time.monotonic())
            if wait:
                raise Busy(
                    BusyCause.RATE_LIMITED,
                    f"this instance is at its rate limit of {self._bucket.rate:g} requests/s",
                    retry_after=_retry_after(wait),
                )
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1


#: database errors that mean "not reachable now" (crash, restart, recovery, lost connection)
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,  # 57P03: starting up, in recovery, shutting down
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02: another backend crashed, all were reset
    asyncpg.IdleSessionTimeoutError,
    asyncpg.InterfaceError,  # "connection is closed", ...
    # a connection the server dropped mid-protocol (e.g. the FATAL it sends when it crashes)
    asyncpg.InternalClientError,
    # class 28: a role or password the server does not accept (a misconfigured instance); every
    # request would fail the same way, and it is the database that cannot serve
    asyncpg.InvalidAuthorizationSpecificationError,
    OSError,  # refused, reset, unreachable (ConnectionError is an OSError)
    EOFError,
)

#: transient refusals from a server that is up
_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.InsufficientResourcesError,  # 53xxx, incl. too many connections
    asyncpg.TransactionRollbackError,  # 40001 serialization, 40P01 deadlock
    asyncpg.LockNotAvailableError,
    asyncpg.InvalidCachedStatementError,
    asyncpg.exceptions.OutdatedSchemaCacheError,
)


def db_busy(exc: BaseException) -> Busy | None:
    """The :class:`Busy` answer for a database failure, or None when ``exc`` is not one."""
    if isinstance(exc, asyncpg.QueryCanceledError | TimeoutError | asyncio.TimeoutError):
        return Busy(BusyCause.DB_TIMEOUT, "the database did not answer in time", retry_after=1)
    if isinstance(exc, _UNAVAILABLE):
        return Busy(
            BusyCause.DB_UNAVAILABLE,
            f"the database is unavailable ({type(exc).__name__})",
            retry_after=2,
        )
    if isinstance(exc, _TRANSIENT):
        return Busy(BusyCause.DB_ERROR, f"the database is busy ({type(exc).__name__})")
    return None
