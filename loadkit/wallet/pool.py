"""A small asyncpg connection pool built for failure: bounded waits, no blocking cleanup.

asyncpg's own pool resets connections on release and waits for query cancellation there — both
round trips to a server that may be the thing that is failing — and costs a task or two per
acquire. The wallet needs less and needs it strictly: acquiring waits at most ``timeout`` and
raises :class:`PoolTimeout`; opening a connection waits at most the connect timeout and raises
:class:`ConnectTimeout`; a connection that is closed (the server crashed) is dropped when it is
next seen; a connection whose state is unknown (timed out, cancelled) is terminated, never reused.
The pool starts empty and opens connections on demand, so it works from the first request after
the database comes back::

    pool = ConnectionPool(connect, max_size=20)
    conn = await pool.acquire(timeout=0.5)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        pool.release(conn)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg


class PoolTimeout(Exception):
    """No connection became free in time."""


class ConnectTimeout(Exception):
    """Opening a new connection took longer than the connect timeout (the server is stalled)."""


class PoolClosed(Exception):
    """The pool was closed (the instance is shutting down)."""


#: what a waiter receives: a connection, or None meaning "a slot is yours: open one"
_Grant = asyncpg.Connection | None


class ConnectionPool:
    """At most ``max_size`` connections, opened by ``connect`` when needed."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        max_size: int,
        *,
        connect_timeout: float,
    ) -> None:
        self._connect = connect
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._idle: list[asyncpg.Connection] = []  # LIFO: hot connections stay hot
        self._all: set[asyncpg.Connection] = set()
        self._size = 0  # open or being opened
        self._waiters: deque[asyncio.Future[_Grant]] = deque()
        self._closed = False

    # -- stats ----------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    # -- acquire / release ----------------------------------------------------------------------

    async def acquire(self, timeout: float) -> asyncpg.Connection:
        """A connection: an idle one, a new one, or the next one released within ``timeout``."""
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.is_closed():
                return conn
            self._forget(conn)
        if self._size < self.max_size:
            self._size += 1
            return await self._open()

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Grant] = loop.create_future()
        self._waiters.append(waiter)
        expiry = loop.call_later(timeout, _expire, waiter)
        try:
            grant = await waiter
        except BaseException:
            # cancelled after being granted something: give it back, do not leak it
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                granted = waiter.result()
                if granted is None:
                    self._size -= 1
                    self._grant_slot()
                else:
                    self.release(granted)
            raise
        finally:
            expiry.cancel()
        if grant is None:  # a slot freed up: open a connection in it
            return await self._open()
        return grant

    def release(self, conn: asyncpg.Connection, *, discard: bool = False) -> None:
        """Give ``conn`` back. ``discard``: its state is unknown, terminate it instead."""
        if discard or self._closed or conn.is_closed():
            if not conn.is_closed():
                conn.terminate()
            self._forget(conn)
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def _open(self) -> asyncpg.Connection:
        """Open a connection in a slot already counted in ``_size``."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                conn = await self._connect()
        except TimeoutError:
            self._size -= 1
            self._grant_slot()
            raise ConnectTimeout(
                f"the database did not accept a connection within {self.connect_timeout:g}s"
            ) from None
        except BaseException:
            self._size -= 1
            self._grant_slot()
            raise
        if self._closed:
            conn.terminate()
            self._size -= 1
            raise PoolClosed("the connection pool is closed")
        self._all.add(conn)
        return conn

    def _forget(self, conn: asyncpg.Connection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            self._size -= 1
            self._grant_slot()

    def _grant_slot(self) -> None:
        """A slot became free: let the first waiter open a connection in it."""
        while self._waiters and self._size < self.max_size:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._size += 1
                waiter.set_result(None)
                return

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self, timeout: float = 2.0) -> None:
        """Close idle connections politely (within ``timeout``), terminate the rest."""
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool is closed"))
        self._waiters.clear()
        idle, self._idle = self._idle, []
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)
        for conn in list(self._all):
            if not conn.is_closed():
                conn.terminate()
        self._all.clear()
        self._size = 0


def _expire(waiter: asyncio.Future[_Grant]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout())
