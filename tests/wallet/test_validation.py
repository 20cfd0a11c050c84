"""Every bad input gets a 4xx problem+json with a stable code, and never moves money."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from loadkit.wallet.auth import TokenSigner
from tests.wallet.conftest import (
    ADMIN,
    SECRET,
    SEED_BALANCE,
    User,
    WalletProcess,
    balance,
    invariants,
    problem,
)

_MISSING = object()


@dataclass
class Case:
    """One bad request. ``body``: JSON to send (``raw`` wins when set); ``to``: what
    ``"$to"`` in the body means (the other user, a merchant, the caller)."""

    id: str
    status: int
    code: str
    path: str = "/v1/transfers"
    method: str = "POST"
    body: Any = field(default_factory=lambda: {"to_account": "$to", "amount": 100})
    raw: bytes | None = None
    key: Any = "auto"  # "auto": a fresh valid key; _MISSING: no header; else the header value
    auth: str = "valid"  # valid | none | garbage | forged | expired | basic
    to: str = "user"  # user | merchant | self | bank


def _amount(value: Any, path: str = "/v1/transfers") -> dict[str, Any]:
    target = "merchant_account" if path == "/v1/payments" else "to_account"
    body: dict[str, Any] = {"amount": value}
    if path != "/v1/topup":
        body[target] = "$to"
    return body


_BAD_AMOUNTS = [
    ("string", "100"),
    ("bool", True),
    ("null", None),
    ("list", [100]),
    ("object", {"fen": 100}),
    ("zero", 0),
    ("negative", -5),
    ("fraction", 1.5),
    ("float-integral", 100.0),
    ("over-max", 1_000_000_001),
    ("bigint", 2**63),
    ("beyond-u64", 10**30),
]

CASES: list[Case] = [
    # body shape
    Case("malformed-json", 400, "MALFORMED_JSON", raw=b'{"to_account": 1,'),
    Case("empty-body", 400, "MALFORMED_JSON", raw=b""),
    Case("nan", 400, "MALFORMED_JSON", raw=b'{"to_account": 2, "amount": NaN}'),
    Case("amount-exponent", 422, "INVALID_AMOUNT", raw=b'{"to_account": 2, "amount": 1e2}'),
    Case("amount-infinite", 422, "INVALID_AMOUNT", raw=b'{"to_account": 2, "amount": 1e999}'),
    Case("not-an-object", 422, "INVALID_BODY", body=[1, 2]),
    Case("missing-amount", 422, "INVALID_AMOUNT", body={"to_account": "$to"}),
    Case("missing-to", 422, "INVALID_ACCOUNT", body={"amount": 100}),
    Case(
        "huge-number-text",
        422,
        "INVALID_AMOUNT",
        raw=b'{"to_account": 2, "amount": 9' + b"9" * 5000 + b"}",
    ),
    # amounts, on every money movement
    *[
        Case(
            f"{path.rsplit('/', 1)[1]}-amount-{name}",
            422,
            "INVALID_AMOUNT",
            path=path,
            body=_amount(value, path),
            to="merchant" if path == "/v1/payments" else "user",
        )
        for path in ("/v1/transfers", "/v1/payments", "/v1/topup")
        for name, value in _BAD_AMOUNTS
    ],
    # accounts
    Case("to-string", 422, "INVALID_ACCOUNT", body={"to_account": "2", "amount": 100}),
    Case("to-bool", 422, "INVALID_ACCOUNT", body={"to_account": True, "amount": 100}),
    Case("to-zero", 422, "INVALID_ACCOUNT", body={"to_account": 0, "amount": 100}),
    Case("to-negative", 422, "INVALID_ACCOUNT", body={"to_account": -3, "amount": 100}),
    Case("to-beyond-bigint", 422, "INVALID_ACCOUNT", body={"to_account": 2**63, "amount": 100}),
    Case("to-unknown", 404, "ACCOUNT_NOT_FOUND", body={"to_account": 999_999_999, "amount": 100}),
    Case("to-self", 422, "SELF_TRANSFER", to="self"),
    Case("to-merchant", 422, "NOT_A_USER", to="merchant"),
    Case("to-bank", 422, "NOT_A_USER", to="bank"),
    Case(
        "pay-a-user",
        422,
        "NOT_A_MERCHANT",
        path="/v1/payments",
        body={"merchant_account": "$to", "amount": 100},
    ),
    Case(
        "pay-unknown",
        404,
        "ACCOUNT_NOT_FOUND",
        path="/v1/payments",
        body={"merchant_account": 999_999_999, "amount": 100},
    ),
    Case(
        "pay-self",
        422,
        "SELF_PAYMENT",
        path="/v1/payments",
        to="self",
        body={"merchant_account": "$to", "amount": 100},
    ),
    Case("pay-missing-merchant", 422, "INVALID_ACCOUNT", path="/v1/payments", body={"amount": 1}),
    # other fields
    Case("memo-number", 422, "INVALID_FIELD", body={"to_account": "$to", "amount": 1, "memo": 5}),
    Case(
        "memo-too-long",
        422,
        "INVALID_FIELD",
        body={"to_account": "$to", "amount": 1, "memo": "x" * 141},
    ),
    Case(
        "order-id-list",
        422,
        "INVALID_FIELD",
        path="/v1/payments",
        to="merchant",
        body={"merchant_account": "$to", "amount": 1, "order_id": ["a"]},
    ),
    # policy limit (below the absurd-amount bound, above the policy's maximum)
    Case(
        "over-policy-limit",
        422,
        "AMOUNT_OVER_LIMIT",
        body={"to_account": "$to", "amount": 50_000_001},
    ),
    # idempotency key
    Case("key-missing", 400, "IDEMPOTENCY_KEY_REQUIRED", key=_MISSING),
    Case("key-empty", 400, "INVALID_IDEMPOTENCY_KEY", key=""),
    Case("key-space", 400, "INVALID_IDEMPOTENCY_KEY", key="has space"),
    Case("key-slash", 400, "INVALID_IDEMPOTENCY_KEY", key="a/b"),
    Case("key-too-long", 400, "INVALID_IDEMPOTENCY_KEY", key="k" * 129),
    Case(
        "topup-key-missing",
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
        path="/v1/topup",
        body={"amount": 1},
        key=_MISSING,
    ),
    Case(
        "payment-key-missing",
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
        path="/v1/payments",
        to="merchant",
        body={"merchant_account": "$to", "amount": 1},
        key=_MISSING,
    ),
    # authentication
    Case("token-missing", 401, "UNAUTHENTICATED", auth="none"),
    Case("token-garbage", 401, "INVALID_TOKEN", auth="garbage"),
    Case("token-forged", 401, "INVALID_TOKEN", auth="forged"),
    Case("token-expired", 401, "TOKEN_EXPIRED", auth="expired"),
    Case("token-basic", 401, "INVALID_TOKEN", auth="basic"),
    Case(
        "balance-token-missing",
        401,
        "UNAUTHENTICATED",
        path="/v1/balance",
        method="GET",
        auth="none",
    ),
    Case(
        "history-token-forged",
        401,
        "INVALID_TOKEN",
        path="/v1/transactions",
        method="GET",
        auth="forged",
    ),
    # sizes, routes, methods, queries
    Case(
        "body-too-large",
        413,
        "BODY_TOO_LARGE",
        body={"to_account": "$to", "amount": 1, "memo": "x" * 70_000},
    ),
    Case("unknown-route", 404, "NOT_FOUND", path="/v1/nothing-here", method="GET"),
    Case("trailing-slash", 404, "NOT_FOUND", path="/v1/balance/", method="GET"),
    Case("wrong-method", 405, "METHOD_NOT_ALLOWED", path="/v1/transfers", method="GET"),
    Case("wrong-method-put", 405, "METHOD_NOT_ALLOWED", path="/v1/balance", method="PUT"),
    Case("limit-zero", 422, "INVALID_QUERY", path="/v1/transactions?limit=0", method="GET"),
    Case("limit-too-big", 422, "INVALID_QUERY", path="/v1/transactions?limit=101", method="GET"),
    Case("limit-text", 422, "INVALID_QUERY", path="/v1/transactions?limit=ten", method="GET"),
    Case("before-negative", 422, "INVALID_QUERY", path="/v1/transactions?before=-1", method="GET"),
    # login
    Case(
        "login-missing-password",
        422,
        "INVALID_FIELD",
        path="/v1/login",
        body={"username": "user00001"},
        auth="none",
    ),
    Case(
        "login-password-number",
        422,
        "INVALID_FIELD",
        path="/v1/login",
        body={"username": "user00001", "password": 1234},
        auth="none",
    ),
    Case(
        "login-malformed", 400, "MALFORMED_JSON", path="/v1/login", raw=b"username=a", auth="none"
    ),
]


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner(SECRET.encode(), ttl=3600)


@pytest.fixture
def pair(users: Callable[[], User]) -> tuple[User, User]:
    return users(), users()


def _auth(mode: str, user: User, signer: TokenSigner) -> dict[str, str]:
    token = user.token
    if mode == "none":
        return {}
    if mode == "garbage":
        return {"Authorization": "Bearer not-a-token"}
    if mode == "forged":  # a valid token's payload for another account, old signature
        head, sig = token.rsplit(".", 1)
        parts = head.split(".")
        parts[1] = str(int(parts[1]) + 1)
        return {"Authorization": f"Bearer {'.'.join(parts)}.{sig}"}
    if mode == "expired":
        return {"Authorization": f"Bearer {signer.issue(user.account_id, now=time.time() - 7200)}"}
    if mode == "basic":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    return dict(user.headers)


def _resolve(value: Any, target: int) -> Any:
    if value == "$to":
        return target
    if isinstance(value, dict):
        return {k: _resolve(v, target) for k, v in value.items()}
    return value


@pytest.fixture
def no_money_moves(client: httpx.Client) -> Iterator[None]:
    before = invariants(client)
    yield
    after = invariants(client)
    assert after["ok"], after
    assert after["transactions"] == before["transactions"]
    assert after["total_balance"] == 0


@pytest.mark.usefixtures("no_money_moves")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_its_code(
    case: Case,
    client: httpx.Client,
    pair: tuple[User, User],
    merchant_id: int,
    signer: TokenSigner,
) -> None:
    me, other = pair
    target = {"user": other.account_id, "merchant": merchant_id, "self": me.account_id, "bank": 1}[
        case.to
    ]
    headers = _auth(case.auth, me, signer)
    if case.method == "POST":
        if case.key == "auto":
            headers["Idempotency-Key"] = f"bad-{case.id}-{me.account_id}"
        elif case.key is not _MISSING:
            headers["Idempotency-Key"] = case.key
    content: bytes | None = None
    if case.method != "GET":
        content = (
            case.raw if case.raw is not None else json.dumps(_resolve(case.body, target)).encode()
        )
    r = client.request(case.method, case.path, content=content, headers=headers)
    assert r.status_code == case.status, r.text
    body = problem(r)
    assert body["code"] == case.code, body
    if case.status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert balance(client, me) == SEED_BALANCE
    assert balance(client, other) == SEED_BALANCE


def test_insufficient_funds_is_402_and_moves_nothing(
    client: httpx.Client, pair: tuple[User, User]
) -> None:
    me, other = pair
    for _ in range(2):  # leave 100_000 (each under the OTP threshold)
        r = client.post(
            "/v1/transfers",
            json={"to_account": other.account_id, "amount": 450_000},
            headers=me.with_key(),
        )
        assert r.status_code == 201
    before = invariants(client)["transactions"]
    r = client.post(
        "/v1/transfers",
        json={"to_account": other.account_id, "amount": 100_001},
        headers=me.with_key(),
    )
    assert r.status_code == 402
    body = problem(r)
    assert body["code"] == "INSUFFICIENT_FUNDS" and body["balance"] == 100_000
    assert invariants(client)["transactions"] == before
    assert balance(client, me) == 100_000
    # exactly the balance is fine
    r = client.post(
        "/v1/transfers",
        json={"to_account": other.account_id, "amount": 100_000},
        headers=me.with_key(),
    )
    assert r.status_code == 201 and r.json()["balance"] == 0


def test_chunked_body_over_the_limit_is_413(client: httpx.Client, pair: tuple[User, User]) -> None:
    me, other = pair

    def chunks() -> Iterator[bytes]:
        yield b'{"to_account": %d, "amount": 1, "memo": "' % other.account_id
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    r = client.post("/v1/transfers", content=chunks(), headers=me.with_key())
    assert r.status_code == 413 and problem(r)["code"] == "BODY_TOO_LARGE"
    assert balance(client, me) == SEED_BALANCE


def _unhandled(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    found = re.search(r"^wallet_unhandled_exceptions_total ([0-9.e+]+)$", text, re.M)
    assert found is not None
    return float(found[1])


#: (id, method, path, headers, raw body, status, code); "$to", "$me", "$otp_amount" are filled in
_ODD: list[tuple[str, str, str, dict[str, bytes], bytes | None, int, str]] = [
    # the six requests that answered 500 with a traceback before (no login needed for most)
    (
        "non-ascii-bearer",
        "GET",
        "/v1/balance",
        {"Authorization": b"Bearer v1.1.9999999999.\xe9\xe9"},
        None,
        401,
        "INVALID_TOKEN",
    ),
    (
        "non-ascii-otp",
        "POST",
        "/v1/transfers",
        {"X-OTP": b"\xe9\xe9\xe9\xe9\xe9\xe9"},
        b'{"to_account": $to, "amount": 600000}',
        403,
        "OTP_INVALID",
    ),
    (
        "memo-lone-surrogate",
        "POST",
        "/v1/transfers",
        {},
        b'{"to_account": $to, "amount": 1, "memo": "\\ud800"}',
        422,
        "INVALID_FIELD",
    ),
    (
        "memo-nul",
        "POST",
        "/v1/transfers",
        {},
        b'{"to_account": $to, "amount": 1, "memo": "a\\u0000b"}',
        422,
        "INVALID_FIELD",
    ),
    (
        "username-lone-surrogate",
        "POST",
        "/v1/login",
        {},
        b'{"username": "\\udc00", "password": "x"}',
        422,
        "INVALID_FIELD",
    ),
    (
        "username-nul",
        "POST",
        "/v1/login",
        {},
        b'{"username": "user\\u0000", "password": "x"}',
        422,
        "INVALID_FIELD",
    ),
    # their relatives
    (
        "password-lone-surrogate",
        "POST",
        "/v1/login",
        {},
        b'{"username": "user00001", "password": "\\ud83d"}',
        422,
        "INVALID_FIELD",
    ),
    (
        "order-id-nul",
        "POST",
        "/v1/payments",
        {},
        b'{"merchant_account": $merchant, "amount": 1, "order_id": "\\u0000"}',
        422,
        "INVALID_FIELD",
    ),
    ("directory-nul", "GET", "/v1/directory/user%00", {}, None, 404, "ACCOUNT_NOT_FOUND"),
    (
        "non-ascii-admin-token",
        "GET",
        "/admin/state",
        {"Authorization": b"Bearer \xff"},
        None,
        403,
        "FORBIDDEN",
    ),
    ("outbox-garbage", "GET", "/admin/otp-outbox/%00%ff", {}, None, 404, "OTP_CHALLENGE_NOT_FOUND"),
]


@pytest.mark.usefixtures("no_money_moves")
@pytest.mark.parametrize("case", _ODD, ids=[c[0] for c in _ODD])
def test_odd_characters_are_refused_never_a_500(
    case: tuple[str, str, str, dict[str, bytes], bytes | None, int, str],
    client: httpx.Client,
    wallet: WalletProcess,
    pair: tuple[User, User],
    merchant_id: int,
) -> None:
    """Each of these answered 500 and logged a traceback before: compare_digest on non-ASCII
    text, a surrogate asyncpg cannot encode, a NUL PostgreSQL cannot store."""
    name, method, path, extra, raw, status, code = case
    me, other = pair
    headers: dict[str, str | bytes] = {}
    if not path.startswith("/admin") and "Authorization" not in extra:
        headers.update(me.headers)
    if path.startswith("/admin") and "Authorization" not in extra:
        headers.update(ADMIN)
    if method == "POST":
        headers["Idempotency-Key"] = f"odd-{name}-{me.account_id}"
    headers.update(extra)
    if raw is not None:
        raw = raw.replace(b"$to", str(other.account_id).encode())
        raw = raw.replace(b"$merchant", str(merchant_id).encode())
    log_before = len(wallet.log())
    unhandled = _unhandled(client)
    r = client.request(method, path, content=raw, headers=headers)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert problem(r)["code"] == code
    assert _unhandled(client) == unhandled
    assert "Traceback" not in wallet.log()[log_before:]
    assert balance(client, me) == SEED_BALANCE
