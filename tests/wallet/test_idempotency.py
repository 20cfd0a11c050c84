"""Idempotency keys: replays move money once, reuse for another request is a 409, and
concurrent duplicates apply exactly once."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable

import httpx
import pytest

from loadkit.stack.postgres import Postgres
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


def test_same_key_same_payload_replays_the_stored_answer(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    alice, bob = users(), users()
    headers = alice.with_key()
    body = {"to_account": bob.account_id, "amount": 700}
    first = client.post("/v1/transfers", json=body, headers=headers)
    second = client.post("/v1/transfers", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotency-replayed"] == "true"
    assert second.json() == {**first.json(), "replayed": True}
    assert balance(client, alice) == SEED_BALANCE - 700
    assert balance(client, bob) == SEED_BALANCE + 700


def test_same_key_other_payload_is_a_conflict(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    alice, bob, carol = users(), users(), users()
    headers = alice.with_key()
    assert (
        client.post(
            "/v1/transfers", json={"to_account": bob.account_id, "amount": 10}, headers=headers
        ).status_code
        == 201
    )
    before = invariants(client)["transactions"]
    for body in (
        {"to_account": bob.account_id, "amount": 11},
        {"to_account": carol.account_id, "amount": 10},
        {"to_account": bob.account_id, "amount": 10, "memo": "other"},
    ):
        r = client.post("/v1/transfers", json=body, headers=headers)
        assert r.status_code == 409
        assert problem(r)["code"] == "IDEMPOTENCY_CONFLICT"
    # the same key used for another kind of movement conflicts too
    r = client.post("/v1/topup", json={"amount": 10}, headers=headers)
    assert r.status_code == 409
    assert invariants(client)["transactions"] == before
    assert balance(client, alice) == SEED_BALANCE - 10


def test_keys_are_scoped_to_the_caller(client: httpx.Client, users: Callable[[], User]) -> None:
    alice, bob = users(), users()
    key = uuid.uuid4().hex
    r1 = client.post(
        "/v1/transfers",
        json={"to_account": bob.account_id, "amount": 5},
        headers=alice.with_key(key),
    )
    r2 = client.post(
        "/v1/transfers",
        json={"to_account": alice.account_id, "amount": 7},
        headers=bob.with_key(key),
    )
    assert r1.status_code == r2.status_code == 201
    assert r2.json()["replayed"] is False
    assert balance(client, alice) == SEED_BALANCE + 2


def test_refusals_are_stored_under_the_key(client: httpx.Client, users: Callable[[], User]) -> None:
    alice = users()
    headers = alice.with_key()
    body = {"to_account": 999_999_999, "amount": 5}
    first = client.post("/v1/transfers", json=body, headers=headers)
    assert first.status_code == 404 and problem(first)["code"] == "ACCOUNT_NOT_FOUND"
    again = client.post("/v1/transfers", json=body, headers=headers)
    assert again.status_code == 404
    assert again.headers["idempotency-replayed"] == "true"
    assert problem(again)["replayed"] is True
    assert balance(client, alice) == SEED_BALANCE


def _policy(client: httpx.Client, name: str) -> None:
    r = client.post("/admin/policy", json={"policy": name}, headers=ADMIN)
    assert r.status_code == 200, r.text


def _transfer(
    client: httpx.Client, sender: User, to: User, amount: int, key: str, otp: str | None = None
) -> httpx.Response:
    headers = sender.with_key(key)
    if otp is not None:
        headers["X-OTP"] = otp
    return client.post(
        "/v1/transfers", json={"to_account": to.account_id, "amount": amount}, headers=headers
    )


@pytest.mark.usefixtures("admin_reset")
def test_a_replay_gets_the_first_answer_after_the_policy_tightened(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    """Applied under normal (201), replayed under peak: it used to answer 422 AMOUNT_OVER_LIMIT
    (or 403 OTP_REQUIRED) for money that had moved."""
    alice, bob = users(), users()
    r = client.post("/v1/topup", json={"amount": 30_000_000}, headers=alice.with_key())
    assert r.status_code == 201
    big, small = uuid.uuid4().hex, uuid.uuid4().hex
    # 300,000 CNY: over peak's maximum, within normal's, with an OTP
    challenge = problem(_transfer(client, alice, bob, 30_000_000, big))["otp_challenge"]
    first = _transfer(client, alice, bob, 30_000_000, big, otp_code(client, challenge))
    assert first.status_code == 201, first.text
    # 3,000 CNY: under normal's OTP threshold, over peak's
    second = _transfer(client, alice, bob, 300_000, small)
    assert second.status_code == 201
    moved = invariants(client)["transactions"]

    _policy(client, "peak")
    for key, amount, answer in ((big, 30_000_000, first), (small, 300_000, second)):
        again = _transfer(client, alice, bob, amount, key)
        assert again.status_code == 201, again.text
        assert again.headers["idempotency-replayed"] == "true"
        assert again.json()["transaction_id"] == answer.json()["transaction_id"]
    # a replay that carries a (stale) code is a replay too
    assert _transfer(client, alice, bob, 300_000, small, otp="000000").status_code == 201
    assert invariants(client)["transactions"] == moved
    assert balance(client, bob) == SEED_BALANCE + 30_300_000


@pytest.mark.usefixtures("admin_reset")
def test_a_risk_refusal_is_stored_under_the_key(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    """Refused under peak (422): the same key stays refused when the policy is relaxed, so the
    client's "refused" view is final."""
    alice, bob = users(), users()
    r = client.post("/v1/topup", json={"amount": 30_000_000}, headers=alice.with_key())
    assert r.status_code == 201
    key = uuid.uuid4().hex
    _policy(client, "peak")
    first = _transfer(client, alice, bob, 25_000_000, key)
    assert first.status_code == 422 and problem(first)["code"] == "AMOUNT_OVER_LIMIT"
    assert problem(first)["replayed"] is False
    _policy(client, "normal")
    for otp in (None, "123456"):
        again = _transfer(client, alice, bob, 25_000_000, key, otp)
        assert again.status_code == 422, again.text
        body = problem(again)
        assert body["code"] == "AMOUNT_OVER_LIMIT" and body["replayed"] is True
        assert body["policy"] == "peak" and body["max_amount"] == 20_000_000
    # the same key for another request is still a conflict
    assert _transfer(client, alice, bob, 1, key).status_code == 409
    assert balance(client, bob) == SEED_BALANCE


def test_concurrent_duplicates_apply_exactly_once(
    wallet: WalletProcess, wallet_dsn: str, pg: Postgres, users: Callable[[], User]
) -> None:
    """50 transfers among 10 accounts, each key sent 2-3 times at once."""
    accounts = [users() for _ in range(10)]
    rng = random.Random(42)
    transfers = []
    for n in range(50):
        sender, receiver = rng.sample(accounts, 2)
        transfers.append((f"conc-{uuid.uuid4().hex}-{n}", sender, receiver, rng.randint(1, 5_000)))
    sends = [t for t in transfers for _ in range(rng.choice((2, 3)))]
    rng.shuffle(sends)

    limits = httpx.Limits(max_connections=40)
    with httpx.Client(base_url=wallet.url, timeout=10, limits=limits) as shared:

        def send(item: tuple[str, User, User, int]) -> tuple[str, httpx.Response]:
            key, sender, receiver, amount = item
            r = shared.post(
                "/v1/transfers",
                json={"to_account": receiver.account_id, "amount": amount},
                headers=sender.with_key(key),
            )
            return key, r

        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(send, sends))

    by_key: dict[str, list[httpx.Response]] = defaultdict(list)
    for key, r in results:
        assert r.status_code == 201, r.text
        by_key[key].append(r)
    for responses in by_key.values():
        assert len({r.json()["transaction_id"] for r in responses}) == 1
        assert sum(1 for r in responses if not r.json()["replayed"]) == 1

    keys = ",".join(f"'{t[0]}'" for t in transfers)
    rows = sql(
        pg,
        wallet_dsn,
        f"SELECT idempotency_key, count(*) FROM transactions WHERE idempotency_key IN ({keys}) "
        "GROUP BY 1",
    )
    counts = {key: int(n) for key, n in (line.split("|") for line in rows.splitlines())}
    assert len(counts) == 50 and set(counts.values()) == {1}

    expected = {u.account_id: SEED_BALANCE for u in accounts}
    for _, sender, receiver, amount in transfers:
        expected[sender.account_id] -= amount
        expected[receiver.account_id] += amount
    with httpx.Client(base_url=wallet.url) as client:
        actual = {u.account_id: balance(client, u) for u in accounts}
        assert actual == expected
        assert sum(actual.values()) == 10 * SEED_BALANCE
        report = client.get("/admin/invariants", headers=ADMIN).json()
    assert report["ok"], report
    assert report["duplicate_applications"] == 0


def test_simultaneous_same_key_with_different_payloads(
    wallet: WalletProcess, users: Callable[[], User]
) -> None:
    """Same key, different payees, released at once: exactly one applies, and every other
    answer is a 409 or a replay of it (they queue on the caller's row, then see the key)."""
    alice, bob, carol = users(), users(), users()
    key = f"race-{uuid.uuid4().hex}"
    payees = [bob, carol] * 4
    barrier = threading.Barrier(len(payees))
    with httpx.Client(base_url=wallet.url, timeout=10) as shared:

        def send(payee: User) -> httpx.Response:
            barrier.wait()
            return shared.post(
                "/v1/transfers",
                json={"to_account": payee.account_id, "amount": 50},
                headers=alice.with_key(key),
            )

        with concurrent.futures.ThreadPoolExecutor(len(payees)) as pool:
            answers = list(pool.map(send, payees))
        applied = [a for a in answers if a.status_code == 201 and not a.json()["replayed"]]
        assert len(applied) == 1
        winner = applied[0].json()["to_account"]
        for a in answers:
            if a.status_code == 201:
                assert a.json()["to_account"] == winner
            else:
                assert a.status_code == 409, a.text
        assert balance(shared, alice) == SEED_BALANCE - 50
        assert balance(shared, bob) + balance(shared, carol) == 2 * SEED_BALANCE + 50
