"""SQL-only faults on a PostgreSQL loadkit did not start, as a system file names it (a DSN without
its password, the password from the environment): row locks, terminated backends, read-only
mode and statement timeouts, each back to the value from before the run — also from the journal
alone, as ``loadkit chaos rollback`` does it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from loadkit.chaos.catalog import make_fault
from loadkit.chaos.env import SystemEnv
from loadkit.chaos.faults import sql
from loadkit.chaos.faults.postgres import run_sql
from loadkit.stack.system import Service, System
from loadkit.stack.system_chaos import PostgresSection

PW_ENV = "LK_TEST_SHOP_PG_PASSWORD"


@pytest.fixture
def env(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SystemEnv]:
    """A shop database on the session's server, named the way a system file names it."""
    parts = urlsplit(pg_dsn)
    monkeypatch.setenv(PW_ENV, parts.password or "")
    bare = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}"))
    run_sql(pg_dsn, "CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)")
    run_sql(pg_dsn, "INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 20) g")
    system = System(
        name="shop",
        services=(Service("shop", ("http://127.0.0.1:1",)),),
        postgres=PostgresSection(bare, PW_ENV),
        source="shop.yaml",
    )
    with SystemEnv(system, tag=f"t{uuid.uuid4().hex[:6]}") as e:
        yield e
    # whatever a failed test left: the server is shared by the session
    run_sql(pg_dsn, "ALTER SYSTEM RESET ALL")
    run_sql(pg_dsn, "SELECT pg_reload_conf()")


async def _session(dsn: str, app: str = "shop-api") -> asyncpg.Connection:
    return await asyncpg.connect(dsn, server_settings={"application_name": app})


def _try(dsn: str, statement: str, *, lock_timeout: str = "300ms") -> str:
    """Run one statement on a fresh session: 'ok' or the error's class name."""

    async def go() -> str:
        conn = await _session(dsn)
        try:
            await conn.execute(f"SET lock_timeout = '{lock_timeout}'")
            await conn.execute(statement)
            return "ok"
        except asyncpg.PostgresError as exc:
            return type(exc).__name__
        finally:
            await conn.close()

    return asyncio.run(go())


def _chaos_sessions(dsn: str) -> int:
    rows = run_sql(
        dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'loadkit-chaos-%'"
    )
    return int(rows[0][0])


def test_row_locks_on_named_rows(env: SystemEnv) -> None:
    dsn = env.dsn
    fault = make_fault(env, "postgres.row-locks", table="orders", rows=[1, 2])
    assert fault.targets(env, "postgres", fault.params) == [
        f"rows of orders where id in (1, 2), on database {urlsplit(dsn).hostname}:"
        f"{urlsplit(dsn).port}{urlsplit(dsn).path}"
    ]
    with fault:
        assert fault.state["locked"] == ["1", "2"]
        assert (
            _try(dsn, "UPDATE orders SET status = 'paid' WHERE id = 1") == "LockNotAvailableError"
        )
        assert _try(dsn, "UPDATE orders SET status = 'paid' WHERE id = 5") == "ok"
        assert _chaos_sessions(dsn) == 1
    assert _try(dsn, "UPDATE orders SET status = 'paid' WHERE id = 1") == "ok"
    assert _chaos_sessions(dsn) == 0
    with make_fault(env, "postgres.row-locks", table="orders", rows=3) as first_three:
        assert first_three.state["locked"] == ["1", "2", "3"]


def test_terminate_only_the_applications_backends(env: SystemEnv) -> None:
    dsn = env.dsn

    async def open_sessions() -> list[asyncpg.Connection]:
        return [
            await _session(dsn, "shop-api-1"),
            await _session(dsn, "shop-api-2"),
            await _session(dsn, "reporting"),
        ]

    loop = asyncio.new_event_loop()
    try:
        conns = loop.run_until_complete(open_sessions())
        fault = make_fault(env, "postgres.terminate-backends", application="shop-api-*")
        shown = fault.targets(env, "postgres", fault.params)
        assert shown[0].startswith("2 of these backends") and len(shown) == 3
        with fault:
            assert len(fault.state["terminated"]) == 2

        async def alive(c: asyncpg.Connection) -> bool:
            try:
                await c.fetchval("SELECT 1")
                return True
            except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
                return False

        assert [loop.run_until_complete(alive(c)) for c in conns] == [False, False, True]
        for c in conns:
            loop.run_until_complete(c.close(timeout=2))
    finally:
        loop.close()


def _setting(dsn: str, name: str) -> Any:
    """The setting as a new session of the application sees it (run_sql's sessions override
    read-only mode and statement timeouts on purpose)."""

    async def go() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(f"SHOW {name}")
        finally:
            await conn.close()

    return asyncio.run(go())


def _auto_conf(dsn: str) -> list[str]:
    rows = run_sql(
        dsn, "SELECT name FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'"
    )
    return [r[0] for r in rows]


def test_read_only_mode_reaches_open_sessions_and_comes_back(env: SystemEnv) -> None:
    dsn = env.dsn
    loop = asyncio.new_event_loop()
    try:
        pooled = loop.run_until_complete(_session(dsn))  # a pool's connection, opened before
        with make_fault(env, "postgres.read-only"):
            assert _try(dsn, "UPDATE orders SET status = 'x' WHERE id = 3") == (
                "ReadOnlySQLTransactionError"
            )
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                loop.run_until_complete(pooled.execute("UPDATE orders SET status = 'x'"))
            assert _auto_conf(dsn) == ["default_transaction_read_only"]
        assert _try(dsn, "UPDATE orders SET status = 'x' WHERE id = 3") == "ok"
        loop.run_until_complete(pooled.execute("UPDATE orders SET status = 'y'"))
        assert _auto_conf(dsn) == []
        loop.run_until_complete(pooled.close())
    finally:
        loop.close()


def test_a_statement_timeout_and_the_baseline_it_restores(env: SystemEnv) -> None:
    dsn = env.dsn
    with make_fault(env, "postgres.statement-timeout", timeout="100ms"):
        assert _try(dsn, "SELECT pg_sleep(0.5)") == "QueryCanceledError"
    assert _try(dsn, "SELECT pg_sleep(0.2)") == "ok"
    # a database with its own setting gets exactly that back (scope: database)
    db = urlsplit(dsn).path.strip("/")
    run_sql(dsn, f"ALTER DATABASE \"{db}\" SET statement_timeout = '7s'")
    with make_fault(env, "postgres.statement-timeout", timeout="50ms", scope="database"):
        assert _try(dsn, "SELECT pg_sleep(0.2)") == "QueryCanceledError"
    assert _setting(dsn, "statement_timeout") == "7s"


def test_rollback_from_the_journal_puts_back_the_baseline(env: SystemEnv) -> None:
    """The controller died after injecting; a second fault on the same setting read it as
    injected. Both restores (newest first, as a rollback runs them) end at the baseline."""
    dsn = env.dsn
    first = make_fault(env, "postgres.read-only", name="ro-1")
    first.state = first.prepare()
    first.apply(first.state)  # its controller "dies" here: no revert
    second = make_fault(env, "postgres.read-only", name="ro-2")
    second.state = second.prepare()
    assert second.state["baseline"] is None  # the run's baseline, not the injected "on"
    second.apply(second.state)
    assert sql.ReadOnly.restore(env, dict(second.state)).startswith(
        "default_transaction_read_only back to its default"
    )
    assert _setting(dsn, "default_transaction_read_only") == "off"
    sql.ReadOnly.restore(env, dict(first.state))  # idempotent
    assert _setting(dsn, "default_transaction_read_only") == "off" and _auto_conf(dsn) == []
