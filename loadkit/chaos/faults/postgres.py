"""PostgreSQL faults: crash and restart, a killed backend, connection exhaustion, lock contention
on hot accounts, slow writes.

Sessions this module opens carry ``application_name = loadkit-chaos-<tag>`` and die with the
process that holds them, so a killed controller never leaves connections or locks behind; the
restore still terminates any such session it finds. Slow queries are a statement trigger that
sleeps, named after the run: the journal records it, and a rollback drops it::

    with make_fault(env, "postgres.slow-queries", "postgres", delay="500ms"):
        ...  # every money movement of the reference wallet takes 500 ms longer
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from loadkit.chaos.faults.base import (
    ChaosEnv,
    Fault,
    FaultType,
    Param,
    State,
    TargetKind,
    Window,
    param_float,
)
from loadkit.errors import EnvironmentProblem
from loadkit.spec.errors import Invalid
from loadkit.spec.values import describe, parse_choice, parse_duration, parse_int
from loadkit.stack.postgres import StopMode

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
READY_TIMEOUT = 60.0


#: every session a fault opens overrides what a fault may have set server-wide (read-only mode, a
#: tiny statement timeout): a revert, or a lock taken meanwhile, must never be refused by them
SESSION_SETTINGS = {"default_transaction_read_only": "off", "statement_timeout": "0"}


def app_name(tag: str, fault: str = "") -> str:
    """The ``application_name`` of a fault's sessions: the run's tag and the fault's name, so a
    revert ends exactly its own sessions (PostgreSQL keeps 63 bytes of it)."""
    return f"loadkit-chaos-{tag}" + (f"-{fault}" if fault else "")[: 63 - 14 - len(tag)]


def run_sql(dsn: str, sql: str, *args: object, timeout: float = 15.0) -> list[Any]:
    """Run one statement on its own short connection; its rows."""

    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=timeout, server_settings=SESSION_SETTINGS)
        try:
            await conn.execute(f"SET lock_timeout = '{int(timeout * 1000)}ms'")
            return list(await conn.fetch(sql, *args, timeout=timeout))
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise EnvironmentProblem(f"postgres: {type(exc).__name__}: {exc}") from exc


def where(dsn: str) -> str:
    """``host:port/database`` of a DSN (no user, no password): for plans and messages."""
    parts = urlsplit(dsn)
    return f"database {parts.netloc.rpartition('@')[2]}{parts.path}"


def terminate_sessions(dsn: str, name: str) -> int:
    rows = run_sql(
        dsn,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = $1 AND pid <> pg_backend_pid()",
        name,
    )
    return int(rows[0][0]) if rows else 0


class _Holder:
    """An event loop in its own thread that opens sessions, keeps them until :meth:`release`."""

    def __init__(self, work: Callable[[asyncio.Event], Awaitable[State]]) -> None:
        self._work = work
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.result: State = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-pg-holder", daemon=True)

    def start(self, timeout: float = 60.0) -> State:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise EnvironmentProblem("postgres: opening the sessions took too long")
        if self.error is not None:
            raise EnvironmentProblem(f"postgres: {self.error}") from self.error
        return self.result

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                self.result = await self._work(self._stop)
            except BaseException as exc:  # reported to the thread that started us
                self.error = exc
                self._ready.set()

        asyncio.run(main())
        self._ready.set()

    def signal_ready(self) -> None:
        self._ready.set()

    def release(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)


class _Sessions(Fault):
    """A fault that holds database sessions for its length."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        return [f"sessions of its own on {where(env.dsn)}"]

    holder: _Holder | None = None

    def revert(self, state: State) -> str:
        if self.holder is not None:
            self.holder.release()
        return type(self).restore(self.env, state)

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        gone = terminate_sessions(env.dsn, state["application_name"])
        return f"terminated {gone} leftover session(s)" if gone else "sessions closed"


class Connections(_Sessions):
    """Open sessions until ``connections`` are held or PostgreSQL refuses more."""

    def prepare(self) -> State:
        return {"target": self.target, "application_name": app_name(self.env.tag, self.name)}

    def apply(self, state: State) -> State | None:
        want = self.params["connections"]
        leave = int(param_float(self.params, "leave"))
        dsn, name = self.env.dsn, state["application_name"]
        holder: _Holder

        async def hold(stop: asyncio.Event) -> State:
            conns: list[asyncpg.Connection] = []
            slots = await _free_slots(dsn)
            goal = max(0, slots - leave) if want == "all" else int(str(want))
            try:
                while len(conns) < goal:
                    batch = min(32, goal - len(conns))
                    opened = await asyncio.gather(
                        *(_connect(dsn, name) for _ in range(batch)), return_exceptions=True
                    )
                    conns.extend(c for c in opened if isinstance(c, asyncpg.Connection))
                    if any(not isinstance(c, asyncpg.Connection) for c in opened):
                        break  # refused: every slot is taken
                holder.result = {"held": len(conns), "free_before": slots}
                holder.signal_ready()
                await stop.wait()
                return holder.result
            finally:
                await asyncio.gather(*(c.close(timeout=5) for c in conns), return_exceptions=True)

        holder = self.holder = _Holder(hold)
        return holder.start()


class Locks(_Sessions):
    """``SELECT … FOR UPDATE`` on hot accounts in an open transaction: every payment or transfer
    touching them waits (and the wallet answers 503 ``db_timeout`` after its query timeout)."""

    def prepare(self) -> State:
        return {"target": self.target, "application_name": app_name(self.env.tag, self.name)}

    def apply(self, state: State) -> State | None:
        accounts = self.params["accounts"]
        dsn, name = self.env.dsn, state["application_name"]
        holder: _Holder

        async def hold(stop: asyncio.Event) -> State:
            conn = await _connect(dsn, name)
            try:
                tx = conn.transaction()
                await tx.start()
                if isinstance(accounts, list):
                    sql = "SELECT name FROM accounts WHERE name = ANY($1::text[]) FOR UPDATE"
                    rows = await conn.fetch(sql, accounts)
                else:
                    sql = (
                        "SELECT name FROM accounts WHERE kind = 'merchant' ORDER BY id "
                        "LIMIT $1 FOR UPDATE"
                    )
                    rows = await conn.fetch(sql, int(str(accounts)))
                holder.result = {"locked": [r["name"] for r in rows]}
                holder.signal_ready()
                await stop.wait()
                await tx.rollback()
                return holder.result
            finally:
                await conn.close(timeout=5)

        holder = self.holder = _Holder(hold)
        result = holder.start()
        if not result["locked"]:
            raise EnvironmentProblem(f"postgres: no account matched {accounts!r}")
        return result


class SlowQueries(Fault):
    """A statement trigger on ``table`` that sleeps ``delay`` before every write to it."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        return [f"every write to table {params['table']} on {where(env.dsn)}"]

    def prepare(self) -> State:
        base = f"loadkit_chaos_{self.env.tag}_{self.name}"[:55]
        ident = "".join(c if c.isalnum() else "_" for c in base).lower()
        return {"target": self.target, "table": self.params["table"], "trigger": ident}

    def apply(self, state: State) -> State | None:
        fn, table = state["trigger"] + "_fn", state["table"]
        delay = param_float(self.params, "delay")
        run_sql(
            self.env.dsn,
            f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({delay:.3f}); RETURN NULL; END $$",
        )
        run_sql(
            self.env.dsn,
            f"CREATE TRIGGER {state['trigger']} BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}()",
        )
        return None

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        trigger, table = state["trigger"], state["table"]
        run_sql(env.dsn, f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        run_sql(env.dsn, f"DROP FUNCTION IF EXISTS {trigger}_fn()")
        return f"trigger {trigger} dropped"


class Crash(Fault):
    """Immediate shutdown (SIGQUIT: no checkpoint) or SIGKILL of the postmaster; started again
    (with crash recovery) after ``duration``."""

    def prepare(self) -> State:
        pg = self.env.postgres()
        pid = pg.process.pid if pg.process else None
        return {"target": self.target, "mode": self.params["mode"], "pid": pid, "port": pg.port}

    def apply(self, state: State) -> State | None:
        pg = self.env.postgres()
        if state["mode"] == "kill":
            pg.crash()
        else:
            pg.stop(StopMode.IMMEDIATE, timeout=10)
        return None

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        pg = env.postgres()
        if pg.alive() and pg.ready():
            return "already running"
        pg.start(timeout=READY_TIMEOUT)
        return f"started again (pid {pg.process.pid if pg.process else '?'}), crash recovery done"


class KillBackend(Fault):
    """SIGKILL one client backend: the postmaster resets every session and runs crash recovery."""

    def apply(self, state: State) -> State | None:
        killed = self.env.postgres().kill_backend()
        if killed is None:
            raise EnvironmentProblem("postgres: no client backend to kill")
        return {"killed_pid": killed}

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        pg = env.postgres()
        if not pg.alive():
            pg.start(timeout=READY_TIMEOUT)
            return "started again"
        deadline = time.monotonic() + READY_TIMEOUT
        while not pg.ready():
            if time.monotonic() > deadline:
                raise EnvironmentProblem("postgres: not accepting connections after recovery")
            time.sleep(0.05)
        return "recovered"


async def _connect(dsn: str, name: str) -> asyncpg.Connection:
    settings = {**SESSION_SETTINGS, "application_name": name}
    return await asyncpg.connect(dsn, timeout=10, server_settings=settings)


async def _free_slots(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        sql = (
            "SELECT current_setting('max_connections')::int - "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
        return int(await conn.fetchval(sql)) + 1  # this connection's slot is free again soon
    finally:
        await conn.close()


def _connections(value: object) -> object:
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_int(value, minimum=1, maximum=10_000)
    raise Invalid(f"expected a number of connections or 'all', got {describe(value)}")


def _accounts(value: object) -> object:
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise Invalid(f"expected account names like [merchant00001, bank], got {value}")
        return list(value)
    return parse_int(value, minimum=1, maximum=1000)


def _table(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(rf"{_IDENT}(\.{_IDENT})?", value):
        raise Invalid(f"expected a table name like 'transactions', got {describe(value)}")
    return value


class CrashMode(StrEnum):
    IMMEDIATE = "immediate"  # SIGQUIT: no checkpoint, crash recovery on the next start
    KILL = "kill"  # SIGKILL of the postmaster


def _mode(value: object) -> str:
    return str(parse_choice(value, CrashMode, "crash mode"))


TYPES = (
    FaultType(
        "postgres.crash",
        "stop PostgreSQL at once (immediate shutdown, or SIGKILL); restart with crash recovery",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        Crash,
        params=(
            Param("mode", _mode, "immediate", "immediate (SIGQUIT) or kill (SIGKILL)", "immediate"),
        ),
        slot="postgres-process",
    ),
    FaultType(
        "postgres.kill-backend",
        "SIGKILL one backend: PostgreSQL drops every session and runs crash recovery",
        TargetKind.POSTGRES,
        Window.INSTANT,
        KillBackend,
        slot="postgres-process",
    ),
    FaultType(
        "postgres.connections",
        "hold database connections so that new ones are refused (connection exhaustion)",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        Connections,
        params=(
            Param("connections", _connections, "all", "how many to hold: a number or 'all'", "all"),
            Param(
                "leave",
                lambda v: float(parse_int(v, minimum=0)),
                0.0,
                "with 'all': slots left free",
                "0",
            ),
        ),
    ),
    FaultType(
        "postgres.locks",
        "hold row locks on hot accounts in an open transaction (lock contention)",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        Locks,
        params=(
            Param(
                "accounts",
                _accounts,
                3,
                "account names, or N: the first N merchants (the hottest in checkout)",
                "3",
            ),
        ),
    ),
    FaultType(
        "postgres.slow-queries",
        "every write statement on a table sleeps 'delay' first (a statement trigger)",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        SlowQueries,
        params=(
            Param("delay", parse_duration, 0.5, "added to every write statement", "500ms", "s"),
            Param(
                "table", _table, "transactions", "the table whose writes slow down", "transactions"
            ),
        ),
    ),
)
