"""The admin API: authentication, validation, state, seeding, invariants, accounts."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx
import pytest

from loadkit.stack.postgres import Postgres
from loadkit.wallet import schema
from tests.wallet.conftest import (
    ADMIN,
    SEED_BALANCE,
    User,
    WalletProcess,
    invariants,
    login,
    make_wallet_db,
    problem,
    sql,
)


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/admin/state", "GET"),
        ("/admin/invariants", "GET"),
        ("/admin/accounts/1", "GET"),
        ("/admin/policy", "POST"),
        ("/admin/maintenance", "POST"),
        ("/admin/limits", "POST"),
        ("/admin/seed", "POST"),
    ],
)
def test_admin_routes_need_the_admin_token(client: httpx.Client, path: str, method: str) -> None:
    r = client.request(method, path, json={})
    assert r.status_code == 401 and problem(r)["code"] == "UNAUTHENTICATED"
    r = client.request(method, path, json={}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403 and problem(r)["code"] == "FORBIDDEN"


def test_user_tokens_are_not_admin_tokens(client: httpx.Client, users: Callable[[], User]) -> None:
    me = users()
    assert client.get("/admin/state", headers=me.headers).status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/admin/policy", {"policy": "holiday"}, "INVALID_POLICY"),
        ("/admin/policy", {}, "INVALID_POLICY"),
        ("/admin/maintenance", {"enabled": "yes"}, "INVALID_FIELD"),
        ("/admin/maintenance", {"enabled": True, "retry_after": -1}, "INVALID_FIELD"),
        ("/admin/maintenance", {"enabled": True, "message": 5}, "INVALID_FIELD"),
        ("/admin/limits", {"max_inflight": 0}, "INVALID_FIELD"),
        ("/admin/limits", {"rate_limit": "fast"}, "INVALID_FIELD"),
        ("/admin/limits", {"rate_limit": -1}, "INVALID_FIELD"),
        ("/admin/limits", {"per_user_rate": True}, "INVALID_FIELD"),
        ("/admin/limits", {"max_inflight": 10, "typo": 1}, "INVALID_FIELD"),
        ("/admin/seed", {"users": -1}, "INVALID_FIELD"),
        ("/admin/seed", {"users": 1, "balance": 1.5}, "INVALID_FIELD"),
    ],
)
def test_admin_input_is_validated_before_anything_changes(
    client: httpx.Client, path: str, body: dict[str, object], code: str
) -> None:
    before = client.get("/admin/state", headers=ADMIN).json()
    r = client.post(path, json=body, headers=ADMIN)
    assert r.status_code == 422 and problem(r)["code"] == code
    after = client.get("/admin/state", headers=ADMIN).json()
    for field in ("policy", "maintenance", "limits"):
        assert after[field] == before[field]


def test_state_describes_the_instance(client: httpx.Client) -> None:
    state = client.get("/admin/state", headers=ADMIN).json()
    assert state["instance"] == "wallet-shared"
    assert state["policy"] == "normal" and state["risk"]["otp_threshold"] == 500_000
    assert state["maintenance"]["enabled"] is False
    assert state["limits"]["max_inflight"] == 256 and state["limits"]["rate_limit"] is None
    assert state["inflight"] == 0
    assert {"size", "idle", "in_use", "max"} <= set(state["pool"])


@pytest.mark.usefixtures("admin_reset")
def test_limits_round_trip(client: httpx.Client) -> None:
    r = client.post(
        "/admin/limits",
        json={"max_inflight": 50, "rate_limit": 1000, "rate_burst": 20},
        headers=ADMIN,
    )
    limits = r.json()
    assert (limits["max_inflight"], limits["rate_limit"], limits["rate_burst"]) == (50, 1000, 20)
    limits = client.post("/admin/limits", json={"rate_limit": None}, headers=ADMIN).json()
    assert limits["rate_limit"] is None and limits["max_inflight"] == 50


def test_account_lookup(client: httpx.Client, users: Callable[[], User]) -> None:
    me = users()
    r = client.get(f"/admin/accounts/{me.account_id}", headers=ADMIN)
    assert r.json()["name"] == me.name and r.json()["balance"] == SEED_BALANCE
    assert r.json()["kind"] == "user"
    bank = client.get("/admin/accounts/1", headers=ADMIN).json()
    assert bank["kind"] == "external" and bank["balance"] < 0
    r = client.get("/admin/accounts/999999999", headers=ADMIN)
    assert r.status_code == 404 and problem(r)["code"] == "ACCOUNT_NOT_FOUND"
    assert client.get("/admin/accounts/abc", headers=ADMIN).status_code == 404


def test_invariants_hold_and_catch_a_tampered_ledger(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    dsn = make_wallet_db(pg, users=3)
    w = start_wallet(dsn, name="w-invariants")
    with httpx.Client(base_url=w.url, timeout=10) as client:
        report = invariants(client)
        assert report["ok"] and report["total_balance"] == 0
        assert report["transactions"] == 3 and report["bank_balance"] == -3 * SEED_BALANCE
        # money appearing from nowhere: a balance no ledger entry explains
        sql(
            pg,
            dsn,
            f"UPDATE accounts SET balance = balance + 1 WHERE name = '{schema.user_name(1)}'",
        )
        report = invariants(client)
        assert not report["ok"]
        assert report["total_balance"] == 1 and report["accounts_mismatched"] == 1


def test_seed_through_admin_is_idempotent_and_funds_through_the_ledger(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    dsn = pg.create_database(f"wallet_admin_seed_{os.getpid()}", drop_existing=True)
    schema.migrate(dsn)
    w = start_wallet(dsn, name="w-seed")
    with httpx.Client(base_url=w.url, timeout=30) as client:
        body = {"users": 20, "merchants": 3, "balance": 5_000}
        first = client.post("/admin/seed", json=body, headers=ADMIN).json()
        assert first["created_users"] == 20 and first["funded"] == 20
        assert first["created_merchants"] == 3
        again = client.post("/admin/seed", json={**body, "users": 25}, headers=ADMIN).json()
        assert again["created_users"] == 5 and again["funded"] == 5
        report = invariants(client)
        assert report["ok"] and report["transactions"] == 25
        user = login(w.url, 25, client)
        assert client.get("/v1/balance", headers=user.headers).json()["balance"] == 5_000
