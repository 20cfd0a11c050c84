"""Integrity sources against real endpoints: the reference ledger's read (keys split in SQL,
rows packed as bytea) against a real PostgreSQL, and an HTTP ledger's headers."""

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
from loadkit.integrity.sources import HttpLedger, read_reference
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
