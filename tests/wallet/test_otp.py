"""One-time passwords as a real second factor: the code travels outside the user's token, wrong
codes are counted per challenge in the database (by every instance), the 5th locks the movement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from loadkit.stack.postgres import Postgres
from tests.wallet.conftest import (
    ADMIN,
    OUTBOX,
    SEED_BALANCE,
    User,
    WalletProcess,
    balance,
    invariants,
    otp_code,
    problem,
    sql,
)

#: 6,000 CNY: over the normal policy's OTP threshold (5,000 CNY)
BIG = 600_000


def _transfer(
    client: httpx.Client, sender: User, to: User, key: str, otp: str | None = None
) -> httpx.Response:
    headers = sender.with_key(key)
    if otp is not None:
        headers["X-OTP"] = otp
    return client.post(
        "/v1/transfers", json={"to_account": to.account_id, "amount": BIG}, headers=headers
    )


def _challenge(client: httpx.Client, sender: User, to: User, key: str) -> str:
    r = _transfer(client, sender, to, key)
    assert r.status_code == 403, r.text
    body = problem(r)
    assert body["code"] == "OTP_REQUIRED" and 0 < body["expires_in"] <= 300
    challenge: str = body["otp_challenge"]
    return challenge


def _wrong(code: str, n: int = 1) -> str:
    return f"{(int(code) + n) % 1_000_000:06d}"


def test_the_users_own_token_cannot_read_the_code(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    """The old GET /v1/otp/{challenge} served the code to the token it was meant to guard."""
    alice, bob = users(), users()
    challenge = _challenge(client, alice, bob, uuid.uuid4().hex)
    assert client.get(f"/v1/otp/{challenge}", headers=alice.headers).status_code == 404
    for who in (alice, bob):
        r = client.get(f"/admin/otp-outbox/{challenge}", headers=who.headers)
        assert r.status_code == 403 and problem(r)["code"] == "FORBIDDEN"
    assert client.get(f"/admin/otp-outbox/{challenge}").status_code == 401
    # the outbox token reads it, and so does the admin token; nothing else does
    assert (
        otp_code(client, challenge)
        == (client.get(f"/admin/otp-outbox/{challenge}", headers=ADMIN).json()["code"])
    )
    r = client.get(f"/admin/otp-outbox/{challenge}", headers=OUTBOX)
    assert r.json()["account_id"] == alice.account_id
    # the outbox token is no admin token
    assert client.get("/admin/state", headers=OUTBOX).status_code == 403
    assert balance(client, alice) == SEED_BALANCE


def test_the_outbox_is_off_unless_the_instance_has_a_token(
    wallet: WalletProcess,
    start_wallet: Callable[..., WalletProcess],
    users: Callable[[], User],
    client: httpx.Client,
) -> None:
    plain = start_wallet(
        wallet.dsn, name="w-no-outbox", env={"LOADKIT_WALLET_OTP_OUTBOX_TOKEN": ""}
    )
    alice, bob = users(), users()
    with httpx.Client(base_url=plain.url, timeout=10) as other:
        challenge = _challenge(other, alice, bob, uuid.uuid4().hex)
        r = other.get(f"/admin/otp-outbox/{challenge}", headers=ADMIN)
        assert r.status_code == 404 and problem(r)["code"] == "OTP_OUTBOX_OFF"
        assert other.get(f"/admin/otp-outbox/{challenge}", headers=OUTBOX).status_code == 403
        assert other.get("/admin/state", headers=ADMIN).json()["otp_outbox"] is False
    # challenges live in the database: an instance with an outbox has the code
    assert len(otp_code(client, challenge)) == 6


def test_wrong_codes_are_counted_by_every_instance_and_the_fifth_locks(
    wallet: WalletProcess,
    start_wallet: Callable[..., WalletProcess],
    users: Callable[[], User],
    client: httpx.Client,
    pg: Postgres,
) -> None:
    second = start_wallet(wallet.dsn, name="w-otp-2")
    alice, bob = users(), users()
    key = uuid.uuid4().hex
    challenge = _challenge(client, alice, bob, key)
    code = otp_code(client, challenge)
    before = invariants(client)["transactions"]
    with httpx.Client(base_url=second.url, timeout=10) as other:
        for n, c in enumerate((client, other, client, other), start=1):
            r = _transfer(c, alice, bob, key, _wrong(code, n))
            assert r.status_code == 403 and problem(r)["attempts_left"] == 5 - n, r.text
        stored = sql(
            pg, wallet.dsn, f"SELECT failures FROM otp_challenges WHERE id = '{challenge}'"
        )
        assert stored == "4"
        locked = _transfer(client, alice, bob, key, _wrong(code, 5))
        assert locked.status_code == 403 and problem(locked)["code"] == "OTP_LOCKED"
        # final: the right code now, on any instance, gets the stored refusal
        for c in (client, other):
            again = _transfer(c, alice, bob, key, code)
            assert again.status_code == 403 and problem(again)["code"] == "OTP_LOCKED"
            assert again.headers["idempotency-replayed"] == "true"
        # and asking for a new challenge with the same key does not start over
        assert problem(_transfer(other, alice, bob, key))["code"] == "OTP_LOCKED"
    r = client.get(f"/admin/otp-outbox/{challenge}", headers=OUTBOX)
    assert r.status_code == 404
    assert invariants(client)["transactions"] == before
    assert balance(client, alice) == SEED_BALANCE
    # a new key is a new movement with a new challenge
    fresh = uuid.uuid4().hex
    new_challenge = _challenge(client, alice, bob, fresh)
    assert new_challenge != challenge
    done = _transfer(client, alice, bob, fresh, otp_code(client, new_challenge))
    assert done.status_code == 201, done.text


def test_an_expired_challenge_takes_no_code_and_a_new_one_is_sent(
    client: httpx.Client, users: Callable[[], User], wallet: WalletProcess, pg: Postgres
) -> None:
    alice, bob = users(), users()
    key = uuid.uuid4().hex
    challenge = _challenge(client, alice, bob, key)
    code = otp_code(client, challenge)
    sql(
        pg,
        wallet.dsn,
        f"UPDATE otp_challenges SET expires_at = now() - interval '1 second' "
        f"WHERE id = '{challenge}'",
    )
    r = _transfer(client, alice, bob, key, code)
    assert r.status_code == 403 and problem(r)["code"] == "OTP_INVALID"
    assert client.get(f"/admin/otp-outbox/{challenge}", headers=OUTBOX).status_code == 404
    renewed = _challenge(client, alice, bob, key)
    assert renewed != challenge
    assert _transfer(client, alice, bob, key, otp_code(client, renewed)).status_code == 201
    assert balance(client, bob) == SEED_BALANCE + BIG


def test_a_code_answers_only_its_own_request(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    alice, bob, carol = users(), users(), users()
    key = uuid.uuid4().hex
    code = otp_code(client, _challenge(client, alice, bob, key))
    # another payee with the same key and code: there is no open challenge for that request
    r = client.post(
        "/v1/transfers",
        json={"to_account": carol.account_id, "amount": BIG},
        headers={**alice.with_key(key), "X-OTP": code},
    )
    assert r.status_code == 403 and problem(r)["code"] == "OTP_INVALID"
    # another user cannot use alice's code for the same key
    r = _transfer(client, bob, carol, key, code)
    assert r.status_code == 403 and problem(r)["code"] == "OTP_INVALID"
    assert _transfer(client, alice, bob, key, code).status_code == 201
    assert balance(client, carol) == SEED_BALANCE
