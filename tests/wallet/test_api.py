"""The public API end to end on a real wallet process and real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from loadkit.stack.postgres import Postgres
from loadkit.wallet import schema
from loadkit.wallet.config import DEFAULT_PASSWORD
from tests.wallet.conftest import (
    ADMIN,
    SEED_BALANCE,
    User,
    WalletProcess,
    balance,
    invariants,
    otp_code,
    problem,
    sql,
)


def test_login_balance_topup_transfer_payment_history(
    client: httpx.Client, users: Callable[[], User], merchant_id: int
) -> None:
    alice, bob = users(), users()
    assert balance(client, alice) == SEED_BALANCE
    r = client.get("/v1/balance", headers=alice.headers)
    assert r.json() == {"account_id": alice.account_id, "balance": SEED_BALANCE, "currency": "CNY"}

    r = client.post("/v1/topup", json={"amount": 5_000}, headers=alice.with_key())
    assert r.status_code == 201, r.text
    topup = r.json()
    assert topup["kind"] == "topup" and topup["to_account"] == alice.account_id
    assert topup["balance"] == SEED_BALANCE + 5_000 and topup["replayed"] is False

    r = client.post(
        "/v1/transfers",
        json={"to_account": bob.account_id, "amount": 1_234, "memo": "lunch"},
        headers=alice.with_key(),
    )
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert transfer["from_account"] == alice.account_id
    assert transfer["to_account"] == bob.account_id
    assert transfer["amount"] == 1_234 and transfer["memo"] == "lunch"
    assert transfer["balance"] == SEED_BALANCE + 5_000 - 1_234
    assert "idempotency-replayed" not in r.headers

    r = client.post(
        "/v1/payments",
        json={"merchant_account": merchant_id, "amount": 766, "order_id": "A-1"},
        headers=alice.with_key(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "payment" and r.json()["order_id"] == "A-1"

    assert balance(client, alice) == SEED_BALANCE + 5_000 - 1_234 - 766
    assert balance(client, bob) == SEED_BALANCE + 1_234

    # history pages, newest first, signed deltas for the caller
    page1 = client.get("/v1/transactions?limit=2", headers=alice.headers).json()
    kinds = [item["kind"] for item in page1["items"]]
    assert kinds == ["payment", "transfer"]
    assert [item["delta"] for item in page1["items"]] == [-766, -1_234]
    assert page1["next_before"] == page1["items"][-1]["transaction_id"]
    page2 = client.get(
        f"/v1/transactions?limit=2&before={page1['next_before']}", headers=alice.headers
    ).json()
    assert [item["kind"] for item in page2["items"]] == ["topup", "topup"]  # and the seed money
    assert [item["delta"] for item in page2["items"]] == [5_000, SEED_BALANCE]
    assert page2["next_before"] is None
    ids = [i["transaction_id"] for i in page1["items"] + page2["items"]]
    assert ids == sorted(ids, reverse=True)
    # the payee sees the incoming transfer too
    bob_items = client.get("/v1/transactions", headers=bob.headers).json()["items"]
    assert bob_items[0]["transaction_id"] == transfer["transaction_id"]
    assert bob_items[0]["delta"] == 1_234
    assert invariants(client)["ok"]


def test_login_refuses_bad_credentials(client: httpx.Client) -> None:
    for body in (
        {"username": "user00001", "password": "wrong"},
        {"username": "nobody", "password": "wallet-pass"},
        {"username": schema.merchant_name(1), "password": "wallet-pass"},  # merchants cannot
    ):
        r = client.post("/v1/login", json=body)
        assert r.status_code == 401
        assert problem(r)["code"] == "INVALID_CREDENTIALS"


def test_directory_finds_users_and_merchants(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    me, other = users(), users()
    r = client.get(f"/v1/directory/{other.name}", headers=me.headers)
    assert r.json() == {"account_id": other.account_id, "name": other.name, "kind": "user"}
    r = client.get(f"/v1/directory/{schema.merchant_name(2)}", headers=me.headers)
    assert r.json()["kind"] == "merchant"
    for name in ("bank", "no-such-user"):
        r = client.get(f"/v1/directory/{name}", headers=me.headers)
        assert r.status_code == 404 and problem(r)["code"] == "ACCOUNT_NOT_FOUND"


def _otp_transfer(
    client: httpx.Client, sender: User, to: User, amount: int, key: str, otp: str | None = None
) -> httpx.Response:
    headers = sender.with_key(key)
    if otp is not None:
        headers["X-OTP"] = otp
    return client.post(
        "/v1/transfers", json={"to_account": to.account_id, "amount": amount}, headers=headers
    )


def test_large_transfer_needs_an_otp_and_succeeds_with_it(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    alice, bob = users(), users()
    key = uuid.uuid4().hex
    r = client.post("/v1/topup", json={"amount": SEED_BALANCE}, headers=alice.with_key())
    assert r.status_code == 201  # top-ups need no OTP
    # at the threshold: no OTP needed
    assert _otp_transfer(client, alice, bob, 500_000, uuid.uuid4().hex).status_code == 201

    r = _otp_transfer(client, alice, bob, 500_001, key)
    assert r.status_code == 403
    body = problem(r)
    assert body["code"] == "OTP_REQUIRED" and body["otp_threshold"] == 500_000
    challenge = body["otp_challenge"]

    code = otp_code(client, challenge)
    assert len(code) == 6 and code.isdigit()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = _otp_transfer(client, alice, bob, 500_001, key, otp=wrong)
    assert r.status_code == 403 and problem(r)["attempts_left"] == 4
    wrong = _otp_transfer(client, alice, bob, 500_001, key, otp="12345x")
    assert problem(wrong)["code"] == "OTP_INVALID" and problem(wrong)["attempts_left"] == 3
    # asking again without a code gets the same challenge (one open challenge per request)
    again = _otp_transfer(client, alice, bob, 500_001, key)
    assert problem(again)["otp_challenge"] == challenge
    # the code is bound to the request: not valid for another amount with the same key
    r = _otp_transfer(client, alice, bob, 500_002, key, otp=code)
    assert problem(r)["code"] == "OTP_INVALID"

    r = _otp_transfer(client, alice, bob, 500_001, key, otp=code)
    assert r.status_code == 201, r.text
    assert balance(client, alice) == 2 * SEED_BALANCE - 1_000_001
    # a retry with the same key and OTP is a replay, not a second movement
    r = _otp_transfer(client, alice, bob, 500_001, key, otp=code)
    assert r.status_code == 201 and r.json()["replayed"] is True
    assert balance(client, bob) == SEED_BALANCE + 1_000_001


@pytest.mark.usefixtures("admin_reset")
def test_peak_policy_lowers_the_otp_threshold_at_run_time(
    client: httpx.Client, users: Callable[[], User], merchant_id: int
) -> None:
    alice, bob = users(), users()
    assert _otp_transfer(client, alice, bob, 300_000, uuid.uuid4().hex).status_code == 201

    r = client.post("/admin/policy", json={"policy": "peak"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["otp_threshold"] == 200_000
    assert client.get("/admin/state", headers=ADMIN).json()["policy"] == "peak"

    r = _otp_transfer(client, alice, bob, 300_000, uuid.uuid4().hex)
    assert r.status_code == 403 and problem(r)["otp_threshold"] == 200_000
    r = client.post(
        "/v1/payments",
        json={"merchant_account": merchant_id, "amount": 200_001},
        headers=alice.with_key(),
    )
    assert problem(r)["code"] == "OTP_REQUIRED"
    assert _otp_transfer(client, alice, bob, 200_000, uuid.uuid4().hex).status_code == 201
    # peak also caps single movements lower
    r = _otp_transfer(client, alice, bob, 20_000_001, uuid.uuid4().hex)
    assert r.status_code == 422 and problem(r)["code"] == "AMOUNT_OVER_LIMIT"

    client.post("/admin/policy", json={"policy": "normal"}, headers=ADMIN)
    assert _otp_transfer(client, alice, bob, 300_000, uuid.uuid4().hex).status_code == 201
    assert balance(client, alice) == SEED_BALANCE - 800_000


def test_failed_logins_lock_the_account_on_every_instance(
    client: httpx.Client,
    users: Callable[[], User],
    wallet: WalletProcess,
    start_wallet: Callable[..., WalletProcess],
    pg: Postgres,
) -> None:
    """Failures are counted in the database: guessing on two instances adds up; at 10 the
    account is locked (even the right password is refused) and another account is not."""
    victim, bystander = users(), users()
    second = start_wallet(wallet.dsn, name="w-login-2")
    wrong = {"username": victim.name, "password": "guess"}
    right = {"username": victim.name, "password": DEFAULT_PASSWORD}
    with httpx.Client(base_url=second.url, timeout=10) as other:
        for i in range(9):
            r = (client if i % 2 else other).post("/v1/login", json=wrong)
            assert r.status_code == 401 and problem(r)["code"] == "INVALID_CREDENTIALS"
        # a success before the limit forgets the failures
        assert client.post("/v1/login", json=right).status_code == 200
        for _ in range(9):
            assert other.post("/v1/login", json=wrong).status_code == 401
        assert client.post("/v1/login", json=wrong).status_code == 401  # the 10th
        for c in (client, other):
            r = c.post("/v1/login", json=right)
            assert r.status_code == 403, r.text
            body = problem(r)
            assert body["code"] == "LOGIN_LOCKED" and 0 < body["retry_after"] <= 300
            assert 0 < int(r.headers["retry-after"]) <= 300
    name = bystander.name
    assert client.post(
        "/v1/login", json={"username": name, "password": DEFAULT_PASSWORD}
    ).is_success
    # tokens issued before the lock stay valid (the lock is about guessing passwords)
    assert client.get("/v1/balance", headers=victim.headers).status_code == 200
    # when the lock ends, the right password works again and the count starts over
    sql(
        pg,
        wallet.dsn,
        "UPDATE login_failures SET locked_until = now() - interval '1 second' "
        f"WHERE account_id = {victim.account_id}",
    )
    assert client.post("/v1/login", json=right).status_code == 200
    assert (
        sql(
            pg,
            wallet.dsn,
            "SELECT coalesce(sum(failures), 0) FROM login_failures "
            f"WHERE account_id = {victim.account_id}",
        )
        == "0"
    )
