"""The wallet's database role: the service runs with only its grants, and they are not much."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from loadkit.errors import ComponentFailed
from loadkit.stack.postgres import Postgres
from loadkit.wallet import schema
from tests.wallet.conftest import (
    ADMIN,
    OUTBOX,
    WalletProcess,
    invariants,
    login,
    problem,
    sql,
)


@pytest.fixture(scope="module")
def app_role(pg: Postgres) -> tuple[str, str]:
    """A login role of this module's own, ``(name, password)`` (it goes with the session's
    cluster: dropping it would mean revoking its grants database by database)."""
    name, password = f"wallet_t{secrets.randbelow(10**8)}", secrets.token_urlsafe(16)
    pg.create_role(name, password)
    return name, password


def _role_dsn(pg: Postgres, dsn: str, role: str) -> str:
    return pg.dsn(urlsplit(dsn).path.lstrip("/"), user=role)


def _as(pg: Postgres, dsn: str, role: str, password: str, query: str) -> str:
    """Run ``query`` with ``psql`` as ``role``; its output, or ComponentFailed."""
    import subprocess

    done = subprocess.run(
        [
            str(pg.bin_dir / "psql"),
            *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("-h", "127.0.0.1", "-p", str(pg.port), "-U", role),
            *("-d", urlsplit(dsn).path.lstrip("/"), "-f", "-"),
        ],
        input=query,
        capture_output=True,
        text=True,
        env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise ComponentFailed("psql", done.stderr.strip())
    return done.stdout.strip()


def test_the_service_works_with_only_its_grants(
    pg: Postgres,
    app_role: tuple[str, str],
    start_wallet: Callable[..., WalletProcess],
) -> None:
    """Every route the wallet has, through a role that has nothing but APP_GRANTS."""
    role, password = app_role
    dsn = pg.create_database(f"wallet_grants_{uuid.uuid4().hex[:8]}")
    schema.migrate(dsn, grant_to=role)
    schema.seed(dsn, 4, 1, 1_000_000)
    w = start_wallet(
        _role_dsn(pg, dsn, role), name="w-least", env={"LOADKIT_WALLET_DB_PASSWORD": password}
    )
    assert "loadkit:" not in " ".join(w.proc.args)  # type: ignore[arg-type]
    with httpx.Client(base_url=w.url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        alice, bob = login(w.url, 1, client), login(w.url, 2, client)
        merchant = client.get("/v1/directory/merchant00001", headers=alice.headers).json()
        assert client.post("/v1/topup", json={"amount": 5}, headers=alice.with_key()).is_success
        r = client.post(
            "/v1/payments",
            json={"merchant_account": merchant["account_id"], "amount": 7},
            headers=alice.with_key(),
        )
        assert r.status_code == 201, r.text
        # OTP: challenge, outbox, a wrong code, the right one
        key = uuid.uuid4().hex
        body = {"to_account": bob.account_id, "amount": 600_000}
        challenge = problem(client.post("/v1/transfers", json=body, headers=alice.with_key(key)))[
            "otp_challenge"
        ]
        code = client.get(f"/admin/otp-outbox/{challenge}", headers=OUTBOX).json()["code"]
        wrong = {**alice.with_key(key), "X-OTP": f"{(int(code) + 1) % 1_000_000:06d}"}
        assert client.post("/v1/transfers", json=body, headers=wrong).status_code == 403
        right = {**alice.with_key(key), "X-OTP": code}
        assert client.post("/v1/transfers", json=body, headers=right).status_code == 201
        # a stored risk refusal, a failed and a successful login, history, admin reads
        r = client.post(
            "/v1/transfers",
            json={"to_account": bob.account_id, "amount": 60_000_000},
            headers=alice.with_key(),
        )
        assert problem(r)["code"] == "AMOUNT_OVER_LIMIT"
        assert (
            client.post("/v1/login", json={"username": bob.name, "password": "x"}).status_code
            == 401
        )
        login(w.url, 2, client)
        assert client.get("/v1/transactions", headers=alice.headers).status_code == 200
        assert client.post("/admin/seed", json={"users": 6}, headers=ADMIN).json()["funded"] == 0
        assert client.get("/admin/movements", headers=ADMIN).status_code == 200
        assert client.get("/admin/accounts/2", headers=ADMIN).status_code == 200
        assert invariants(client)["ok"]
    assert "Traceback" not in w.log()


@pytest.mark.parametrize(
    "query",
    [
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "SELECT pg_read_file('/etc/passwd')",
        "DROP TABLE ledger_entries",
        "TRUNCATE idempotency_keys",
        "DELETE FROM ledger_entries",
        "DELETE FROM transactions",
        "UPDATE wallet_meta SET value = 'x'",
        "ALTER TABLE accounts DROP CONSTRAINT accounts_balance_non_negative",
        "CREATE TABLE public.mine (x int)",
        "CREATE ROLE mine LOGIN SUPERUSER",
        "CREATE DATABASE mine",
        "CREATE OR REPLACE FUNCTION wallet_invariants() RETURNS jsonb LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_the_role_cannot_do_more_than_the_service_needs(
    pg: Postgres, app_role: tuple[str, str], pg_dsn: str, query: str
) -> None:
    role, password = app_role
    schema.migrate(pg_dsn, grant_to=role)
    assert _as(pg, pg_dsn, role, password, "SELECT count(*) FROM accounts") == "1"
    with pytest.raises(ComponentFailed, match=r"permission denied|must be|must have"):
        _as(pg, pg_dsn, role, password, query)
    assert sql(pg, pg_dsn, f"SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'") == "f"


def test_a_wrong_database_password_is_busy_not_a_500(
    pg: Postgres,
    app_role: tuple[str, str],
    wallet: WalletProcess,
    start_wallet: Callable[..., WalletProcess],
) -> None:
    role, _ = app_role
    schema.migrate(wallet.dsn, grant_to=role)
    w = start_wallet(
        _role_dsn(pg, wallet.dsn, role), name="w-badpw", env={"LOADKIT_WALLET_DB_PASSWORD": "no"}
    )
    with httpx.Client(base_url=w.url, timeout=10) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"] == "db_unavailable"
        r = client.post("/v1/login", json={"username": "user00001", "password": "wallet-pass"})
        assert r.status_code == 503 and problem(r)["cause"] == "db_unavailable"
    assert "Traceback" not in w.log()
    assert "password authentication failed" not in w.log() or "database trouble" in w.log()


def test_grant_to_refuses_names_that_are_not_plain_roles() -> None:
    for bad in ("Wallet", "a;b", "x y", "", "1abc"):
        with pytest.raises(ValueError, match="not a plain role name"):
            schema.grant_sql(bad)


#: wallet_invariants()'s entry checks as they were first written (a NOT EXISTS per row): the
#: one-pass version must count the same
_ENTRY_CHECKS = """
SELECT jsonb_build_object(
    'transactions_without_entries',
        (SELECT count(*) FROM transactions t
         WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)),
    'entries_mismatched',
        (SELECT count(*) FROM ledger_entries e JOIN transactions t ON t.id = e.transaction_id
         WHERE NOT ((e.account_id = t.from_account AND e.delta = -t.amount)
                    OR (e.account_id = t.to_account AND e.delta = t.amount))),
    'orphan_entries',
        (SELECT count(*) FROM ledger_entries e
         WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = e.transaction_id)
            OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account_id)))::text
"""


def test_invariants_count_each_broken_entry(pg_dsn: str) -> None:
    """A ledger broken in every way the entry checks look for: each is counted, as the
    per-row definition counts it."""

    async def run() -> tuple[dict[str, int], dict[str, int]]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await schema.migrate_connection(conn)
            await conn.execute(
                "INSERT INTO accounts (id, kind, name) VALUES (10, 'user', 'a'), (11, 'user', 'b')"
            )
            move = (
                "INSERT INTO transactions (id, kind, idempotency_key, account_id, from_account,"
                " to_account, amount) VALUES ($1, 'transfer', $2, 10, 10, 11, 5)"
            )
            entry = "INSERT INTO ledger_entries VALUES ($1, $2, $3)"
            for txn in (1, 2, 3, 4, 5):
                await conn.execute(move, txn, f"k-{txn}")
            await conn.executemany(entry, [(10, 1, -5), (11, 1, 5)])  # right
            # 2: no entries at all
            await conn.executemany(entry, [(10, 3, -5), (11, 3, 4)])  # 3: one wrong delta
            await conn.executemany(entry, [(11, 4, -5), (10, 4, 5)])  # 4: accounts swapped
            await conn.executemany(entry, [(10, 5, -5), (11, 5, 5), (12, 5, 1)])  # 5: + nobody's
            await conn.executemany(entry, [(10, 99, -7), (11, 99, 7)])  # no such transaction
            now = json.loads(await conn.fetchval("SELECT wallet_invariants()::text"))
            was = json.loads(await conn.fetchval(_ENTRY_CHECKS))
        finally:
            await conn.close()
        return now, was

    now, was = asyncio.run(run())
    assert was == {"transactions_without_entries": 1, "entries_mismatched": 4, "orphan_entries": 3}
    assert {k: now[k] for k in was} == was
    assert now["unbalanced_transactions"] == 2 and now["transactions"] == 5


#: every invariant by its detailed definition (joins and groupings, no fingerprints)
_DETAILED = (
    _ENTRY_CHECKS.removesuffix("::text\n").rstrip()[:-1]
    + """,
    'unbalanced_transactions',
        (SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id
                               HAVING sum(delta) <> 0 OR count(*) <> 2) u),
    'duplicate_applications',
        (SELECT count(*) FROM (SELECT 1 FROM transactions GROUP BY account_id, idempotency_key
                               HAVING count(*) > 1) d),
    'accounts_mismatched',
        (SELECT count(*) FROM accounts a
         WHERE a.balance <> (SELECT coalesce(sum(delta), 0) FROM ledger_entries e
                             WHERE e.account_id = a.id)))::text
"""
)


def test_invariants_prove_a_clean_ledger_and_see_each_break_that_keeps_the_counts(
    pg_dsn: str,
) -> None:
    """A ledger written by wallet_move is proven clean (the fingerprints match); breaks that
    leave every count as it was (two entries per transaction, one transaction per key) make a
    fingerprint differ, and the detailed counts then find exactly what broke."""
    checked = (*_DETAILED_KEYS, "total_balance", "negative_balances")

    async def run() -> list[tuple[dict[str, int], dict[str, int]]]:
        conn = await asyncpg.connect(pg_dsn)
        seen: list[tuple[dict[str, int], dict[str, int]]] = []

        async def look() -> None:
            now = json.loads(await conn.fetchval("SELECT wallet_invariants()::text"))
            detailed = json.loads(await conn.fetchval(_DETAILED))
            seen.append(({k: now[k] for k in checked}, detailed))

        try:
            await schema.migrate_connection(conn)
            users = [f"u{i}" for i in range(8)]
            await conn.execute(
                "SELECT wallet_seed($1, $2, 'x', 10000)", users, ["shop-a", "shop-b"]
            )
            ids: dict[str, int] = {
                r["name"]: r["id"] for r in await conn.fetch("SELECT name, id FROM accounts")
            }
            moves: list[tuple[str, int, int]] = []
            for i in range(240):
                payer = ids[users[i % 8]]
                if i % 3 == 0:
                    moves.append(("payment", payer, ids["shop-a" if i % 2 else "shop-b"]))
                elif i % 3 == 1:
                    moves.append(("transfer", payer, ids[users[(i + 3) % 8]]))
                else:
                    moves.append(("topup", ids["bank"], payer))
            for i, (kind, payer, payee) in enumerate(moves):
                status = await conn.fetchval(
                    "SELECT wallet_move($1, $2, 'h', $3, $4, $5, $6, NULL, NULL)->>'status'",
                    f"k-{i}",
                    payer,
                    kind,
                    payer,
                    payee,
                    1 + i % 50,
                )
                assert status == "201"
            await look()  # clean
            breaks = [
                # one transaction's entries swapped: balanced, two entries, wrong accounts
                "UPDATE ledger_entries SET delta = -delta WHERE transaction_id = "
                "(SELECT max(id) FROM transactions)",
                # a transaction that says another amount than its entries moved
                "UPDATE transactions SET amount = amount + 1 WHERE id = "
                "(SELECT max(id) FROM transactions)",
                # an entry moved to another transaction, both keeping two entries
                "UPDATE ledger_entries SET transaction_id = CASE transaction_id"
                " WHEN 20 THEN 21 ELSE 20 END WHERE transaction_id IN (20, 21)"
                " AND delta < 0",
                # a key applied twice (the unsafe mode's path): one more transaction
                "SELECT wallet_move_ignoring_key('k-5', {1}, 'h', '{0}', {1}, {2}, 6, NULL,"
                " NULL)".format(*moves[5]),
            ]
            for statement in breaks:
                tx = conn.transaction()
                await tx.start()
                try:
                    await conn.execute(statement)
                    await look()
                finally:
                    await tx.rollback()
            await look()  # clean again
        finally:
            await conn.close()
        return seen

    seen = asyncio.run(run())
    clean = dict.fromkeys(checked, 0)
    assert seen[0] == (clean, dict.fromkeys(_DETAILED_KEYS, 0))
    assert seen[-1] == seen[0]
    for now, detailed in seen:
        assert {k: now[k] for k in _DETAILED_KEYS} == detailed
    swapped, amount, moved, twice = (now for now, _ in seen[1:-1])
    assert swapped["entries_mismatched"] == 2 and swapped["accounts_mismatched"] == 2
    assert amount["entries_mismatched"] == 2 and amount["unbalanced_transactions"] == 0
    assert moved["entries_mismatched"] == 2 and moved["unbalanced_transactions"] == 2
    assert twice["duplicate_applications"] == 1 and twice["entries_mismatched"] == 0


_DETAILED_KEYS = (
    "transactions_without_entries",
    "entries_mismatched",
    "orphan_entries",
    "unbalanced_transactions",
    "duplicate_applications",
    "accounts_mismatched",
)
