"""The wallet's database operations, each one round trip on a pooled connection.

The pool (:mod:`loadkit.wallet.pool`) starts empty and fills on demand, so the service starts
(and reports not-ready) while PostgreSQL is down, and after a crash it reconnects on the next
request without a restart. Every wait is bounded and named: waiting for a free connection by
``pool_timeout`` (503 ``db_pool_timeout``), opening one by ``connect_timeout``
(``db_unavailable``), each query by ``query_timeout`` (``db_timeout``)::

    ledger = Ledger(config, metrics)
    await ledger.start()
    result = await ledger.move(key, caller, request_hash, "transfer", caller, 42, 500, None, None)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from loadkit.wallet.admission import db_busy
from loadkit.wallet.config import BIGINT_MAX, WalletConfig
from loadkit.wallet.contract import BusyCause, UnsafeMode
from loadkit.wallet.metrics import WalletMetrics
from loadkit.wallet.pool import ConnectionPool, ConnectTimeout, PoolClosed, PoolTimeout
from loadkit.wallet.problems import Busy
from loadkit.wallet.schema import init_connection, seed_connection

log = logging.getLogger("loadkit.wallet")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a login needs to know about a user: its account, password hash, failed logins in the
    current window, and the seconds it stays locked (0: not locked)."""

    account_id: int
    password_hash: str | None
    failures: int
    locked_for: int


_MOVE_SQL = "SELECT wallet_move($1, $2, $3, $4, $5, $6, $7, $8, $9)"
#: the ``ignore-idempotency`` unsafe mode: the key's stored answer is forgotten first
_MOVE_IGNORING_KEY_SQL = "SELECT wallet_move_ignoring_key($1, $2, $3, $4, $5, $6, $7, $8, $9)"
#: applied movements by key: transactions made by the callers' requests (not the seeding)
_MOVEMENTS_SQL = """
SELECT idempotency_key AS key, account_id, count(*) AS count, min(id) AS first_id,
       max(id) AS last_id, extract(epoch FROM min(created_at))::float8 AS first_at
FROM transactions
WHERE created_at >= to_timestamp($1)
GROUP BY account_id, idempotency_key
HAVING min(id) > $2
ORDER BY min(id)
LIMIT $3
"""
_CREDENTIALS_SQL = """
SELECT a.id, a.password_hash, coalesce(f.failures, 0) AS failures,
       greatest(0, ceil(extract(epoch FROM f.locked_until - now())))::integer AS locked_for
FROM accounts a LEFT JOIN login_failures f ON f.account_id = a.id
WHERE a.name = $1 AND a.kind = 'user'
"""
_OUTBOX_SQL = """
SELECT id, account_id, ceil(extract(epoch FROM expires_at - now()))::integer AS expires_in
FROM otp_challenges
WHERE id = $1 AND expires_at > now() AND failures < $2
"""
_HISTORY_SQL = """
SELECT t.id, t.kind, t.from_account, t.to_account, t.amount, e.delta, t.memo, t.order_id,
       t.created_at
FROM ledger_entries e JOIN transactions t ON t.id = e.transaction_id
WHERE e.account_id = $1 AND e.transaction_id < $2
ORDER BY e.transaction_id DESC
LIMIT $3
"""


class Ledger:
    """Database access for one instance: a lazily filled pool and a readiness probe."""

    def __init__(self, config: WalletConfig, metrics: WalletMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self._pool = ConnectionPool(
            self._connect, config.pool_size, connect_timeout=config.connect_timeout
        )
        self._bank_id: int | None = None
        self._move_sql = (
            _MOVE_IGNORING_KEY_SQL if config.unsafe is UnsafeMode.IGNORE_IDEMPOTENCY else _MOVE_SQL
        )
        self._degraded = False  # in a database outage (logged when it starts and ends)
        self._probe: asyncpg.Connection | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._server_settings = {
            "application_name": config.name[:60],
            "jit": "off",
            # the server gives up on its own if the client's cancel was lost with the connection
            "statement_timeout": str(int((config.query_timeout + 1.0) * 1000)),
            "idle_in_transaction_session_timeout": "10000",
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self.config.dsn,
            password=self.config.db_password,
            timeout=self.config.connect_timeout,
            server_settings=self._server_settings,
        )
        try:
            await init_connection(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def warm_up(self, connections: int) -> None:
        """Open up to ``connections`` connections now, so the first burst does not pay for
        connecting. Failures are ignored: the database may not be up yet."""

        async def one() -> None:
            with contextlib.suppress(Exception):
                conn = await self._acquire(self.config.connect_timeout + 1.0)
                await asyncio.sleep(0.05)  # hold it, so that the others open new ones
                self._pool.release(conn)

        await asyncio.gather(*(one() for _ in range(min(connections, self.config.pool_size))))

    async def close(self) -> None:
        """Close every connection (terminating those that do not close within 2 s)."""
        if self._probe is not None:
            self._probe.terminate()
            self._probe = None
        await self._pool.close(2.0)

    def pool_stats(self) -> dict[str, int]:
        pool = self._pool
        return {
            "size": pool.size,
            "idle": pool.idle,
            "in_use": pool.size - pool.idle,
            "waiting": pool.waiting,
            "max": pool.max_size,
        }

    # -- connections ----------------------------------------------------------------------------

    async def _acquire(self, timeout: float) -> asyncpg.Connection:
        start = time.perf_counter()
        try:
            return await self._pool.acquire(timeout)
        except PoolTimeout:
            raise Busy(
                BusyCause.DB_POOL_TIMEOUT,
                f"no database connection became free within {timeout:g}s",
            ) from None
        except (ConnectTimeout, PoolClosed) as exc:
            raise Busy(BusyCause.DB_UNAVAILABLE, str(exc), retry_after=2) from None
        finally:
            self.metrics.pool_wait.observe(time.perf_counter() - start)

    def _release(self, conn: asyncpg.Connection, failed: BaseException | None = None) -> None:
        # after a timeout, a cancellation or a broken connection its state is unknown; an error
        # the server reported leaves it usable
        self._pool.release(
            conn, discard=failed is not None and not isinstance(failed, asyncpg.PostgresError)
        )

    async def _fetch(self, sql: str, *args: Any, single: bool = False) -> Any:
        try:
            conn = await self._acquire(self.config.pool_timeout)
        except Exception as exc:
            self._trouble(exc)
            raise
        try:
            async with asyncio.timeout(self.config.query_timeout):
                if single:
                    value = await conn.fetchval(sql, *args)
                else:
                    value = await conn.fetch(sql, *args)
        except TimeoutError as exc:
            self._release(conn, exc)
            busy = Busy(
                BusyCause.DB_TIMEOUT,
                f"the database did not answer within {self.config.query_timeout:g}s",
            )
            self._trouble(busy)
            raise busy from None
        except BaseException as exc:
            self._release(conn, exc)
            self._trouble(exc)
            raise
        self._release(conn)
        if self._degraded:
            self._degraded = False
            log.warning("the database answers again")
        return value

    def _trouble(self, exc: BaseException) -> None:
        """Log the start of a database outage once, not once per failed request."""
        if self._degraded:
            return
        if isinstance(exc, Busy) or db_busy(exc) is not None:
            self._degraded = True
            log.warning("database trouble, answering busy: %s: %s", type(exc).__name__, exc)

    # -- public operations ----------------------------------------------------------------------

    async def user_credentials(self, name: str) -> Credentials | None:
        """The login facts of the user called ``name``, or None."""
        rows = await self._fetch(_CREDENTIALS_SQL, name)
        if not rows:
            return None
        row = rows[0]
        return Credentials(row["id"], row["password_hash"], row["failures"], row["locked_for"])

    async def login_failed(self, account_id: int) -> int:
        """Count a failed login; the seconds the account is now locked for (0: not locked)."""
        c = self.config
        result: dict[str, Any] = await self._fetch(
            "SELECT wallet_login_failed($1, $2, $3, $4)",
            account_id,
            c.login_max_failures,
            c.login_window,
            c.login_lock,
            single=True,
        )
        return int(result["locked_for"])

    async def login_succeeded(self, account_id: int) -> None:
        """Forget the failures of an account that logged in (called only when it had some)."""
        await self._fetch(
            "DELETE FROM login_failures WHERE account_id = $1 "
            "AND (locked_until IS NULL OR locked_until <= now())",
            account_id,
        )

    async def balance(self, account_id: int) -> int | None:
        value = await self._fetch(
            "SELECT balance FROM accounts WHERE id = $1", account_id, single=True
        )
        return None if value is None else int(value)

    async def lookup(self, name: str) -> tuple[int, str] | None:
        """``(account id, kind)`` of the user or merchant called ``name``, or None."""
        rows = await self._fetch(
            "SELECT id, kind FROM accounts WHERE name = $1 AND kind <> 'external'", name
        )
        return (rows[0]["id"], rows[0]["kind"]) if rows else None

    async def bank_id(self) -> int:
        """The id of the ``bank`` account (accounts are never deleted, so it is cached)."""
        if self._bank_id is None:
            value = await self._fetch(
                "SELECT id FROM accounts WHERE name = 'bank' AND kind = 'external'", single=True
            )
            if value is None:
                raise RuntimeError("the bank account is missing: run `loadkit.wallet migrate`")
            self._bank_id = int(value)
        return self._bank_id

    async def move(
        self,
        key: str,
        account_id: int,
        request_hash: str,
        kind: str,
        from_account: int,
        to_account: int,
        amount: int,
        memo: str | None,
        order_id: str | None,
    ) -> dict[str, Any]:
        """Apply one money movement through ``wallet_move`` (see schema.sql for the result).

        A unique violation means a concurrent request with the same key won the race and
        nothing of this one was applied; calling again finds its stored answer."""
        args = (key, account_id, request_hash, kind, from_account, to_account, amount, memo)
        sql = self._move_sql
        try:
            result: dict[str, Any] = await self._fetch(sql, *args, order_id, single=True)
        except asyncpg.UniqueViolationError:
            result = await self._fetch(sql, *args, order_id, single=True)
        return result

    async def refuse(
        self, key: str, account_id: int, request_hash: str, status: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a policy refusal under the key (or get the key's earlier answer); the result
        has the shape of :meth:`move`'s."""
        result: dict[str, Any] = await self._fetch(
            "SELECT wallet_refuse($1, $2, $3, $4, $5)",
            key,
            account_id,
            request_hash,
            status,
            body,
            single=True,
        )
        return result

    async def otp_challenge(
        self, key: str, account_id: int, request_hash: str, challenge: str, code_mac: str, ttl: int
    ) -> dict[str, Any]:
        """The request's open OTP challenge (``challenge`` when there is none yet), or the key's
        stored answer (see ``wallet_otp_challenge`` in schema.sql)."""
        result: dict[str, Any] = await self._fetch(
            "SELECT wallet_otp_challenge($1, $2, $3, $4, $5, $6)",
            key,
            account_id,
            request_hash,
            challenge,
            code_mac,
            ttl,
            single=True,
        )
        return result

    async def otp_verify(
        self, key: str, account_id: int, request_hash: str, code_mac: str, max_failures: int
    ) -> dict[str, Any]:
        """Check a submitted code against the request's open challenge, counting a wrong one
        (see ``wallet_otp_verify`` in schema.sql)."""
        result: dict[str, Any] = await self._fetch(
            "SELECT wallet_otp_verify($1, $2, $3, $4, $5)",
            key,
            account_id,
            request_hash,
            code_mac,
            max_failures,
            single=True,
        )
        return result

    async def otp_outbox(self, challenge: str, max_failures: int) -> tuple[int, int] | None:
        """``(account id, seconds left)`` of an open challenge, or None."""
        rows = await self._fetch(_OUTBOX_SQL, challenge, max_failures)
        return (rows[0]["account_id"], rows[0]["expires_in"]) if rows else None

    async def history(
        self, account_id: int, before: int | None, limit: int
    ) -> Sequence[asyncpg.Record]:
        """Up to ``limit`` transactions touching ``account_id``, newest first."""
        rows: Sequence[asyncpg.Record] = await self._fetch(
            _HISTORY_SQL, account_id, BIGINT_MAX if before is None else before, limit
        )
        return rows

    # -- admin operations -----------------------------------------------------------------------

    async def account(self, account_id: int) -> dict[str, Any] | None:
        rows = await self._fetch(
            "SELECT id, kind, name, balance, created_at FROM accounts WHERE id = $1", account_id
        )
        if not rows:
            return None
        row = rows[0]
        return {
            "account_id": row["id"],
            "kind": row["kind"],
            "name": row["name"],
            "balance": row["balance"],
            "created_at": row["created_at"],
        }

    async def invariants(self) -> dict[str, Any]:
        """The ledger's invariants in one consistent snapshot."""
        conn = await self._acquire(max(self.config.pool_timeout, 5.0))
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SET LOCAL statement_timeout = 0")
                result: dict[str, Any] = await conn.fetchval("SELECT wallet_invariants()")
        except BaseException as exc:
            self._release(conn, exc)
            raise
        self._release(conn)
        return result

    async def movements(self, since: float, after_id: int, limit: int) -> list[dict[str, Any]]:
        """Applied movements grouped by ``(account, idempotency key)``: how often each was
        applied, created at or after Unix time ``since``; paged by ``after_id`` (the last
        ``first_id`` of the previous page). Seeding top-ups carry ``seed:`` keys."""
        conn = await self._acquire(max(self.config.pool_timeout, 5.0))
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SET LOCAL statement_timeout = 0")
                rows = await conn.fetch(_MOVEMENTS_SQL, since, after_id, limit)
        except BaseException as exc:
            self._release(conn, exc)
            raise
        self._release(conn)
        return [dict(r) for r in rows]

    async def seed(self, users: int, merchants: int, balance: int, password: str) -> dict[str, Any]:
        conn = await self._acquire(max(self.config.pool_timeout, 5.0))
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL statement_timeout = 0")
                counts = await seed_connection(conn, users, merchants, balance, password=password)
        except BaseException as exc:
            self._release(conn, exc)
            raise
        self._release(conn)
        return counts

    # -- readiness ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """``SELECT 1`` on a dedicated connection (so a saturated pool does not read as a dead
        database); raises when the database does not answer within ``ready_timeout``. Callers
        arriving while a probe runs share it."""
        task = self._probe_task
        if task is None or task.done():
            task = self._probe_task = asyncio.ensure_future(self._ping())
            # a probe that fails after its callers gave up must not log "never retrieved"
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.wait_for(asyncio.shield(task), self.config.ready_timeout + 0.5)

    async def _ping(self) -> None:
        try:
            async with asyncio.timeout(self.config.ready_timeout):
                if self._probe is None or self._probe.is_closed():
                    self._probe = await asyncpg.connect(
                        self.config.dsn,
                        password=self.config.db_password,
                        timeout=self.config.connect_timeout,
                        server_settings=self._server_settings,
                    )
                await self._probe.fetchval("SELECT 1")
        except BaseException:
            if self._probe is not None:
                self._probe.terminate()
                self._probe = None
            raise
