"""Database faults that need nothing but SQL, so they work on any PostgreSQL a run may reach:
the reference stack's, or a system file's (``postgres: {dsn, password_env}``).

Row-lock contention on named rows of any table, terminating the application's backends, and
setting changes (read-only mode through ``default_transaction_read_only``, a statement timeout).
Settings are changed with ``ALTER SYSTEM`` + reload (``scope: server``: existing sessions follow
at once; needs a superuser or ``GRANT ALTER SYSTEM ON PARAMETER``) or ``ALTER DATABASE``
(``scope: database``: new sessions only; needs the database's owner). The value before the run
is journaled and is what every revert, and ``loadkit chaos rollback``, puts back::

    with make_fault(env, "postgres.read-only"):
        ...  # every new transaction is read-only: writes fail with SQLSTATE 25006
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import asyncpg

from loadkit.chaos.faults.base import (
    REQUIRED,
    ChaosEnv,
    Fault,
    FaultType,
    Param,
    State,
    TargetKind,
    Window,
    param_float,
)
from loadkit.chaos.faults.docker import _count, how_many
from loadkit.chaos.faults.postgres import (
    _IDENT,
    SESSION_SETTINGS,
    _connect,
    _Holder,
    _Sessions,
    _table,
    app_name,
    run_sql,
    where,
)
from loadkit.errors import EnvironmentProblem
from loadkit.spec.errors import Invalid
from loadkit.spec.values import parse_choice, parse_duration, parse_int, parse_text

# -- row locks ---------------------------------------------------------------------------------


class RowLocks(_Sessions):
    """``SELECT … FOR UPDATE`` on named rows of a table, in a transaction held open: every
    statement that writes (or locks) them waits until the fault ends."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        rows = params["rows"]
        which = (
            f"{params['key']} in ({', '.join(map(str, rows))})"
            if isinstance(rows, list)
            else f"the first {rows} by {params['key']}"
        )
        return [f"rows of {params['table']} where {which}, on {where(env.dsn)}"]

    def prepare(self) -> State:
        return {"target": self.target, "application_name": app_name(self.env.tag, self.name)}

    def apply(self, state: State) -> State | None:
        table, key, rows = self.params["table"], self.params["key"], self.params["rows"]
        dsn, name = self.env.dsn, state["application_name"]
        holder: _Holder

        async def hold(stop: asyncio.Event) -> State:
            conn = await _connect(dsn, name)
            try:
                tx = conn.transaction()
                await tx.start()
                # the alias keeps ORDER BY on the column, not on its text (10 after 1, not 2)
                select = f"SELECT t.{key}::text AS k FROM {table} AS t"
                if isinstance(rows, list):
                    sql = f"{select} WHERE t.{key}::text = ANY($1::text[]) ORDER BY t.{key}"
                    found = await conn.fetch(f"{sql} FOR UPDATE", [str(r) for r in rows])
                else:
                    sql = f"{select} ORDER BY t.{key} LIMIT $1 FOR UPDATE"
                    found = await conn.fetch(sql, int(str(rows)))
                locked = [r[0] for r in found]
                holder.result = {"locked": locked, "backend_pid": conn.get_server_pid()}
                holder.signal_ready()
                await stop.wait()
                await tx.rollback()
                return holder.result
            finally:
                await conn.close(timeout=5)

        holder = self.holder = _Holder(hold)
        result = holder.start()
        if not result["locked"]:
            holder.release()
            raise EnvironmentProblem(f"postgres: no row of {table} matched {rows!r}")
        return result


def _rows(value: object) -> object:
    if isinstance(value, list):
        if not value or not all(
            isinstance(v, str | int) and not isinstance(v, bool) and str(v) for v in value
        ):
            raise Invalid(f"expected key values like [1, 2, 3] or ['A-17'], got {value}")
        return list(value)
    return parse_int(value, minimum=1, maximum=10_000)


def _column(value: object) -> str:
    return parse_text(value, pattern=rf"^{_IDENT}$", hint="a column name like 'id'")


# -- terminating backends ----------------------------------------------------------------------

#: the backends a termination may pick: the application's, never loadkit's own nor its own session
_BACKENDS = (
    "SELECT pid, usename, application_name, client_addr::text, state FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND datname = current_database() "
    "AND pid <> pg_backend_pid() AND application_name NOT LIKE 'loadkit-%' ORDER BY pid"
)


def _matching(dsn: str, params: Mapping[str, object]) -> list[Any]:
    app, user = params.get("application"), params.get("user")
    return [
        r
        for r in run_sql(dsn, _BACKENDS)
        if (app is None or fnmatch.fnmatchcase(r["application_name"] or "", str(app)))
        and (user is None or r["usename"] == user)
    ]


def _describe_backend(r: Any) -> str:
    app = r["application_name"] or "(no application_name)"
    return f"backend pid {r['pid']} ({app}, user {r['usename']}, from {r['client_addr']})"


class TerminateBackends(Fault):
    """``pg_terminate_backend`` on the application's sessions (by ``application`` glob and/or
    ``user``; never loadkit's): what a failover or a DBA's kill does to a connection pool."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        found = _matching(env.dsn, params)
        n = how_many(params["count"], len(found))
        shown = [_describe_backend(r) for r in found[:10]]
        if len(found) > 10:
            shown.append(f"… and {len(found) - 10} more")
        return [f"{n} of these backends on {where(env.dsn)} (now; chosen when injected)", *shown]

    def apply(self, state: State) -> State | None:
        found = _matching(self.env.dsn, self.params)
        chosen = found[: how_many(self.params["count"], len(found))]
        if not chosen:
            raise EnvironmentProblem(
                "postgres: no backend of the application to terminate (application "
                f"{self.params.get('application') or '*'}, user {self.params.get('user') or '*'})"
            )
        pids = [int(r["pid"]) for r in chosen]
        run_sql(self.env.dsn, "SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
        return {"terminated": [_describe_backend(r) for r in chosen]}

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        return "nothing to put back: the application opens new sessions itself"


def _glob(value: object) -> str:
    return parse_text(value)


def _terminate_check(params: Mapping[str, object]) -> list[tuple[str, str]]:
    if params.get("application") is None and params.get("user") is None:
        return [("", "name the application's sessions: give 'application' (a glob) or 'user'")]
    return []


# -- settings ----------------------------------------------------------------------------------


class Scope(StrEnum):
    SERVER = "server"  # ALTER SYSTEM + pg_reload_conf(): every session, at once
    DATABASE = "database"  # ALTER DATABASE … SET: sessions opened from now on


async def _baseline(dsn: str, setting: str, scope: str) -> str | None:
    conn = await asyncpg.connect(dsn, timeout=10, server_settings=SESSION_SETTINGS)
    try:
        if scope == Scope.SERVER:
            row = await conn.fetchrow(
                "SELECT setting FROM pg_file_settings WHERE name = $1 AND applied "
                "AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
                setting,
            )
            return None if row is None else str(row[0])
        rows = await conn.fetch(
            "SELECT unnest(setconfig) FROM pg_db_role_setting WHERE setrole = 0 AND "
            "setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        for (item,) in rows:
            name, _, value = str(item).partition("=")
            if name == setting:
                return value
        return None
    finally:
        await conn.close()


async def _put(dsn: str, setting: str, scope: str, value: str | None) -> None:
    conn = await asyncpg.connect(dsn, timeout=10, server_settings=SESSION_SETTINGS)
    try:
        literal = None if value is None else "'" + value.replace("'", "''") + "'"
        if scope == Scope.SERVER:
            action = f"RESET {setting}" if literal is None else f"SET {setting} = {literal}"
            await conn.execute(f"ALTER SYSTEM {action}")
            await conn.execute("SELECT pg_reload_conf()")
        else:
            db = await conn.fetchval("SELECT quote_ident(current_database())")
            action = f"RESET {setting}" if literal is None else f"SET {setting} = {literal}"
            await conn.execute(f"ALTER DATABASE {db} {action}")
    finally:
        await conn.close()


def _sql(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        hint = ""
        if isinstance(exc, asyncpg.InsufficientPrivilegeError):
            hint = " (scope: server needs a superuser or GRANT ALTER SYSTEM ON PARAMETER; scope: "
            hint += "database needs the database's owner)"
        raise EnvironmentProblem(f"postgres: {type(exc).__name__}: {exc}{hint}") from exc


class Setting(Fault):
    """Change one PostgreSQL setting for the fault's length; the value from before the run
    (journaled) comes back at the end."""

    setting = ""

    def value(self) -> str:
        raise NotImplementedError

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        scope = params["scope"]
        who = "every session" if scope == Scope.SERVER else "sessions opened from then on"
        return [f"{cls.setting} ({scope} scope: {who}) on {where(env.dsn)}"]

    def prepare(self) -> State:
        scope, dsn = str(self.params["scope"]), self.env.dsn
        key = f"postgres-setting:{where(dsn)}:{scope}:{self.setting}"
        before = self.env.baseline(key, lambda: _sql(_baseline(dsn, self.setting, scope)))
        return {
            "target": self.target,
            "setting": self.setting,
            "scope": scope,
            "value": self.value(),
            "baseline": before,
        }

    def apply(self, state: State) -> State | None:
        _sql(_put(self.env.dsn, state["setting"], state["scope"], state["value"]))
        return None

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        before = state.get("baseline")
        _sql(_put(env.dsn, state["setting"], state["scope"], before))
        shown = "its default" if before is None else repr(before)
        return f"{state['setting']} back to {shown} ({state['scope']} scope)"


class ReadOnly(Setting):
    """``default_transaction_read_only = on``: every write fails (SQLSTATE 25006), as on a
    replica promoted late or a database put read-only for maintenance."""

    setting = "default_transaction_read_only"

    def value(self) -> str:
        return "on"


class StatementTimeout(Setting):
    """``statement_timeout``: statements running longer are cancelled (SQLSTATE 57014)."""

    setting = "statement_timeout"

    def value(self) -> str:
        return f"{round(param_float(self.params, 'timeout') * 1000)}ms"


def _scope(value: object) -> str:
    return str(parse_choice(value, Scope, "scope"))


SCOPE = Param(
    "scope",
    _scope,
    "server",
    "server (ALTER SYSTEM: every session at once) or database (new sessions)",
    "server",
)

TYPES = (
    FaultType(
        "postgres.row-locks",
        "hold row locks on named rows of a table in an open transaction (lock contention)",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        RowLocks,
        params=(
            Param("table", _table, REQUIRED, "the table (schema.table)"),
            Param("key", _column, "id", "the column that names the rows", "id"),
            Param("rows", _rows, 1, "key values [1, 2], or N: the first N by key", "1"),
        ),
    ),
    FaultType(
        "postgres.terminate-backends",
        "pg_terminate_backend on the application's sessions (by application_name or user)",
        TargetKind.POSTGRES,
        Window.INSTANT,
        TerminateBackends,
        params=(
            Param("application", _glob, None, "application_name glob, like 'shop-*'", "-"),
            Param("user", _glob, None, "the application's database role", "-"),
            Param("count", _count, "all", "how many: N, 'all' or a share like 50%", "all"),
        ),
        check=_terminate_check,
    ),
    FaultType(
        "postgres.read-only",
        "read-only mode: default_transaction_read_only = on (writes fail); restored after",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        ReadOnly,
        params=(SCOPE,),
        slot="postgres-read-only",
    ),
    FaultType(
        "postgres.statement-timeout",
        "set statement_timeout (longer statements are cancelled); restored after",
        TargetKind.POSTGRES,
        Window.SUSTAINED,
        StatementTimeout,
        params=(
            Param("timeout", parse_duration, 0.1, "the statement timeout", "100ms", "s"),
            SCOPE,
        ),
        slot="postgres-statement-timeout",
    ),
)
