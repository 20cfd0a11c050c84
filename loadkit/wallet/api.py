"""The public API (``/v1/...``): login, balance, top-ups, payments, transfers, history, OTP.

Handlers validate, ask risk control, and make one ledger call; the runtime's guard around them
does admission, deadlines and error answers. Money movements need an ``Idempotency-Key``: a retry
with the same key and payload gets the stored answer (``Idempotency-Replayed: true``) and moves
money once; the same key with another payload is a 409::

    POST /v1/transfers  {"to_account": 42, "amount": 500}
    Authorization: Bearer <token>      Idempotency-Key: 7f3c…
    -> 201 {"transaction_id": 9, "kind": "transfer", ..., "balance": 99500, "replayed": false}
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loadkit.wallet.config import CURRENCY
from loadkit.wallet.problems import JSONResponse, Problem
from loadkit.wallet.runtime import WalletRuntime
from loadkit.wallet.unsafe import Movement
from loadkit.wallet.validation import (
    idempotency_key,
    parse_account,
    parse_amount,
    parse_text,
    query_int,
    read_json,
    request_hash,
)

MAX_MEMO = 140
MAX_ORDER_ID = 64
MAX_PAGE = 100


class PublicApi:
    """Handlers of the ``/v1`` routes, bound to one runtime."""

    def __init__(self, runtime: WalletRuntime) -> None:
        self.rt = runtime
        self.ledger = runtime.ledger
        self.max_body = runtime.config.max_body
        self.max_amount = runtime.config.max_amount

    async def login(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        username = parse_text(body, "username", 64, required=True)
        password = parse_text(body, "password", 256, required=True)
        assert username is not None and password is not None
        found = await self.ledger.user_credentials(username)
        if found is None or not await self.rt.passwords.verify(password, found[1]):
            raise Problem(401, "INVALID_CREDENTIALS", "unknown username or wrong password")
        account_id = found[0]
        return JSONResponse(
            {
                "token": self.rt.signer.issue(account_id),
                "token_type": "Bearer",
                "account_id": account_id,
                "expires_in": self.rt.signer.ttl,
            }
        )

    async def balance(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        balance = await self.ledger.balance(account_id)
        if balance is None:
            raise Problem(404, "ACCOUNT_NOT_FOUND", "the token's account does not exist")
        return JSONResponse({"account_id": account_id, "balance": balance, "currency": CURRENCY})

    async def topup(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        key = idempotency_key(request)
        body = await read_json(request, self.max_body)
        amount = parse_amount(body, self.max_amount)
        digest = request_hash("topup", account_id, amount, None)
        bank = await self.ledger.bank_id()
        return await self._move(key, account_id, digest, "topup", bank, account_id, amount)

    async def payment(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        key = idempotency_key(request)
        body = await read_json(request, self.max_body)
        merchant = parse_account(body, "merchant_account")
        amount = parse_amount(body, self.max_amount)
        order_id = parse_text(body, "order_id", MAX_ORDER_ID)
        if merchant == account_id:
            raise Problem(422, "SELF_PAYMENT", "an account cannot pay itself")
        digest = request_hash("payment", merchant, amount, order_id)
        self.rt.risk.check(
            account_id=account_id,
            key=key,
            request_hash=digest,
            amount=amount,
            otp=request.headers.get("x-otp"),
        )
        return await self._move(
            key, account_id, digest, "payment", account_id, merchant, amount, order_id=order_id
        )

    async def transfer(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        key = idempotency_key(request)
        body = await read_json(request, self.max_body)
        to_account = parse_account(body, "to_account")
        amount = parse_amount(body, self.max_amount)
        memo = parse_text(body, "memo", MAX_MEMO)
        if to_account == account_id:
            raise Problem(422, "SELF_TRANSFER", "cannot transfer to your own account")
        digest = request_hash("transfer", to_account, amount, memo)
        self.rt.risk.check(
            account_id=account_id,
            key=key,
            request_hash=digest,
            amount=amount,
            otp=request.headers.get("x-otp"),
        )
        return await self._move(
            key, account_id, digest, "transfer", account_id, to_account, amount, memo=memo
        )

    async def _move(
        self,
        key: str,
        account_id: int,
        digest: str,
        kind: str,
        from_account: int,
        to_account: int,
        amount: int,
        *,
        memo: str | None = None,
        order_id: str | None = None,
    ) -> Response:
        if self.rt.write_behind is not None:  # UNSAFE: acknowledged before it is committed
            body = self.rt.write_behind.accept(
                Movement(
                    key, account_id, digest, kind, from_account, to_account, amount, memo, order_id
                )
            )
            self.rt.metrics.movements.labels(kind, "applied").inc()
            return JSONResponse({**body, "replayed": False}, status_code=201)
        result = await self.ledger.move(
            key, account_id, digest, kind, from_account, to_account, amount, memo, order_id
        )
        status: int = result["status"]
        movements = self.rt.metrics.movements
        if status == 409:
            movements.labels(kind, "conflict").inc()
            raise Problem(
                409,
                "IDEMPOTENCY_CONFLICT",
                "this Idempotency-Key was already used for a different request",
            )
        replayed: bool = result["replayed"]
        stored: dict[str, Any] = result["body"]
        headers = {"Idempotency-Replayed": "true"} if replayed else None
        if status == 201:
            movements.labels(kind, "replayed" if replayed else "applied").inc()
            return JSONResponse({**stored, "replayed": replayed}, status_code=201, headers=headers)
        movements.labels(kind, "refused").inc()
        extra = {k: v for k, v in stored.items() if k not in ("code", "detail")}
        extra["replayed"] = replayed
        raise Problem(status, stored["code"], stored["detail"], extra=extra, headers=headers)

    async def transactions(self, request: Request) -> Response:
        account_id = self.rt.authenticate(request)
        limit = query_int(request, "limit", 20, 1, MAX_PAGE)
        before = query_int(request, "before", None, 1, 2**63 - 1)
        assert limit is not None
        rows = await self.ledger.history(account_id, before, limit + 1)
        items = [
            {
                "transaction_id": row["id"],
                "kind": row["kind"],
                "from_account": row["from_account"],
                "to_account": row["to_account"],
                "amount": row["amount"],
                "delta": row["delta"],
                "memo": row["memo"],
                "order_id": row["order_id"],
                "created_at": row["created_at"],
            }
            for row in rows[:limit]
        ]
        next_before = items[-1]["transaction_id"] if len(rows) > limit else None
        return JSONResponse({"items": items, "next_before": next_before})

    async def otp(self, request: Request) -> Response:
        """The code the user would get by SMS for a challenge issued to them."""
        account_id = self.rt.authenticate(request)
        challenge = request.path_params["challenge"]
        code = self.rt.risk.otp.code_for(challenge, account_id)
        return JSONResponse({"challenge": challenge, "code": code})

    async def directory(self, request: Request) -> Response:
        """Find a user or merchant by name (what a payer types or scans)."""
        self.rt.authenticate(request)
        name: str = request.path_params["name"]
        found = await self.ledger.lookup(name) if len(name) <= 64 else None
        if found is None:
            raise Problem(404, "ACCOUNT_NOT_FOUND", f"no user or merchant named {name!r}")
        return JSONResponse({"account_id": found[0], "name": name, "kind": found[1]})
