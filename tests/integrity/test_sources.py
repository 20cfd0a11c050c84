"""Integrity sources against real endpoints: the reference ledger's read (COPY text parsed with
numpy, the invariants on a second connection in the same snapshot) against a real PostgreSQL,
and an HTTP ledger's headers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest

from loadkit.integrity import Ack, Applied, View, compare
from loadkit.integrity.sources import CopyRows, HttpLedger, read_reference
from loadkit.profile.model import HttpIntegrityCheck
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
    # COPY escapes these: the key comes back as it was, never split
    "tab\t7",
    "new\nline-8",
    "back\\slash-9",
    "cr\r-10",
    "\\",
    "",
    "x" * 40 + "-5",  # a prefix longer than the packed ones
    "a" * 32 + "6",  # … and just as long
    "é-0",
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
    assert len(table) == len(applied) == 2 * (len(KEYS) - 1)
    texts = sorted(table.interner.key_text(k) for k in table.key.tolist())
    assert texts == sorted(a.key for a in applied)
    acks = [Ack(k, View.ACKNOWLEDGED, amount=100 + i, payer=i % 3) for i, k in enumerate(KEYS)]
    acks.append(Ack("never-applied-1", View.ACKNOWLEDGED))  # lost, as is seed:1 (not counted)
    got = compare(acks, table, source="reference").to_dict()
    want = compare_reference(acks, applied, source="reference").to_dict()
    assert want["duplicated"] == len(KEYS) - 1 and want["lost"] == 2 and want["mismatched"]
    # a database returns its rows in any order (neither read sorts them): the examples kept
    # may be others, or name another row's difference first; the counts are exact
    for result in (got, want):
        result.pop("checked_at")
        result.pop("examples")
    assert got == want


async def _copy(conn: Any, query: str, *args: Any) -> CopyRows:
    rows = CopyRows()

    async def received(chunk: bytes) -> None:
        rows.feed(chunk)

    await conn.copy_from_query(query, *args, output=received)
    return rows


def test_copy_rows_read_nulls_signs_and_bigint_bounds(pg_dsn: str) -> None:
    """The parser of COPY's text: NULL is an absent detail; the whole bigint range reads back
    (the reference table's columns are NOT NULL: a user's query need not be)."""
    values = [None, 0, -1, 7, 10**8, 10**16 + 3, 2**63 - 1, -(2**63), 123456789]
    query = (
        "SELECT 'k-' || i, v, CASE WHEN v > -9223372036854775808 THEN -v ELSE v END,"
        " CASE WHEN i % 2 = 0 THEN NULL ELSE v END"
        " FROM unnest($1::int8[]) WITH ORDINALITY AS u(v, i)"
    )

    async def run() -> Any:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return (await _copy(conn, query, values)).table()
        finally:
            await conn.close()

    table = asyncio.run(run())
    amount, payer, payee = table.details
    for i, v in enumerate(values):
        assert table.interner.key_text(int(table.key[i])) == f"k-{i + 1}"
        assert bool(amount.kind[i]) == (v is not None)
        assert bool(payee.kind[i]) == (v is not None and i % 2 == 0)
        if v is not None:
            assert int(amount.value[i]) == v
            assert int(payer.value[i]) == (-v if v != -(2**63) else v)


def test_the_reference_read_of_an_empty_ledger(pg_dsn: str) -> None:
    async def run() -> tuple[Any, dict[str, Any]]:
        conn = await asyncpg.connect(pg_dsn)
        second = await asyncpg.connect(pg_dsn)
        try:
            await migrate_connection(conn)
            return await read_reference(conn, 0.0, second)
        finally:
            await second.close()
            await conn.close()

    table, facts = asyncio.run(run())
    assert len(table) == 0 and facts["transactions"] == 0
    result = compare([Ack("k-1", View.ACKNOWLEDGED)], table, source="reference")
    assert result.lost == 1


def test_rows_and_invariants_describe_one_moment(pg_dsn: str) -> None:
    """The rows and wallet_invariants() come from two connections at once, yet from one
    snapshot: movements committed meanwhile are in neither."""

    async def run() -> list[tuple[int, int]]:
        conn = await asyncpg.connect(pg_dsn)
        second = await asyncpg.connect(pg_dsn)
        writer = await asyncpg.connect(pg_dsn)
        try:
            await migrate_connection(conn)
            await conn.execute(
                "INSERT INTO transactions (kind, idempotency_key, account_id, from_account,"
                " to_account, amount) SELECT 'transfer', 'lk-0a1b2c3d-0-' || i, 1, 2, 3, 5"
                " FROM generate_series(1, 200000) i"
            )
            stop = asyncio.Event()

            async def write() -> int:
                n = 0
                while not stop.is_set():  # one committed movement after another
                    n += 1
                    await writer.execute(
                        "INSERT INTO transactions (kind, idempotency_key, account_id,"
                        " from_account, to_account, amount) VALUES ('transfer', $1, 1, 2, 3, 5)",
                        f"late-{n}",
                    )
                return n

            task = asyncio.create_task(write())
            seen = []
            for _ in range(3):
                table, facts = await read_reference(conn, 0.0, second)
                seen.append((len(table), int(facts["transactions"])))
            stop.set()
            written = await task
            assert written > 0
            return seen
        finally:
            await writer.close()
            await second.close()
            await conn.close()

    seen = asyncio.run(run())
    assert all(rows == counted for rows, counted in seen), seen
    assert seen[-1][0] > 200000  # the writer's movements did land between the reads


@pytest.fixture
def ledger_endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A tiny HTTP endpoint answering two applied keys and keeping each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers.items()))
            body = json.dumps(["k-1", "k-2"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/applied", seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_ledger_headers_take_env_templates_and_vars(
    ledger_endpoint: tuple[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Integrity headers are written like service headers (``{env.NAME}``) or as ``$NAME``:
    both reach the endpoint filled in, never as the template text."""
    url, seen = ledger_endpoint
    monkeypatch.setenv("SHOP_TOKEN", "s3cret")
    check = HttpIntegrityCheck(
        url, {"Authorization": "Bearer {env.SHOP_TOKEN}", "X-Also": "${SHOP_TOKEN}"}
    )
    view = HttpLedger(check).fetch(0.0)
    assert sorted(a.key for a in view.applied) == ["k-1", "k-2"]
    assert seen[-1]["Authorization"] == "Bearer s3cret"
    assert seen[-1]["X-Also"] == "s3cret"
