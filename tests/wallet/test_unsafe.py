"""The deliberately unsafe modes do what they say (so the integrity check has something to catch),
and say so loudly; the safe wallet's /admin/movements lists what was applied, once per key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx

from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres
from tests.wallet.conftest import (
    ADMIN,
    SEED_BALANCE,
    User,
    WalletProcess,
    balance,
    invariants,
    login,
    make_wallet_db,
)


def _movements(url: str, since: float = 0.0) -> dict[str, int]:
    r = httpx.get(f"{url}/admin/movements", params={"since": since}, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return {item["key"]: item["count"] for item in r.json()["items"]}


def _state(url: str) -> dict[str, object]:
    r = httpx.get(f"{url}/admin/state", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    state: dict[str, object] = r.json()
    return state


def test_safe_wallet_lists_each_movement_once_and_says_it_is_safe(
    wallet: WalletProcess, client: httpx.Client, users: Callable[[], User]
) -> None:
    since = time.time() - 1
    alice, bob = users(), users()
    key = f"safe-{uuid.uuid4().hex}"
    body = {"to_account": bob.account_id, "amount": 5}
    for _ in range(3):
        r = client.post("/v1/transfers", json=body, headers=alice.with_key(key))
        assert r.status_code == 201, r.text
    assert _movements(wallet.url, since)[key] == 1
    assert _state(wallet.url)["unsafe"] is None
    r = client.get("/admin/movements", params={"since": "yesterday"}, headers=ADMIN)
    assert r.status_code == 422


def test_ignore_idempotency_applies_every_retry_and_records_the_key(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    dsn = make_wallet_db(pg, users=4)
    w = start_wallet(dsn, "--unsafe", "ignore-idempotency", name="wallet-unsafe-idem")
    assert "UNSAFE WALLET" in w.log() and "ignore-idempotency" in w.log()
    assert _state(w.url)["unsafe"] == "ignore-idempotency"
    alice, bob = login(w.url, 1), login(w.url, 2)
    key = f"dup-{uuid.uuid4().hex}"
    with httpx.Client(base_url=w.url, timeout=10) as c:
        for _ in range(3):
            r = c.post(
                "/v1/transfers",
                json={"to_account": bob.account_id, "amount": 100},
                headers=alice.with_key(key),
            )
            assert r.status_code == 201, r.text
            assert r.json()["replayed"] is False
        assert balance(c, alice) == SEED_BALANCE - 300  # charged three times
        report = invariants(c)
    assert _movements(w.url)[key] == 3
    assert report["duplicate_applications"] == 1 and report["ok"] is False


def test_ack_before_commit_answers_first_and_drops_what_fails(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    dsn = make_wallet_db(pg, users=4)
    w = start_wallet(dsn, "--unsafe", "ack-before-commit", name="wallet-unsafe-ack")
    assert "ACKNOWLEDGED BEFORE THEY ARE COMMITTED" in w.log()
    alice, bob = login(w.url, 1), login(w.url, 2)
    key = f"abc-{uuid.uuid4().hex}"
    r = httpx.post(
        f"{w.url}/v1/transfers",
        json={"to_account": bob.account_id, "amount": 100},
        headers=alice.with_key(key),
        timeout=10,
    )
    assert r.status_code == 201 and r.json()["transaction_id"] is None
    deadline = time.monotonic() + 10
    while _movements(w.url).get(key) != 1:  # written a little later
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # the same answer with no database at all: acknowledged, then dropped
    dead_dsn = f"postgresql://loadkit@127.0.0.1:{free_port()}/wallet"
    down = start_wallet(dead_dsn, "--unsafe", "ack-before-commit", name="wallet-unsafe-nodb")
    r = httpx.post(
        f"{down.url}/v1/transfers",
        json={"to_account": bob.account_id, "amount": 100},
        headers=alice.with_key(),  # tokens are signed with the shared secret
        timeout=10,
    )
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 15
    while True:
        write_behind = _state(down.url)["write_behind"]
        assert isinstance(write_behind, dict)
        if write_behind["dropped"] == 1:
            break
        assert time.monotonic() < deadline, write_behind
        time.sleep(0.2)
    assert write_behind["pending"] == 0 and write_behind["applied"] == 0
    assert "DROPPED 1 acknowledged movement" in down.log()


def test_misapply_is_chosen_by_the_key_and_wrong_one_way_or_the_other() -> None:
    """`misapply` (pure): a key decides, so a replay is misapplied the same way; about one
    movement in four is wrong, half of those by one fen, half by payee (top-ups: by amount)."""
    from loadkit.wallet.unsafe import misapply

    keys = [f"lk-{i}" for i in range(4000)]
    results = [misapply(k, "transfer", 7, 42, 500) for k in keys]
    assert results == [misapply(k, "transfer", 7, 42, 500) for k in keys]
    amount = sum(1 for r in results if r == (7, 42, 499))
    payee = sum(1 for r in results if r == (7, 43, 500))
    right = sum(1 for r in results if r == (7, 42, 500))
    assert amount + payee + right == len(keys)
    assert 350 < amount < 650 and 350 < payee < 650
    assert misapply("x", "transfer", 43, 42, 1) in ((43, 42, 1), (43, 42, 2), (43, 44, 1))
    topups = {misapply(k, "topup", 1, 9, 100) for k in keys}
    assert topups == {(1, 9, 100), (1, 9, 99)}  # a top-up's payee is the payer's own account
