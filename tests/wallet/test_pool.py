"""The wallet's connection pool against a real PostgreSQL: bounded waits, no leaks."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from loadkit.stack.ports import free_port
from loadkit.wallet.pool import ConnectionPool, PoolClosed, PoolTimeout


def _pool(dsn: str, size: int = 2) -> ConnectionPool:
    return ConnectionPool(lambda: asyncpg.connect(dsn), size, connect_timeout=2)


def test_lazy_open_reuse_and_bounded_wait(pg_dsn: str) -> None:
    async def scenario() -> None:
        pool = _pool(pg_dsn)
        assert pool.size == 0
        a = await pool.acquire(1)
        b = await pool.acquire(1)
        assert pool.size == 2 and a is not b
        t0 = time.monotonic()
        with pytest.raises(PoolTimeout):
            await pool.acquire(0.2)
        assert 0.15 < time.monotonic() - t0 < 1.0
        # a waiter gets the next released connection
        waiter = asyncio.ensure_future(pool.acquire(2))
        await asyncio.sleep(0.05)
        pool.release(a)
        assert await waiter is a
        pool.release(a)
        assert await pool.acquire(1) is a  # idle connections are reused, newest first
        pool.release(a)
        pool.release(b)
        assert pool.size == 2 and pool.idle == 2 and pool.waiting == 0
        await pool.close()
        with pytest.raises(PoolClosed):
            await pool.acquire(1)

    asyncio.run(scenario())


def test_discarded_and_dead_connections_free_their_slot(pg_dsn: str) -> None:
    async def scenario() -> None:
        pool = _pool(pg_dsn)
        a = await pool.acquire(1)
        b = await pool.acquire(1)
        waiter = asyncio.ensure_future(pool.acquire(2))
        await asyncio.sleep(0.05)
        pool.release(a, discard=True)  # state unknown: terminated, a new one opens in its slot
        c = await waiter
        assert c is not a and a.is_closed() and pool.size == 2
        # the server drops a connection: it is not handed out again
        pid = b.get_server_pid()
        await c.execute(f"SELECT pg_terminate_backend({pid})")
        pool.release(b)
        await asyncio.sleep(0.1)
        d = await pool.acquire(1)
        assert d is not b and await d.fetchval("SELECT 1") == 1
        pool.release(c)
        pool.release(d)
        await pool.close()

    asyncio.run(scenario())


def test_cancelled_waiters_leak_nothing(pg_dsn: str) -> None:
    async def scenario() -> None:
        pool = _pool(pg_dsn, size=1)
        a = await pool.acquire(1)
        waiters = [asyncio.ensure_future(pool.acquire(5)) for _ in range(3)]
        await asyncio.sleep(0.05)
        pool.release(a)  # granted to the first waiter ...
        waiters[0].cancel()  # ... which is cancelled before it runs: the grant goes back
        for w in waiters[1:]:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        assert pool.size == 1 and pool.idle == 1
        assert await pool.acquire(0.1) is a
        pool.release(a)
        await pool.close()

    asyncio.run(scenario())


def test_unreachable_server_fails_fast_and_keeps_no_slot() -> None:
    async def scenario() -> None:
        pool = _pool(f"postgresql://loadkit@127.0.0.1:{free_port()}/x", size=1)
        for _ in range(2):
            t0 = time.monotonic()
            with pytest.raises(OSError):
                await pool.acquire(1)
            assert time.monotonic() - t0 < 1.0
        assert pool.size == 0

    asyncio.run(scenario())
