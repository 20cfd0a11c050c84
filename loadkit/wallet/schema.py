"""The wallet's database: create or upgrade the schema, seed test accounts.

The DDL and the PL/pgSQL money functions live in ``schema.sql`` beside this module; this module
runs them. The synchronous wrappers are what the stack calls in-process::

    migrate("postgresql://loadkit@127.0.0.1:6001/wallet")
    seed("postgresql://loadkit@127.0.0.1:6001/wallet", users=100, merchants=10, balance=1_000_000)
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

import asyncpg
import orjson

from loadkit.wallet.auth import hash_password
from loadkit.wallet.contract import DEFAULT_PASSWORD, merchant_name, user_name

#: seeding creates at most this many accounts of each kind per call
MAX_SEED_ACCOUNTS = 1_000_000


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


async def migrate_connection(conn: asyncpg.Connection) -> None:
    """Create or upgrade the schema on ``conn``, once even when several processes race."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('loadkit.wallet.migrate'))")
        await conn.execute(schema_sql())


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


async def migrate_async(dsn: str) -> None:
    conn = await _connect(dsn)
    try:
        await migrate_connection(conn)
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


def migrate(dsn: str) -> None:
    """Create or upgrade the wallet schema in the database at ``dsn`` (idempotent)."""
    asyncio.run(migrate_async(dsn))


def seed(
    dsn: str, users: int, merchants: int, balance: int, *, password: str = DEFAULT_PASSWORD
) -> dict[str, Any]:
    """Seed test accounts (see :func:`seed_connection`); returns the counts."""
    return asyncio.run(seed_async(dsn, users, merchants, balance, password=password))
