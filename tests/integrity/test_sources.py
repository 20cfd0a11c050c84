"""The reference ledger's read (keys split in SQL, rows packed as bytea) against a real
PostgreSQL: it must name the same keys and details as the transactions table holds."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from loadkit.integrity import Ack, Applied, View, compare
from loadkit.integrity.sources import read_reference
from loadkit.wallet.schema import migrate_connection
from tests.integrity.reference import compare_reference

KEYS = [
    "lk-3f2a9c1b-0-1",
    "lk-3f2a9c1b-0-17",
    "lk-3f2a9c1b-1-17",
    "lk-3f2a9c1b-0-017",
    "lk-3f2a9c1b-0-0",
    "lk-3f2a9c1b-0-1234567890",
    "lk-3f2a9c1b-0-999999999",
    "0",
    "07",
    "abc",
    "9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b23",
    "ключ-5",
    "seed:1",
]


def test_the_reference_read_gives_the_per_row_result(pg_dsn: str) -> None:
    async def run() -> tuple[Any, list[Applied]]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await migrate_connection(conn)
            for i, key in enumerate(KEYS * 2):  # every key applied twice: duplicates
                await conn.execute(
                    "INSERT INTO transactions (kind, idempotency_key, account_id, from_account,"
                    " to_account, amount) VALUES ('transfer', $1, 1, $2, $3, $4)",
                    key,
                    i % 3,
                    10 + i % 2,
                    100 + i,
                )
            table, _facts = await read_reference(conn, 0.0)
            rows = await conn.fetch(
                "SELECT idempotency_key, amount, from_account, to_account FROM transactions"
                " WHERE idempotency_key NOT LIKE 'seed:%' ORDER BY id"
            )
        finally:
            await conn.close()
        return table, [Applied(r[0], 1, r[1], r[2], r[3]) for r in rows]

    table, applied = asyncio.run(run())
    assert len(table) == len(applied) == 24
    acks = [Ack(k, View.ACKNOWLEDGED, amount=100 + i, payer=i % 3) for i, k in enumerate(KEYS)]
    acks.append(Ack("never-applied-1", View.ACKNOWLEDGED))  # lost, as is seed:1 (not counted)
    got = compare(acks, table, source="reference").to_dict()
    want = compare_reference(acks, applied, source="reference").to_dict()
    assert want["duplicated"] == 12 and want["lost"] == 2 and want["mismatched"]
    # a database returns its rows in any order (neither read sorts them): the examples kept
    # may be others, or name another row's difference first; the counts are exact
    for result in (got, want):
        result.pop("checked_at")
        result.pop("examples")
    assert got == want
