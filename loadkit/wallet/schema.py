"""The wallet's database: create or upgrade the schema, seed test accounts.

The DDL and the PL/pgSQL money functions live in ``schema.sql`` beside this module; this module
runs them. Migrating takes an owner of the schema; the service itself needs far less, and
``grant_to`` gives a login role exactly that (:data:`APP_GRANTS`: rows of the wallet's tables,
no DDL, no other tables, nothing a superuser has). The synchronous wrappers are what the stack
calls in-process::

    migrate("postgresql://loadkit:pw@127.0.0.1:6001/wallet", grant_to="wallet_app")
    seed("postgresql://loadkit:pw@127.0.0.1:6001/wallet", users=100, merchants=10,
         balance=1_000_000)
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import Any

import asyncpg
import orjson

from loadkit.wallet.auth import hash_password
from loadkit.wallet.contract import DEFAULT_PASSWORD, merchant_name, user_name

#: seeding creates at most this many accounts of each kind per call
MAX_SEED_ACCOUNTS = 1_000_000

#: what the service's own database role may do, table by table (see :func:`grant_connection`).
#: DELETE on idempotency_keys is for ``--unsafe ignore-idempotency`` only; on otp_challenges and
#: login_failures it is their housekeeping.
APP_GRANTS: dict[str, tuple[str, ...]] = {
    "wallet_meta": ("SELECT",),
    "accounts": ("SELECT", "INSERT", "UPDATE"),
    "transactions": ("SELECT", "INSERT"),
    "ledger_entries": ("SELECT", "INSERT"),
    "idempotency_keys": ("SELECT", "INSERT", "DELETE"),
    "otp_challenges": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "login_failures": ("SELECT", "INSERT", "UPDATE", "DELETE"),
}
_ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def schema_sql() -> str:
    """The text of ``schema.sql`` (shipped as package data)."""
    return resources.files("loadkit.wallet").joinpath("schema.sql").read_text(encoding="utf-8")


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: decode and encode jsonb with orjson."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_json, decoder=orjson.loads, format="text"
    )


def grant_sql(role: str) -> str:
    """The statements that give ``role`` what the service needs (and revoke the rest)."""
    if not _ROLE_RE.fullmatch(role):
        raise ValueError(f"not a plain role name: {role!r}")
    tables = ", ".join(APP_GRANTS)
    lines = [
        f"REVOKE ALL ON {tables} FROM {role};",
        f"GRANT USAGE ON SCHEMA public TO {role};",
        *(
            f"GRANT {', '.join(rights)} ON {table} TO {role};"
            for table, rights in APP_GRANTS.items()
        ),
        f"GRANT USAGE ON SEQUENCE accounts_id_seq, transactions_id_seq TO {role};",
    ]
    return "\n".join(lines)


async def migrate_connection(conn: asyncpg.Connection, *, grant_to: str | None = None) -> None:
    """Create or upgrade the schema on ``conn``, once even when several processes race; with
    ``grant_to``, give that role the service's rights on it."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('loadkit.wallet.migrate'))")
        await conn.execute(schema_sql())
        if grant_to is not None:
            await conn.execute(grant_sql(grant_to))


async def seed_connection(
    conn: asyncpg.Connection,
    users: int,
    merchants: int,
    balance: int,
    *,
    password: str = DEFAULT_PASSWORD,
) -> dict[str, Any]:
    """Create the missing ``user00001``… and ``merchant00001``… accounts and fund each new user
    with ``balance`` fen from the bank, through ledger transactions. Idempotent."""
    for name, value in (("users", users), ("merchants", merchants)):
        if not 0 <= value <= MAX_SEED_ACCOUNTS:
            raise ValueError(f"{name} must be between 0 and {MAX_SEED_ACCOUNTS}, got {value}")
    if balance < 0:
        raise ValueError(f"balance must not be negative, got {balance}")
    user_names = [user_name(i) for i in range(1, users + 1)]
    merchant_names = [merchant_name(i) for i in range(1, merchants + 1)]
    password_hash = hash_password(password)
    result = await conn.fetchval(
        "SELECT wallet_seed($1, $2, $3, $4)::text",
        user_names,
        merchant_names,
        password_hash,
        balance,
    )
    counts: dict[str, Any] = orjson.loads(result)
    return counts


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10, server_settings={"application_name": "wallet"})


async def migrate_async(dsn: str, *, grant_to: str | None = None) -> None:
    conn = await _connect(dsn)
    try:
        await migrate_connection(conn, grant_to=grant_to)
    finally:
        await conn.close()


async def seed_async(
    dsn: str, users: int, merchants: int, balance: int, *, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    conn = await _connect(dsn)
    try:
        return await seed_connection(conn, users, merchants, balance, password=password)
    finally:
        await conn.close()


def migrate(dsn: str, *, grant_to: str | None = None) -> None:
    """Create or upgrade the wallet schema in the database at ``dsn`` (idempotent); with
    ``grant_to``, give that (existing) role the service's rights on it."""
    if grant_to is not None:
        grant_sql(grant_to)  # a bad name is a ValueError before anything connects
    asyncio.run(migrate_async(dsn, grant_to=grant_to))


def seed(
    dsn: str, users: int, merchants: int, balance: int, *, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    """Seed test accounts (see :func:`seed_connection`); returns the counts."""
    return asyncio.run(seed_async(dsn, users, merchants, balance, password=password))
